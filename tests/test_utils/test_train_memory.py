"""mmitpn.utils.train_memory: the CPU measurement of a training step and
its scaling to a GPU batch.

- the scaling is checked against hand-computed numbers;
- the input sizes are the configs' (literals of their pipelines);
- a real measurement (tiny demo configs, fresh processes) grows with the
  input as the activations it stores: doubling the pixels of a batch adds
  what the first pixels cost, within the noise of a process's memory.
"""
from pathlib import Path

import pytest
from mmengine.config import Config

from mmitpn.utils.train_memory import (GIB, default_input_size,
                                       estimate_gpu_bytes,
                                       measure_in_subprocess,
                                       measurement_points, verdict)

REPO = Path(__file__).resolve().parents[2]
ITPN = REPO / 'configs' / 'itpn'


def _r(images, size, peak, params=10, trainable=8):
    return dict(images=images, size=list(size), peak_bytes=peak,
                params=params, trainable=trainable, amp=True)


def test_estimate_by_hand():
    # 1 image of 10x10 -> 1000 B, 1 image of 20x20 -> 2500 B: 5 B per
    # pixel; one real image 2000 B; input-free part 2500 - 5 * 400 = 500;
    # weights 4 * 10, moments 8 * 8
    small, real = _r(1, (10, 10), 1000), _r(1, (20, 20), 2500)
    est = estimate_gpu_bytes(small, real, images_per_gpu=8)
    assert est['per_image'] == 2000
    assert est['fixed'] == 40 + 64 + 500
    assert est['total'] == 40 + 64 + 500 + 8 * 2000
    # more images of the same size: per image = the difference per image
    est = estimate_gpu_bytes(_r(4, (8, 8), 1400), _r(8, (8, 8), 2200), 128)
    assert est['per_image'] == 200
    assert est['fixed'] == 40 + 64 + 2200 - 8 * 200
    with pytest.raises(ValueError, match='more pixels'):
        estimate_gpu_bytes(real, small, 8)


def test_verdicts():
    assert verdict(72 * GIB) == 'yes'
    assert verdict(72.1 * GIB) == 'borderline'
    assert verdict(88 * GIB) == 'borderline'
    assert verdict(88.1 * GIB) == 'no'


@pytest.mark.parametrize('name,size', [
    # DETR-style augmentation up to 1333 x 800 (coco_instance_detr_aug.py)
    ('itpn-base-pixel_mask-rcnn_8xb8-amp-1x_coco.py', (800, 1333)),
    ('itpn-large-clip_mask-rcnn_8xb8-amp-1x_coco.py', (800, 1333)),
    ('itpn-base-pixel_upernet_8xb2-amp-160k_ade20k-512x512.py', (512, 512)),
    ('itpn-base-clip_16xb128-coslr-100e_in1k.py', (224, 224)),
    ('itpn-pixel_hivit-base-p16_8xb512-amp-coslr-400e_in1k.py', (224, 224)),
    ('itpn-tiny_mask-rcnn_1xb4-6e_demo.py', (160, 160)),
])
def test_input_sizes_are_the_configs(name, size):
    assert default_input_size(Config.fromfile(str(ITPN / name))) == size


def test_measurement_points():
    det = Config.fromfile(str(ITPN / 'itpn-tiny_mask-rcnn_1xb4-6e_demo.py'))
    assert measurement_points(det) == (dict(num_images=1, size=(80, 80)),
                                       dict(num_images=1, size=(160, 160)))
    seg = Config.fromfile(str(ITPN / 'itpn-tiny_upernet_1xb4-2k_demo.py'))
    h, w = default_input_size(seg)
    assert measurement_points(seg) == (
        dict(num_images=2, size=(h // 2, w // 2)),
        dict(num_images=2, size=(h, w)))


def test_measurement_grows_with_the_input():
    """Detection demo at 2 and 4 images of 160 px (each adds a whole
    image's activations) and segmentation demo crops padded to the size
    measured (mmseg pads every input to its crop size otherwise)."""
    det = str(ITPN / 'itpn-tiny_mask-rcnn_1xb4-6e_demo.py')
    one = measure_in_subprocess(det, 2)
    two = measure_in_subprocess(det, 4)
    assert one['size'] == two['size'] == [160, 160]
    assert one['amp'] is False and one['peak_reset'] is True
    assert one['params'] == two['params'] > 1e6
    added = two['peak_bytes'] - one['peak_bytes']
    # two more images cost about what the first two cost above the
    # input-free part (gradients: 4 bytes per parameter)
    first = one['peak_bytes'] - 4 * one['trainable']
    assert 0.5 * first < added < 1.5 * first

    seg = str(ITPN / 'itpn-tiny_upernet_1xb4-2k_demo.py')
    small = measure_in_subprocess(seg, 2, size=(64, 64))
    large = measure_in_subprocess(seg, 2, size=(128, 128))
    assert large['peak_bytes'] > small['peak_bytes']
