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
from conftest import REPO, TINY_ARCH, tiny_itpn_cfg
from mmengine.config import Config
from mmengine.model import ExponentialMovingAverage
from mmengine.runner.checkpoint import load_checkpoint

from mmitpn.datasets import check_coco_ann_file, check_seg_folders
from mmitpn.engine import EMATeacherHook
from mmitpn.engine.checkpoint import check_model_checkpoint
from mmitpn.utils.safe_load import check_loadable
from mmitpn.engine.optimizers import ITPNLayerDecayOptimWrapperConstructor
from mmitpn.models import HiViTBackbone, ITPNPyramid
from mmitpn.converters.official import convert_official, load_official
from mmitpn.models.heads import ITPNFeatureHead
from mmitpn.models.teachers import CLIPTeacher
from mmitpn.registry import MODELS, TRANSFORMS
from mmitpn.utils import setup_tta


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
    # what WeightsOnlyLoadHook checks before load_from, resume and init_cfg
    check_loadable(str(truncated_checkpoint(tmp_path)))


def truncated_converter_input(tmp_path):
    load_official(str(truncated_checkpoint(tmp_path)))


def other_arch_checkpoint(tmp_path):
    wide = HiViTBackbone(
        arch=dict(embed_dims=128, depths=(1, 1, 2), num_heads=4),
        img_size=64)
    tiny_backbone().load_state_dict(wide.state_dict())


def non_itpn_checkpoint_in_converter(tmp_path):
    convert_official(
        dict(state_dict={'conv1.weight': torch.zeros(8, 3, 7, 7)}))


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
    # what WeightsOnlyLoadHook checks before the runner initialises weights
    from types import SimpleNamespace

    from mmitpn.engine.hooks import WeightsOnlyLoadHook
    model = nn.Module()
    model.backbone = tiny_backbone(
        init_cfg=dict(
            type='Pretrained',
            checkpoint=str(tmp_path / 'pretrain' / 'epoch_20.pth')))
    WeightsOnlyLoadHook().before_run(SimpleNamespace(
        _resume=False, _load_from=None, _has_loaded=False, model=model,
        _train_loop=object(), work_dir=str(tmp_path)))


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


def init_cfg_without_prefix(tmp_path):
    """An mmitpn checkpoint (keys ``backbone.*``) loaded without
    ``prefix='backbone.'``: nothing would load."""
    model = nn.Module()
    model.backbone = tiny_backbone()
    path = tmp_path / 'epoch_20.pth'
    torch.save(dict(state_dict=model.state_dict()), path)
    tiny_backbone(init_cfg=dict(type='Pretrained',
                                checkpoint=str(path))).init_weights()


def checkpoint_of_another_depth(tmp_path):
    deep = HiViTBackbone(arch=dict(TINY_ARCH, depths=(1, 1, 6)),
                         img_size=64)
    tiny_backbone().load_state_dict(deep.state_dict(), strict=False)


def pyramid_of_another_fpn_depth(tmp_path):
    deep = ITPNPyramid(in_channels=(16, 32, 64), out_channels=32,
                       fpn_depth=2, num_outs=3)
    ITPNPyramid(in_channels=(16, 32, 64), out_channels=32, fpn_depth=1,
                num_outs=3).load_state_dict(deep.state_dict(), strict=False)


def allow_partial_load_string(tmp_path):
    tiny_backbone(allow_partial_load='blocks_8.1.')


def checkpoint_not_filling_the_model(tmp_path):
    """tools/test.py's check: a backbone-only file for a whole detector."""
    model = nn.Module()
    model.backbone = nn.Linear(2, 2)
    model.roi_head = nn.Linear(2, 2)
    check_model_checkpoint(
        model, dict(state_dict={'backbone.weight': torch.zeros(2, 2),
                                'backbone.bias': torch.zeros(2)}),
        'backbone_only.pth')


def _coco(tmp_path, names, sizes=((64, 64), )):
    (tmp_path / 'train.json').write_text(json.dumps(dict(
        images=[dict(id=i + 1, file_name=f'{i}.jpg', width=w, height=h)
                for i, (w, h) in enumerate(sizes)],
        annotations=[dict(id=1, image_id=1, category_id=1,
                          bbox=[0, 0, 4, 4], area=16, iscrowd=0)],
        categories=[dict(id=i + 1, name=n) for i, n in enumerate(names)])))
    return str(tmp_path / 'train.json')


def coco_classes_differ_in_case(tmp_path):
    check_coco_ann_file(_coco(tmp_path, ['Circle']), classes=('circle', ))


def coco_classes_not_in_file(tmp_path):
    check_coco_ann_file(_coco(tmp_path, ['circle']),
                        classes=('person', 'car'))


def coco_images_below_min_size(tmp_path):
    check_coco_ann_file(_coco(tmp_path, ['circle'], sizes=((16, 64), )),
                        min_size=32)


def ade_empty_image_folder(tmp_path):
    (tmp_path / 'images').mkdir()
    (tmp_path / 'annotations').mkdir()
    check_seg_folders(str(tmp_path), 'images', 'annotations')


def ade_label_maps_missing(tmp_path):
    for d in ('images', 'annotations'):
        (tmp_path / d).mkdir()
    (tmp_path / 'images' / 'a.jpg').write_bytes(b'x')
    (tmp_path / 'annotations' / 'b.png').write_bytes(b'x')
    check_seg_folders(str(tmp_path), 'images', 'annotations')


