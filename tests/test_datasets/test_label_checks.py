"""mmitpn.datasets.label_checks: a bad label ends in one line naming the
file and the value as the file holds it.

Label maps are written as PNG files and read by mmseg's own
``LoadAnnotations`` (with ``reduce_zero_label`` as ADE20K), so the check
sees what a real pipeline gives it; the failure it replaces is reproduced
with torch's cross-entropy.
"""
from pathlib import Path

import mmcv
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmseg.datasets.transforms import LoadAnnotations

from mmitpn.datasets import CheckClassLabels, CheckSegLabels

REPO = Path(__file__).resolve().parents[2]


def _label_file(tmp_path, array, name='ADE_train_00000001.png'):
    path = tmp_path / name
    mmcv.imwrite(array, str(path))
    return str(path)


def _load(path, reduce_zero_label=True, ori_shape=None):
    results = dict(seg_map_path=path, reduce_zero_label=reduce_zero_label,
                   seg_fields=[], img_path='img.jpg')
    if ori_shape is not None:
        results['ori_shape'] = ori_shape
    return LoadAnnotations(reduce_zero_label=reduce_zero_label)(results)


def _ade_like(value_at_corner):
    seg = np.tile(np.arange(0, 151, dtype=np.uint8), (8, 1))[:, :64]
    seg[0, 0] = value_at_corner
    return seg  # raw ADE20K: 0 = other (ignored), 1..150 the classes


def test_value_outside_the_classes_names_file_and_raw_value(tmp_path):
    path = _label_file(tmp_path, _ade_like(173))
    results = _load(path, ori_shape=(8, 64))
    # the failure the user met: the loss with the loaded value 172
    logits = torch.zeros(1, 150, 8, 64)
    target = torch.as_tensor(results['gt_seg_map'], dtype=torch.long)[None]
    with pytest.raises(IndexError, match='Target 172 is out of bounds'):
        F.cross_entropy(logits, target, ignore_index=255)
    with pytest.raises(ValueError) as e:
        CheckSegLabels(num_classes=150)(results)
    msg = str(e.value)
    assert '\n' not in msg
    assert msg.startswith(f'Label map {path!r} holds [173], [172] after '
                          f'reduce_zero_label, outside the 150 classes '
                          f'0..149 (ignore index 255)')


def test_without_reduce_zero_label_the_value_is_the_files(tmp_path):
    seg = np.zeros((4, 4), np.uint8)
    seg[1, 2] = 7
    path = _label_file(tmp_path, seg, 'a.png')
    results = _load(path, reduce_zero_label=False, ori_shape=(4, 4))
    with pytest.raises(ValueError, match=r"'.*a\.png' holds \[7\], outside "
                       r'the 5 classes 0\.\.4'):
        CheckSegLabels(num_classes=5)(results)


def test_good_maps_pass_unchanged(tmp_path):
    path = _label_file(tmp_path, _ade_like(150))  # the last class
    results = _load(path, ori_shape=(8, 64))
    before = results['gt_seg_map'].copy()
    out = CheckSegLabels(num_classes=150)(results)
    assert out is results
    np.testing.assert_array_equal(out['gt_seg_map'], before)
    # 0 in the file became the ignore index 255, which is allowed
    assert (before == 255).any()


def test_colour_label_map(tmp_path):
    path = _label_file(tmp_path, np.zeros((4, 6, 3), np.uint8), 'rgb.png')
    results = dict(seg_map_path=path, gt_seg_map=mmcv.imread(path))
    with pytest.raises(ValueError, match=r"'.*rgb\.png' has shape "
                       r'\(4, 6, 3\).*convert it to class indices'):
        CheckSegLabels(num_classes=3)(results)


def test_label_map_of_another_size(tmp_path):
    path = _label_file(tmp_path, np.ones((4, 6), np.uint8), 'b.png')
    results = _load(path, ori_shape=(4, 7))
    with pytest.raises(ValueError, match=r"'.*b\.png' is 4x6 but its image "
                       r"'img\.jpg' is 4x7"):
        CheckSegLabels(num_classes=3)(results)


def test_class_label_outside_the_head():
    check = CheckClassLabels(num_classes=1000)
    assert check(dict(gt_label=999, img_path='x.jpg'))['gt_label'] == 999
    with pytest.raises(ValueError, match=r"Sample 'x\.jpg' has label 1000, "
                       r'outside the 1000 classes 0\.\.999'):
        check(dict(gt_label=np.array([1000]), img_path='x.jpg'))


@pytest.mark.parametrize('name', [
    'itpn-base-pixel_upernet_8xb2-amp-160k_ade20k-512x512.py',
    'itpn-base-clip_upernet_8xb2-amp-160k_ade20k-512x512.py',
    'itpn-large-pixel_upernet_8xb2-amp-160k_ade20k-512x512.py',
    'itpn-large-clip_upernet_8xb2-amp-160k_ade20k-512x512.py',
    'itpn-tiny_upernet_1xb4-2k_demo.py',
])
def test_segmentation_configs_check_their_labels(name):
    cfg = Config.fromfile(str(REPO / 'configs' / 'itpn' / name))
    types = [t['type'] for t in cfg.train_dataloader.dataset.pipeline]
    i = types.index('LoadAnnotations')
    check = cfg.train_dataloader.dataset.pipeline[i + 1]
    assert check['type'] == 'mmitpn.CheckSegLabels'
    assert check['num_classes'] == cfg.model.decode_head.num_classes
