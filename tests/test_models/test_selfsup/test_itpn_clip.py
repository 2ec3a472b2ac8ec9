import numpy as np
import pytest
import torch
from conftest import TINY_ARCH, ToyImages
from mmpretrain.datasets.transforms import BEiTMaskGenerator, PackInputs
from mmpretrain.models.utils.clip_generator_helper import CLIP

from mmitpn.registry import MODELS

E = 32  # width of the tiny CLIP's projected tokens


@pytest.fixture(scope='module')
def clip_path(tmp_path_factory):
    """A random OpenAI-layout CLIP (vision width 64, 64 px, patch 16)."""
    torch.manual_seed(0)
    clip = CLIP(E, 64, 1, 64, 16, context_length=8, vocab_size=50,
                transformer_width=64, transformer_heads=1,
                transformer_layers=1)
    path = tmp_path_factory.mktemp('clip') / 'tiny_clip.pt'
    torch.save(clip.state_dict(), path)
    return str(path)


def tiny_clip_cfg(weights, **overrides):
    cfg = dict(
        type='mmitpn.ITPNCLIP',
        backbone=dict(
            type='mmitpn.HiViTBackbone',
            arch=TINY_ARCH,
            img_size=64,
            use_mask_token=True,
            use_rpe=True,
            layer_scale_init_value=0.1),
        neck=dict(
            type='mmitpn.ITPNPyramid',
            in_channels=(16, 32, 64),
            out_channels=32,
            fpn_depth=1,
            num_outs=3),
        head=dict(
            type='mmitpn.CLIPDistillHead',
            in_channels=32,
            level_sizes=(4, 2, 1),
            embed_dims=32,
            target_dims=E),
        side_head=dict(
            type='mmitpn.CLIPDistillHead',
            in_channels=64,
            level_sizes=(1, ),
            embed_dims=32,
            target_dims=E,
            depth=1,
            num_heads=2),
        mfm_head=dict(
            type='mmitpn.ITPNFeatureHead',
            fpn_channels=32,
            target_channels=(E, E, E),
            target_sizes=(1, 1, 1),
            embed_dims=32,
            depth=1,
            num_heads=2,
            img_size=64),
        teacher=dict(type='mmitpn.CLIPTeacher', weights=weights),
        data_preprocessor=dict(
            type='mmpretrain.SelfSupDataPreprocessor',
            mean=[123.675, 116.28, 103.53],
            std=[58.395, 57.12, 57.375],
            to_rgb=True))
    cfg.update(overrides)
    return cfg


def batch(n=2, algorithm_keys=()):
    """Toy images through the CLIP pipeline's mask generator and packer."""
    gen = BEiTMaskGenerator(
        input_size=4, num_masking_patches=6, min_num_patches=2)
    pack = PackInputs(algorithm_keys=algorithm_keys)
    np.random.seed(0)  # BEiTMaskGenerator draws from np.random
    items = []
    for i in range(n):
        img = ToyImages(n)[i]['inputs'].permute(1, 2, 0).numpy()
        items.append(pack(gen(dict(img=img))))
    return dict(inputs=torch.stack([x['inputs'] for x in items]),
                data_samples=[x['data_samples'] for x in items])


def test_losses_and_gradients(clip_path):
    model = MODELS.build(tiny_clip_cfg(clip_path))
    assert model.side_block == 1
    data = model.data_preprocessor(batch(), True)
    masks = torch.stack([ds.mask for ds in data['data_samples']])
    assert masks.shape == (2, 4, 4) and 0 < masks.sum() < 32
    losses = model(**data, mode='loss')
    assert set(losses) == {
        'loss_clip', 'loss_clip_side', 'loss_mfm_s4', 'loss_mfm_s8',
        'loss_mfm_s16'
    }
    assert all(torch.isfinite(v) and v.dim() == 0 for v in losses.values())
    sum(losses.values()).backward()
    # every trainable parameter is used: DDP needs no find_unused_parameters
    # (the MFM decoders' own mask tokens are frozen: every patch reaches
    # them, masked ones carrying the backbone's mask token)
    assert not [n for n, p in model.named_parameters()
                if p.requires_grad and p.grad is None]
    assert model.backbone.mask_token.grad.abs().sum() > 0
    for name in ('backbone', 'neck', 'head', 'side_head', 'mfm_head'):
        assert any(p.grad is not None and p.grad.abs().sum() > 0
                   for p in getattr(model, name).parameters()), name
    teacher = model.teacher
    assert all(p.grad is None and not p.requires_grad
               for p in teacher.parameters())


