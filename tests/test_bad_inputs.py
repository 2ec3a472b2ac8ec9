"""Catalogue of bad inputs: every one ends in a one-line cause.

Each entry of :data:`CASES` builds the smallest thing that triggers one kind
of bad input (tiny arch, tiny images, tiny files under ``tmp_path``) and
names the exception type and a regex that the message must match: the bad
value and the fix. The message must be a single line; the only deliberate
exception is the table of mismatched tensors of a checkpoint of another
arch, whose first line must then name the problem and the fix.
"""
import copy
import json
import re
from types import SimpleNamespace

import pytest
import torch
import torch.nn as nn
from conftest import TINY_ARCH, load_tool, tiny_itpn_cfg
from mmengine.model import ExponentialMovingAverage
from mmengine.runner.checkpoint import load_checkpoint

from mmitpn.datasets import check_coco_ann_file
from mmitpn.engine import EMATeacherHook
from mmitpn.engine.optimizers import ITPNLayerDecayOptimWrapperConstructor
from mmitpn.models import HiViTBackbone, ITPNPyramid
from mmitpn.models.heads import ITPNFeatureHead
from mmitpn.models.teachers import CLIPTeacher
from mmitpn.registry import MODELS, TRANSFORMS

#: Converter of official checkpoints (a script of tools/).
converter = load_tool('tools/model_converters/itpn_to_mmitpn.py')


def tiny_backbone(**kwargs) -> HiViTBackbone:
    """The tiny HiViT (widths 16, 32, 64) on 64x64 images."""
    return HiViTBackbone(arch=dict(TINY_ARCH), img_size=64, **kwargs)


def images(*shape, dtype=torch.float32) -> torch.Tensor:
    return torch.zeros(*shape, dtype=dtype)


def truncated_checkpoint(tmp_path):
    """A ``torch.save`` file cut in half (a crash while writing)."""
    path = tmp_path / 'iter_4.pth'
    torch.save(dict(state_dict=tiny_backbone().state_dict()), path)
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    return path


# ------------------------------------------------------------ triggers
# Each takes ``tmp_path`` and raises.


def side_not_multiple_of_16(tmp_path):
    tiny_backbone()(images(1, 3, 40, 64))


def wrong_channel_count(tmp_path):
    tiny_backbone()(images(1, 4, 64, 64))


def integer_image_dtype(tmp_path):
    tiny_backbone()(images(1, 3, 64, 64, dtype=torch.uint8))


def missing_batch_dim(tmp_path):
    tiny_backbone()(images(3, 64, 64))


def unknown_arch_name(tmp_path):
    HiViTBackbone(arch='itpn-huge')


def arch_missing_keys(tmp_path):
    HiViTBackbone(arch=dict(embed_dims=64, depths=(1, 1, 2)))


def arch_bad_depths(tmp_path):
    HiViTBackbone(arch=dict(embed_dims=64, depths=(1, 0, 2), num_heads=2))


def heads_do_not_divide_width(tmp_path):
    HiViTBackbone(arch=dict(embed_dims=64, depths=(1, 1, 2), num_heads=3))


def pyramid_widths_mismatch(tmp_path):
    feats = tiny_backbone()(images(1, 3, 64, 64))
    ITPNPyramid(in_channels=(32, 64, 128), out_channels=32, fpn_depth=1,
                num_outs=3)(feats)


def pyramid_input_count(tmp_path):
    feats = tiny_backbone(out_indices=(1, 2))(images(1, 3, 64, 64))
    ITPNPyramid(in_channels=(16, 32, 64), out_channels=32, fpn_depth=1,
                num_outs=3)(feats)


def bad_mask_ratio(tmp_path):
    cfg = tiny_itpn_cfg(mfm=False)
    cfg['mask_ratio'] = 1.0
    MODELS.build(cfg)


def ids_keep_out_of_range(tmp_path):
    # a 64x64 image has 4x4 = 16 patches: 16 is out of range
    tiny_backbone()(images(1, 3, 64, 64), ids_keep=torch.tensor([[0, 16]]))


def ids_keep_duplicated(tmp_path):
    tiny_backbone()(images(1, 3, 64, 64), ids_keep=torch.tensor([[3, 3]]))


