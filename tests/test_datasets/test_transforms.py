"""Transforms: per-sample seeds and one-line image errors."""
import random
import re

import numpy as np
import pytest
import torch
from mmcv.transforms import LoadImageFromFile

from mmitpn.datasets import SeededIndex, SeedAugmentation
from mmitpn.registry import TRANSFORMS


def draws():
    return (random.random(), float(np.random.rand()),
            float(torch.rand(1)))


def test_seed_augmentation_seeds_every_generator():
    t = SeedAugmentation()
    out = t(dict(sample_idx=SeededIndex(3, 1234)))
    first = draws()
    assert type(out['sample_idx']) is int and out['sample_idx'] == 3
    random.seed(1234)
    np.random.seed(1234)
    torch.manual_seed(1234)
    assert first == draws()  # the three generators, seeded with 1234
    t(dict(sample_idx=SeededIndex(3, 1234)))
    assert draws() == first
    t(dict(sample_idx=SeededIndex(3, 99)))
    assert draws() != first


def test_seed_augmentation_without_a_seed_warns_once():
    SeedAugmentation._warned = False
    state = np.random.get_state()
    with pytest.warns(UserWarning, match='not seeded per sample'):
        SeedAugmentation()(dict(sample_idx=3))
    assert np.array_equal(np.random.get_state()[1], state[1])


def test_checked_loader_gives_one_line_mmcv_does_not(tmp_path):
    """The registered loader names the empty file; MMCV's own
    LoadImageFromFile stays MMCV's (its OpenCV assertion)."""
    (tmp_path / 'empty.jpg').write_bytes(b'')
    results = dict(img_path=str(tmp_path / 'empty.jpg'))
    load = TRANSFORMS.build(dict(type='mmitpn.CheckedLoadImageFromFile'))
    with pytest.raises(ValueError, match=r"empty\.jpg' is empty \(0 bytes\)"
                       r'; replace the file'):
        load(dict(results))
    with pytest.raises(Exception) as err:
        LoadImageFromFile()(dict(results))
    assert 'replace the file' not in str(err.value)


def test_checked_loader_passes_arrays_through():
    load = TRANSFORMS.build(dict(type='mmitpn.CheckedLoadImageFromFile'))
    img = np.zeros((5, 7, 3), np.uint8)
    out = load(dict(img=img))
    assert out['img'] is img and out['img_shape'] == (5, 7)


def test_checked_loader_names_the_decoder_error(tmp_path):
    (tmp_path / 'corrupt.jpg').write_bytes(b'\xff\xd8\xff not a jpeg')
    load = TRANSFORMS.build(dict(type='mmitpn.CheckedLoadImageFromFile'))
    with pytest.raises(ValueError) as err:
        load(dict(img_path=str(tmp_path / 'corrupt.jpg')))
    # the decoder's own error type, not a wrapped ValueError
    assert re.search(r"corrupt\.jpg' cannot be decoded as an image "
                     r'\((?!ValueError)\w+\)', str(err.value)), err.value