def smooth_l1_by_hand(pred, tgt):
    """Smooth-L1 with beta 1, averaged over every element."""
    d = (pred - tgt).abs()
    return torch.where(d < 1, 0.5 * d**2, d - 0.5).mean()


def layer_norm_by_hand(t, eps=1e-5):
    mean = t.mean(-1, keepdim=True)
    var = ((t - mean)**2).mean(-1, keepdim=True)
    return (t - mean) / torch.sqrt(var + eps)


def test_losses_equal_hand_computation(clip_path):
    """Targets are the CLIP's patch tokens (CLS dropped) of the images
    normalised with CLIP's own statistics (recomputed here from the raw
    pixels with a separately loaded CLIP); loss_clip and loss_clip_side
    are the smooth-L1 over all tokens of the head's prediction against the
    non-affine LayerNorm-ed targets; loss_mfm_s* the per-level L2 over the
    masked patches only."""
    model = MODELS.build(tiny_clip_cfg(clip_path, side_block=0)).eval()
    raw = batch()
    data = model.data_preprocessor(raw, True)
    preds = {}

    def keep(name):
        def hook(module, args, out):
            preds.setdefault(name, []).append(out)
        return hook

    model.head.decoder.register_forward_hook(keep('clip'))
    model.side_head.decoder.register_forward_hook(keep('side'))
    # the side head reads stage 3 after block side_block (0 of 0, 1)
    model.backbone.stages[2][0].register_forward_hook(keep('block0'))
    model.side_head.decoder.register_forward_pre_hook(
        lambda module, args: preds.setdefault('side_in', []).append(
            args[0][0]))
    for d in model.mfm_head.decoders:
        d.register_forward_hook(keep('mfm'))
    losses = model(**data, mode='loss')

    clip = CLIP(E, 64, 1, 64, 16, context_length=8, vocab_size=50,
                transformer_width=64, transformer_heads=1,
                transformer_layers=1)
    clip.load_state_dict(torch.load(clip_path))
    rgb = raw['inputs'].flip(1).float()  # the pipeline's images are BGR
    mean = torch.tensor([122.770938, 116.7460125, 104.09373615])
    std = torch.tensor([68.5005327, 66.6321579, 70.32316305])
    with torch.no_grad():
        tokens = clip.visual((rgb - mean.view(1, 3, 1, 1)) /
                             std.view(1, 3, 1, 1))[0][:, 1:]
    assert tokens.shape == (2, 16, E)
    block0, = preds['block0']
    side_in, = preds['side_in']
    torch.testing.assert_close(side_in.reshape(2, 16, -1), block0)
    target = layer_norm_by_hand(tokens)
    for name in ('clip', 'side'):
        pred, = preds[name]
        assert pred.shape == (2, 16, E)
        torch.testing.assert_close(
            losses[f"loss_{'clip' if name == 'clip' else 'clip_side'}"],
            smooth_l1_by_hand(pred, target), atol=1e-5, rtol=1e-4)
    mask = torch.stack([ds.mask for ds in data['data_samples']]).flatten(
        1).bool()
    for pred, s in zip(preds['mfm'], (4, 8, 16)):
        if pred.shape[1] == 16:  # all patches predicted: keep the masked
            pred = pred[mask]
        else:  # masked patches only, in patch order
            pred = pred.reshape(-1, E)
        err = ((pred - target[mask])**2).mean(-1)
        torch.testing.assert_close(losses[f'loss_mfm_s{s}'], err.mean(),
                                   atol=1e-5, rtol=1e-4)


def test_teacher_is_a_frozen_submodule_out_of_the_state_dict(clip_path):
    """The CLIP teacher is a registered submodule (``.to()`` moves it),
    frozen and in eval mode; the model's state dict holds the student only
    (torch's and mmengine's), a student checkpoint loads strictly, and
    loading never changes the teacher's CLIP weights."""
    from mmengine.runner.checkpoint import get_state_dict, load_state_dict
    model = MODELS.build(tiny_clip_cfg(clip_path)).train()
    assert dict(model.named_children())['teacher'] is model.teacher
    assert not model.teacher.training
    assert all(not m.training for m in model.teacher.modules())
    teacher_params = {id(p) for p in model.teacher.parameters()}
    assert teacher_params <= {id(p) for p in model.parameters()}
    assert all(not p.requires_grad for p in model.teacher.parameters())
    for state in (model.state_dict(), get_state_dict(model)):
        assert state and not [
            k for k in state if 'teacher' in k or k.startswith('visual')]
        assert 'backbone.mask_token' in state
    model.to(torch.float64)
    assert model.teacher.visual.conv1.weight.dtype == torch.float64
    assert model.teacher.scale.dtype == torch.float64
    model.float()

    fresh = MODELS.build(tiny_clip_cfg(clip_path))
    clip_weight = fresh.teacher.visual.conv1.weight.detach().clone()
    state = model.state_dict()
    fresh.load_state_dict(state, strict=True)
    assert torch.equal(fresh.backbone.mask_token, model.backbone.mask_token)
    # teacher keys in a file are not loaded: the weights are the CLIP file's
    state['teacher.visual.conv1.weight'] = torch.zeros_like(clip_weight)
    fresh.load_state_dict(state, strict=True)
    load_state_dict(fresh, state, strict=True)
    assert torch.equal(fresh.teacher.visual.conv1.weight, clip_weight)
    assert clip_weight.abs().sum() > 0