def truncated_resume_checkpoint(tmp_path):
    # the loader of load_from, --resume and init_cfg
    load_checkpoint(tiny_backbone(), str(truncated_checkpoint(tmp_path)))


def truncated_converter_input(tmp_path):
    converter.main(
        [str(truncated_checkpoint(tmp_path)),
         str(tmp_path / 'out.pth')])


def other_arch_checkpoint(tmp_path):
    wide = HiViTBackbone(
        arch=dict(embed_dims=128, depths=(1, 1, 2), num_heads=4),
        img_size=64)
    tiny_backbone().load_state_dict(wide.state_dict())


def non_itpn_checkpoint_in_converter(tmp_path):
    src = tmp_path / 'resnet.pth'
    torch.save(dict(state_dict={'conv1.weight': torch.zeros(8, 3, 7, 7)}),
               src)
    converter.main([str(src), str(tmp_path / 'out.pth')])


def missing_clip_weights(tmp_path):
    CLIPTeacher(weights=str(tmp_path / 'ViT-B-16.pt'))


def non_finite_loss(tmp_path):
    nonfinite_loss_leaves_teacher(tmp_path)


def empty_image_file(tmp_path):
    (tmp_path / 'empty.jpg').write_bytes(b'')
    load = TRANSFORMS.build(dict(type='mmitpn.CheckedLoadImageFromFile'))
    load(dict(img_path=str(tmp_path / 'empty.jpg')))


def corrupt_image_file(tmp_path):
    (tmp_path / 'corrupt.jpg').write_bytes(b'\xff\xd8\xff not a jpeg')
    load = TRANSFORMS.build(dict(type='mmitpn.CheckedLoadImageFromFile'))
    load(dict(img_path=str(tmp_path / 'corrupt.jpg')))


def coco_without_images(tmp_path):
    (tmp_path / 'train.json').write_text(
        json.dumps(dict(images=[], annotations=[], categories=[])))
    check_coco_ann_file('train.json', str(tmp_path))


def coco_without_annotations(tmp_path):
    (tmp_path / 'train.json').write_text(
        json.dumps(
            dict(
                images=[dict(id=1, file_name='a.jpg', height=64, width=64)],
                annotations=[],
                categories=[dict(id=1, name='circle')])))
    check_coco_ann_file(
        str(tmp_path / 'train.json'), filter_empty_gt=True)


def layer_decay_rate_out_of_range(tmp_path):
    model = nn.Module()
    model.backbone = tiny_backbone()
    ITPNLayerDecayOptimWrapperConstructor(
        dict(optimizer=dict(type='AdamW', lr=1e-3)),
        paramwise_cfg=dict(layer_decay_rate=1.5))(model)


def unknown_mfm_criterion(tmp_path):
    ITPNFeatureHead(fpn_channels=32, target_channels=(16, 32, 64),
                    embed_dims=32, depth=1, num_heads=2, img_size=64,
                    criterion='l3')


def out_indices_out_of_range(tmp_path):
    tiny_backbone(out_indices=(0, 3))


def negative_drop_path_rate(tmp_path):
    tiny_backbone(drop_path_rate=-0.1)


def bad_num_outs(tmp_path):
    ITPNPyramid(in_channels=(16, 32, 64), out_channels=32, num_outs=6)


def missing_init_cfg_checkpoint(tmp_path):
    tiny_backbone(
        init_cfg=dict(
            type='Pretrained',
            checkpoint=str(tmp_path / 'pretrain' / 'epoch_20.pth'))
    ).init_weights()


def nonfinite_loss_leaves_teacher(tmp_path):
    """Run the EMA hook on a NaN loss at iteration 3 (index 2); return the
    teacher's weights before, so the caller can compare."""
    model = nn.Module()
    model.backbone = tiny_backbone()
    model.teacher = ExponentialMovingAverage(model.backbone, momentum=0.5)
    runner = SimpleNamespace(model=model, iter=2, logger=None)
    before = copy.deepcopy(model.teacher.state_dict())
    nonfinite_loss_leaves_teacher.before = before
    nonfinite_loss_leaves_teacher.model = model
    nan = torch.tensor(float('nan'))
    EMATeacherHook().after_train_iter(
        runner, 2, outputs=dict(loss=nan, loss_pixel=nan,
                                loss_mfm=torch.tensor(0.5)))


