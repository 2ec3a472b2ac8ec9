import warnings

import pytest
import torch
import torch.nn.functional as F
from mmpretrain.models.utils.clip_generator_helper import CLIP

from mmitpn.models.teachers import CLIPTeacher, load_clip_state_dict
from mmitpn.models.teachers.clip_teacher import (OPENAI_CLIP_MEAN,
                                                 OPENAI_CLIP_STD)

IMAGENET_MEAN = torch.tensor([123.675, 116.28, 103.53]).view(1, 3, 1, 1)
IMAGENET_STD = torch.tensor([58.395, 57.12, 57.375]).view(1, 3, 1, 1)


def tiny_clip(resolution=64, patch=16, embed_dim=32):
    """Random OpenAI-layout CLIP: vision width 64 (``build_clip_model``
    derives width // 64 = 1 head), one block per tower."""
    return CLIP(embed_dim, resolution, 1, 64, patch, context_length=8,
                vocab_size=50, transformer_width=64, transformer_heads=1,
                transformer_layers=1).eval()


def clip_normalise(raw):
    mean = torch.tensor(OPENAI_CLIP_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(OPENAI_CLIP_STD).view(1, 3, 1, 1)
    return (raw - mean) / std


@torch.no_grad()
def manual_patch_tokens(visual, x):
    """``ln_post(tokens[:, 1:]) @ proj`` from the ViT's own modules."""
    x = visual.conv1(x).flatten(2).transpose(1, 2)
    cls = visual.class_embedding.expand(x.shape[0], 1, -1)
    x = torch.cat([cls, x], dim=1) + visual.positional_embedding
    x = visual.ln_pre(x).permute(1, 0, 2)
    x = visual.transformer(x)[0].permute(1, 0, 2)
    return visual.ln_post(x[:, 1:]) @ visual.proj


@pytest.fixture
def clip_file(tmp_path):
    clip = tiny_clip()
    path = tmp_path / 'tiny_clip.pt'
    torch.save(clip.state_dict(), path)
    return clip, str(path)


def raw_images(n=2, size=64):
    return torch.rand(n, 3, size, size) * 255


def test_patch_tokens_match_clip(clip_file):
    clip, path = clip_file
    teacher = CLIPTeacher(path)
    assert teacher.embed_dims == 32 and teacher.input_resolution == 64
    raw = raw_images()
    out = teacher((raw - IMAGENET_MEAN) / IMAGENET_STD)
    assert out.shape == (2, 16, 32) and out.dtype == torch.float32
    expected = manual_patch_tokens(clip.visual, clip_normalise(raw))
    torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-4)


def test_torchscript_archive_as_released(clip_file, tmp_path):
    """OpenAI ships TorchScript archives; they load like a state dict."""
    clip, path = clip_file
    jit_path = tmp_path / 'tiny_clip_jit.pt'
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        torch.jit.trace_module(
            clip, {'encode_image': torch.randn(1, 3, 64, 64)},
            check_trace=False).save(str(jit_path))
    sd = load_clip_state_dict(str(jit_path))
    assert set(sd) == set(clip.state_dict())
    x = torch.randn(2, 3, 64, 64)
    torch.testing.assert_close(CLIPTeacher(str(jit_path))(x),
                               CLIPTeacher(path)(x))


def test_resized_to_clip_resolution(tmp_path):
    """A ViT-L/14-like teacher at 196 px gives a 224 student's grid: here
    patch 12 at 48 px gives the 4x4 grid of a 64 px student."""
    clip = tiny_clip(resolution=48, patch=12)
    torch.save(clip.state_dict(), tmp_path / 'c.pt')
    teacher = CLIPTeacher(str(tmp_path / 'c.pt'))
    raw = raw_images()
    out = teacher((raw - IMAGENET_MEAN) / IMAGENET_STD)
    resized = F.interpolate(
        clip_normalise(raw), size=(48, 48), mode='bicubic',
        align_corners=False)
    torch.testing.assert_close(
        out, manual_patch_tokens(clip.visual, resized), rtol=1e-4,
        atol=1e-4)


def test_missing_file_is_not_downloaded(tmp_path):
    path = str(tmp_path / 'nowhere' / 'ViT-B-16.pt')
    with pytest.raises(FileNotFoundError) as err:
        CLIPTeacher(path)
    assert path in str(err.value) and 'never downloads' in str(err.value)