def test_numpy_masks_from_algorithm_keys(clip_path):
    """``PackInputs(algorithm_keys=['mask'])`` overwrites the packed tensor
    with the generator's numpy array; the model takes both."""
    model = MODELS.build(tiny_clip_cfg(clip_path, mfm_head=None))
    a = model.data_preprocessor(batch(), True)
    b = model.data_preprocessor(batch(algorithm_keys=['mask']), True)
    assert isinstance(b['data_samples'][0].mask, np.ndarray)
    torch.manual_seed(0)
    la = model(**a, mode='loss')
    torch.manual_seed(0)
    lb = model(**b, mode='loss')
    assert set(la) == {'loss_clip', 'loss_clip_side'}
    for k in la:
        torch.testing.assert_close(la[k], lb[k])


def test_mask_changes_the_student_only(clip_path):
    model = MODELS.build(tiny_clip_cfg(clip_path)).eval()
    data = model.data_preprocessor(batch(), True)
    img = data['inputs']
    full = model.backbone.forward_dense(img)
    mask = torch.stack([ds.mask for ds in data['data_samples']]).flatten(1)
    masked = model.backbone.forward_dense(img, mask=mask)
    # stages 1, 2 see the whole image; stage 3 sees mask tokens
    torch.testing.assert_close(full[0], masked[0])
    torch.testing.assert_close(full[1], masked[1])
    assert not torch.allclose(full[2], masked[2])


def test_errors(clip_path):
    model = MODELS.build(tiny_clip_cfg(clip_path))
    data = model.data_preprocessor(batch(), True)
    plain = [type(ds)() for ds in data['data_samples']]
    with pytest.raises(ValueError, match='BEiTMaskGenerator'):
        model(data['inputs'], plain, mode='loss')
    wrong = [type(ds)() for ds in data['data_samples']]
    for ds in wrong:
        ds.set_mask(torch.zeros(5, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match=r'input_size=4'):
        model(data['inputs'], wrong, mode='loss')

    cfg = tiny_clip_cfg(clip_path)
    cfg['head']['target_dims'] = 512
    with pytest.raises(ValueError, match=f'head.target_dims is 512.*{E}-d'):
        MODELS.build(cfg)
    cfg = tiny_clip_cfg(clip_path)
    cfg['side_head']['target_dims'] = 768
    with pytest.raises(ValueError, match='side_head.target_dims is 768'):
        MODELS.build(cfg)
    cfg = tiny_clip_cfg(clip_path)
    cfg['mfm_head']['target_channels'] = (16, 32, 64)
    with pytest.raises(ValueError, match='mfm_head predicts'):
        MODELS.build(cfg)
    for bad in (2, -1):
        with pytest.raises(ValueError, match='side_block'):
            MODELS.build(tiny_clip_cfg(clip_path, side_block=bad))
    cfg = tiny_clip_cfg(clip_path)
    cfg['backbone']['use_mask_token'] = False
    with pytest.raises(ValueError, match='use_mask_token=True'):
        MODELS.build(cfg)


def test_teacher_grid_must_match(clip_path, tmp_path):
    """A CLIP whose token grid differs from the student's is refused."""
    clip = CLIP(E, 48, 1, 64, 16, context_length=8, vocab_size=50,
                transformer_width=64, transformer_heads=1,
                transformer_layers=1)
    torch.save(clip.state_dict(), tmp_path / 'clip48.pt')
    cfg = tiny_clip_cfg(clip_path)
    cfg['teacher']['weights'] = str(tmp_path / 'clip48.pt')
    model = MODELS.build(cfg)
    data = model.data_preprocessor(batch(), True)
    with pytest.raises(ValueError, match='gives 9 tokens.*16 patches'):
        model(**data, mode='loss')