#: (kind, trigger, exception type, regex on the message: the bad value and
#: the fix, table) -- ``table`` marks the one deliberately multi-line
#: message; its first line must match the regex.
CASES = [
    ('image-side-not-multiple-of-16', side_not_multiple_of_16, ValueError,
     r'multiples of 16, got 40x64.*pad_size_divisor=16', False),
    ('wrong-channel-count', wrong_channel_count, ValueError,
     r'3-channel images but got 4 channels.*in_channels=4', False),
    ('integer-image-dtype', integer_image_dtype, TypeError,
     r'floating-point images, got torch\.uint8.*data preprocessor', False),
    ('missing-batch-dim', missing_batch_dim, ValueError,
     r'\(B, C, H, W\), got .* \(3, 64, 64\).*batch dimension', False),
    ('unknown-arch-name', unknown_arch_name, ValueError,
     r"Unknown HiViT arch 'itpn-huge'; choose one of .*'itpn-base'",
     False),
    ('arch-missing-keys', arch_missing_keys, ValueError,
     r"exactly the keys \['depths', 'embed_dims', 'num_heads'\], got "
     r"\['depths', 'embed_dims'\]; add the missing keys", False),
    ('arch-bad-depths', arch_bad_depths, ValueError,
     r'3 positive ints.*depths=\(1, 0, 2\); e\.g\. depths=', False),
    ('num-heads-not-dividing-width', heads_do_not_divide_width, ValueError,
     r'embed_dims=64 must be divisible .*num_heads=3; pick a width',
     False),
    ('pyramid-in-channels-vs-backbone', pyramid_widths_mismatch,
     ValueError, r'stage widths \(32, 64, 128\) but got \(16, 32, 64\); '
     r'set neck in_channels', False),
    ('pyramid-input-count', pyramid_input_count, ValueError,
     r'3 HiViT stage outputs \(backbone out_indices=\(0, 1, 2\)\), got 2',
     False),
    ('bad-mask-ratio', bad_mask_ratio, ValueError,
     r'mask_ratio must be in \(0, 1\), got 1\.0', False),
    ('ids-keep-out-of-range', ids_keep_out_of_range, ValueError,
     r'outside \[0, 16\) \(min 0, max 16\); index the 16 patches', False),
    ('ids-keep-duplicated', ids_keep_duplicated, ValueError,
     r'repeats a patch index.*listed once', False),
    ('truncated-checkpoint-resume', truncated_resume_checkpoint, ValueError,
     r"iter_4\.pth' \(\d+ bytes\) is truncated.*delete it and resume from "
     r'an earlier one', False),
    ('truncated-checkpoint-converter', truncated_converter_input,
     SystemExit, r'Cannot read .*iter_4\.pth.*complete PyTorch checkpoint '
     r'\(not truncated\)', False),
    ('checkpoint-of-another-arch', other_arch_checkpoint, ValueError,
     r'another architecture: \d+ tensors of HiViTBackbone have other '
     r'shapes \(check arch / widths / depths .* or convert', True),
    ('non-itpn-checkpoint-in-converter', non_itpn_checkpoint_in_converter,
     ValueError, r"not an official iTPN / HiViT checkpoint \(keys start "
     r"with \['conv1'\]\); pass an official iTPN", False),
    ('missing-clip-weights', missing_clip_weights, FileNotFoundError,
     r"CLIP weights not found at '.*ViT-B-16\.pt'.*set "
     r'model\.teacher\.weights', False),
    ('non-finite-loss', non_finite_loss, FloatingPointError,
     r'at iteration 3 \(loss=nan, loss_pixel=nan, loss_mfm=0\.5\); the EMA '
     r'teacher was not updated.*lower lr', False),
    ('empty-image-file', empty_image_file, ValueError,
     r"empty\.jpg' is empty \(0 bytes\); replace the file", False),
    ('corrupt-image-file', corrupt_image_file, ValueError,
     r"corrupt\.jpg' cannot be decoded as an image.*replace the file",
     False),
    ('coco-without-images', coco_without_images, ValueError,
     r"train\.json' lists no images.*point ann_file", False),
    ('coco-without-annotations', coco_without_annotations, ValueError,
     r"train\.json' has 1 images but no annotations.*"
     r'filter_empty_gt=False', False),
    ('layer-decay-rate-out-of-range', layer_decay_rate_out_of_range,
     ValueError, r'layer_decay_rate must be in \(0, 1\], got 1\.5; use e\.g',
     False),
    ('unknown-mfm-criterion', unknown_mfm_criterion, ValueError,
     r"criterion must be one of \('l2', 'smooth_l1', 'cosine'\), got 'l3'",
     False),
    ('out-indices-out-of-range', out_indices_out_of_range, ValueError,
     r'out_indices entry 3 is not a stage.*out_indices=\(0, 1, 2\)',
     False),
    ('negative-drop-path-rate', negative_drop_path_rate, ValueError,
     r'drop_path_rate must be in \[0, 1\), got -0\.1; set e\.g', False),
    ('bad-num-outs', bad_num_outs, ValueError,
     r'num_outs must be 3, 4 or 5, got 6', False),
    ('missing-init-cfg-checkpoint', missing_init_cfg_checkpoint,
     FileNotFoundError, r"epoch_20\.pth' does not exist; fix the path "
     r'\(load_from, --resume or init_cfg\.checkpoint\)', False),
]