def test_non_clip_files(tmp_path, clip_file):
    clip, _ = clip_file
    other = tmp_path / 'resnet.pt'
    torch.save(dict(conv1=torch.zeros(1)), other)
    with pytest.raises(ValueError, match='not an OpenAI CLIP ViT'):
        CLIPTeacher(str(other))
    garbage = tmp_path / 'garbage.pt'
    garbage.write_bytes(b'not a checkpoint at all')
    with pytest.raises(ValueError, match='cannot be read as CLIP weights'):
        CLIPTeacher(str(garbage))
    truncated = {
        k: v
        for k, v in clip.state_dict().items()
        if not k.startswith('visual.transformer.')
    }
    torch.save(dict(state_dict=truncated), tmp_path / 'truncated.pt')
    with pytest.raises(ValueError, match='lacks image-tower weights'):
        CLIPTeacher(str(tmp_path / 'truncated.pt'))


def test_frozen_and_always_eval(clip_file):
    teacher = CLIPTeacher(clip_file[1])
    assert not teacher.training  # built in eval mode, not just its ViT
    teacher.train()
    assert not teacher.training
    assert all(not m.training for m in teacher.modules())
    assert all(not p.requires_grad for p in teacher.parameters())
    x = torch.randn(1, 3, 64, 64, requires_grad=True)
    assert not teacher(x).requires_grad


def test_img_size_interpolates_the_position_embedding(tmp_path):
    """The official CLIP-L/14 teacher at 196 px: CLIP's 16x16 table
    (224 / 14) interpolated to 14x14, 196 tokens. Same here at tiny size:
    a 4x4-grid CLIP (64 px, patch 16) run at 48 px gives 3x3 = 9 tokens,
    its table resized as the official ``interpolate_pos_encoding`` does
    (bicubic, scale factor (3 + 0.1) / 4, class token kept)."""
    clip = tiny_clip(resolution=64)
    path = tmp_path / 'tiny_clip.pt'
    torch.save(clip.state_dict(), path)
    teacher = CLIPTeacher(str(path), img_size=48)
    assert teacher.input_resolution == 48
    table = clip.visual.positional_embedding.detach()
    patches = table[1:].reshape(1, 4, 4, -1).permute(0, 3, 1, 2)
    want = F.interpolate(patches, scale_factor=(3.1 / 4, 3.1 / 4),
                         mode='bicubic', align_corners=False)
    assert want.shape[-2:] == (3, 3)
    want = torch.cat([table[:1], want.permute(0, 2, 3, 1).reshape(9, -1)])
    torch.testing.assert_close(teacher.visual.positional_embedding, want)
    assert not teacher.visual.positional_embedding.requires_grad
    # a 48 px student image goes in as is: 9 tokens, CLIP's computation
    raw = raw_images(size=48)
    out = teacher((raw - IMAGENET_MEAN) / IMAGENET_STD)
    assert out.shape == (2, 9, 32)
    clip.visual.positional_embedding.data = want
    expected = manual_patch_tokens(clip.visual, clip_normalise(raw))
    torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-4)
    # the default keeps CLIP's own resolution
    assert CLIPTeacher(str(path)).input_resolution == 64
    with pytest.raises(ValueError, match='multiple of the CLIP patch'):
        CLIPTeacher(str(path), img_size=50)


def test_weights_stay_out_of_state_dicts(clip_file):
    """The teacher's weights come from its CLIP file: its state dict is
    empty, and loading a state dict (strictly, even one holding teacher
    keys) leaves its weights and its targets as they were."""
    clip, path = clip_file
    teacher = CLIPTeacher(path)
    assert teacher.state_dict() == {}
    raw = raw_images()
    img = (raw - IMAGENET_MEAN) / IMAGENET_STD
    before = teacher(img)
    teacher.load_state_dict({}, strict=True)
    zeros = {k: torch.zeros_like(v) for k, v in clip.state_dict().items()
             if k.startswith('visual.')}
    teacher.load_state_dict(zeros, strict=True)
    assert torch.equal(teacher(img), before)
    torch.testing.assert_close(
        before, manual_patch_tokens(clip.visual, clip_normalise(raw)),
        atol=1e-4, rtol=1e-4)