def tta_with_mask_head(tmp_path):
    setup_tta(Config(dict(model=dict(
        type='MaskRCNN', roi_head=dict(mask_head=dict(type='FCNMaskHead'))
    ))), 'mmdet')


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
     ValueError, r'Cannot read .*iter_4\.pth.*complete PyTorch checkpoint '
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
     r'\(load_from, --resume, init_cfg\.checkpoint', False),
    ('init-cfg-without-prefix', init_cfg_without_prefix, ValueError,
     r'HiViTBackbone: the checkpoint loads 0 of \d+ tensors .*'
     r"backbone\.patch_embed.*prefix='backbone\.'\)", False),
    ('checkpoint-of-another-depth', checkpoint_of_another_depth,
     ValueError, r'incomplete load, \d+ of \d+ tensors.*stages\.2 has 6 '
     r'blocks in the checkpoint, 2 here\): set arch \(depths\).*'
     r'allow_partial_load=True', False),
    ('pyramid-of-another-fpn-depth', pyramid_of_another_fpn_depth,
     ValueError, r'ITPNPyramid: incomplete load.*unexpected \(blocks_'
     r'.*set fpn_depth', False),
    ('allow-partial-load-not-a-tuple', allow_partial_load_string,
     TypeError, r"allow_partial_load must be True, False or a tuple of key "
     r"prefixes.*got 'blocks_8\.1\.'", False),
    ('checkpoint-not-filling-the-model', checkpoint_not_filling_the_model,
     ValueError, r"'backbone_only\.pth' fills 2 of 4 tensors of Module: 2 "
     r'missing \(roi_head \(2\)\).*--allow-partial', False),
    ('coco-classes-differ-in-case', coco_classes_differ_in_case,
     ValueError, r"differ in case \('circle' vs 'Circle'.*"
     r"metainfo=dict\(classes=\.\.\.\)", False),
    ('coco-classes-not-in-file', coco_classes_not_in_file, ValueError,
     r"2 of 2 metainfo\.classes are not categories .*dataset would be "
     r"empty.*names: 'circle'", False),
    ('coco-images-below-min-size', coco_images_below_min_size,
     ValueError, r'All 1 images .* below filter_cfg\.min_size=32.*lower '
     r'min_size', False),
    ('ade-empty-image-folder', ade_empty_image_folder, ValueError,
     r"images' holds no '\.jpg' file.*set img_suffix", False),
    ('ade-label-maps-missing', ade_label_maps_missing, ValueError,
     r"1 of 1 images .* 'a\.jpg' -> 'a\.png' missing.*its label map",
     False),
    ('tta-with-mask-head', tta_with_mask_head, ValueError,
     r"DetTTAModel merges boxes only.*model\.roi_head\.mask_head\); test "
     r'without --tta', False),
]


def _raise_site(trigger, tmp_path):
    """``(file, line)`` of the ``raise`` a trigger ends in."""
    try:
        trigger(tmp_path)
    except BaseException as e:  # noqa: B036 -- SystemExit included
        tb = e.__traceback__
        while tb.tb_next is not None:
            tb = tb.tb_next
        return tb.tb_frame.f_code.co_filename, tb.tb_lineno
    raise AssertionError(f'{trigger.__name__} raised nothing')


def test_catalogue_is_complete(tmp_path):
    """Each kind ends in a check of mmitpn's own (package or tools), not in
    a host library's error that happens to match, and the kinds are not
    copies of one another: they end in at least 38 different ``raise``
    statements of mmitpn, found by running them (only the pairs named
    below share one)."""
    sites = {}
    for kind, trigger, *_ in CASES:
        (tmp_path / kind).mkdir()
        file, line = _raise_site(trigger, tmp_path / kind)
        assert file.startswith((str(REPO / 'mmitpn'), str(REPO / 'tools'))), (
            kind, file, line)
        sites.setdefault((file, line), []).append(kind)
    shared = sorted(sorted(v) for v in sites.values() if len(v) > 1)
    # one check, two inputs on purpose: an empty and an undecodable image;
    # the backbone and the pyramid (one load check for both modules)
    assert shared == [
        ['checkpoint-of-another-depth', 'pyramid-of-another-fpn-depth'],
        ['corrupt-image-file', 'empty-image-file'],
    ], shared
    assert len(sites) >= 38, len(sites)


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
    position embedding is resized to the model's grid, as the official
    code does (bicubic, scale factor (dst + 0.1) / src, written out here
    with F.interpolate), not dropped or kept at its initialisation."""
    import torch.nn.functional as F
    src = tiny_backbone(pos_embed_type='learnable')
    with torch.no_grad():
        src.pos_embed.normal_()  # not the sin-cos table dst starts from
    dst = HiViTBackbone(arch=dict(TINY_ARCH), img_size=96,
                        pos_embed_type='learnable')
    dst.load_state_dict(src.state_dict())
    grid = src.pos_embed.detach().reshape(1, 4, 4, 64).permute(0, 3, 1, 2)
    expected = F.interpolate(grid, scale_factor=(6.1 / 4, 6.1 / 4),
                             mode='bicubic', align_corners=False)
    expected = expected.permute(0, 2, 3, 1).reshape(1, 36, 64)
    assert dst.pos_embed.shape == (1, 36, 64)
    torch.testing.assert_close(dst.pos_embed.detach(), expected)


def test_nonfinite_loss_does_not_touch_the_teacher(tmp_path):
    """The teacher keeps its weights when the hook stops on a NaN loss."""
    with pytest.raises(FloatingPointError):
        nonfinite_loss_leaves_teacher(tmp_path)
    before = nonfinite_loss_leaves_teacher.before
    after = nonfinite_loss_leaves_teacher.model.teacher.state_dict()
    assert set(before) == set(after)
    assert all(torch.equal(before[k], after[k]) for k in before)