def test_catalogue_is_complete():
    """At least 20 distinct kinds, each named once."""
    kinds = [c[0] for c in CASES]
    assert len(kinds) >= 20
    assert len(set(kinds)) == len(kinds)


@pytest.mark.parametrize(
    'trigger,exc_type,pattern,table',
    [pytest.param(*case[1:], id=case[0]) for case in CASES])
def test_bad_input_gives_one_line_cause(tmp_path, trigger, exc_type,
                                        pattern, table):
    """The right exception, one line, naming the bad value and the fix."""
    with pytest.raises(exc_type) as err:
        trigger(tmp_path)
    message = str(err.value)
    lines = message.split('\n')
    if table:
        assert len(lines) > 1, message
        message = lines[0]
    else:
        assert len(lines) == 1, f'multi-line message:\n{message}'
    assert message.strip() == message and message, repr(message)
    assert re.search(pattern, message), \
        f'{message!r} does not match {pattern!r}'


def test_other_arch_table_lists_keys_and_shapes():
    """The table of a checkpoint of another arch has one row per tensor,
    with the checkpoint's and the model's shapes."""
    with pytest.raises(ValueError) as err:
        other_arch_checkpoint(None)
    rows = str(err.value).split('\n')[1:]
    count = int(re.search(r': (\d+) tensors', str(err.value)).group(1))
    assert len(rows) == count > 0
    assert any(
        re.search(r'patch_embed\.proj\.weight +checkpoint \(32, 3, 4, 4\) '
                  r'+model \(16, 3, 4, 4\)', r) for r in rows), rows


def test_pos_embed_is_resized_not_rejected():
    """A checkpoint of the same arch at another resolution loads: its
    position embedding is resized to the model's grid."""
    src = tiny_backbone(pos_embed_type='learnable')
    dst = HiViTBackbone(arch=dict(TINY_ARCH), img_size=96,
                        pos_embed_type='learnable')
    dst.load_state_dict(src.state_dict())
    assert dst.pos_embed.shape == (1, 36, 64)
    assert not torch.equal(dst.pos_embed[:, :16], src.pos_embed)


def test_nonfinite_loss_does_not_touch_the_teacher(tmp_path):
    """The teacher keeps its weights when the hook stops on a NaN loss."""
    with pytest.raises(FloatingPointError):
        nonfinite_loss_leaves_teacher(tmp_path)
    before = nonfinite_loss_leaves_teacher.before
    after = nonfinite_loss_leaves_teacher.model.teacher.state_dict()
    assert set(before) == set(after)
    assert all(torch.equal(before[k], after[k]) for k in before)
