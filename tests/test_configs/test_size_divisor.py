"""Every config feeds HiViT images whose sides are multiples of 16.

HiViT rejects other sizes (one-line error naming the size and the fix), so
each config must either pad the batch in its data preprocessor to a multiple
of 16 (detection: ``pad_size_divisor``; segmentation: a fixed ``size`` for
training and ``test_cfg.size_divisor`` / ``size`` for inference) or, for
pre-training and classification (no padding preprocessor), end every
pipeline with a fixed-size crop / resize whose sides are multiples of 16.
"""
from pathlib import Path

import pytest
from mmengine.config import Config

REPO = Path(__file__).resolve().parents[2]
PATCH = 16
CONFIGS = sorted(
    str(p.relative_to(REPO)) for p in (REPO / 'configs').rglob('*.py')
    if '_base_' not in p.parts)
#: Pipeline steps that give every image a fixed size, and the key of it.
FIXED_SIZE_STEPS = {
    'RandomResizedCrop': 'scale',
    'CenterCrop': 'crop_size',
    'RandomCrop': 'crop_size',
}


def _sides(value):
    return (value, value) if isinstance(value, int) else tuple(value)


def _multiple(value) -> bool:
    return all(s % PATCH == 0 for s in _sides(value))


def _pipelines(cfg):
    """``{split: pipeline}`` of the config's dataloaders."""
    out = {}
    for split in ('train', 'val', 'test'):
        loader = cfg.get(f'{split}_dataloader')
        if not loader:
            continue
        dataset = loader['dataset']
        while 'dataset' in dataset:  # dataset wrappers
            dataset = dataset['dataset']
        out[split] = dataset.get('pipeline', [])
    return out


def _fixed_size(pipeline):
    """The size of the last fixed-size step of a pipeline, or None when a
    later step changes the size again (or there is none)."""
    size = None
    for step in pipeline:
        kind = step['type'].split('.')[-1]
        if kind in FIXED_SIZE_STEPS:
            size = step[FIXED_SIZE_STEPS[kind]]
        elif kind == 'Resize' and not step.get('keep_ratio', False) and \
                'scale' in step:
            size = step['scale']
        elif kind in ('Resize', 'ResizeEdge', 'RandomResize',
                      'RandomChoiceResize'):
            size = None
    return size


def test_every_config_is_found():
    assert len(CONFIGS) >= 20
    assert any('_mask-rcnn_' in c for c in CONFIGS)


@pytest.mark.parametrize('config', CONFIGS)
def test_config_pads_to_multiple_of_16(config):
    """The data preprocessor pads (or every pipeline crops) to a multiple
    of 16, so no batch reaches HiViT with other sides."""
    cfg = Config.fromfile(str(REPO / config))
    dp = dict(cfg.get('data_preprocessor') or {})
    dp.update(cfg.model.get('data_preprocessor') or {})
    if 'pad_size_divisor' in dp:
        assert dp['pad_size_divisor'] % PATCH == 0, (
            f'{config}: pad_size_divisor={dp["pad_size_divisor"]} is not a '
            f'multiple of {PATCH}')
        return
    if 'SegDataPreProcessor' in str(dp.get('type')):
        assert dp.get('size') is not None and _multiple(dp['size']), (
            f'{config}: training size {dp.get("size")} is not padded to '
            f'a multiple of {PATCH}')
        test_cfg = dp.get('test_cfg') or {}
        assert (test_cfg.get('size_divisor') or 1) % PATCH == 0 or (
            test_cfg.get('size') is not None
            and _multiple(test_cfg['size'])), (
                f'{config}: test_cfg={test_cfg} does not pad inference '
                f'images to a multiple of {PATCH}')
        return
    pipelines = _pipelines(cfg)
    assert pipelines, f'{config}: no padding preprocessor and no pipeline'
    for split, pipeline in pipelines.items():
        size = _fixed_size(pipeline)
        assert size is not None and _multiple(size), (
            f'{config}: the {split} pipeline gives images of size {size}, '
            f'not a fixed multiple of {PATCH}, and the data preprocessor '
            f'does not pad; add pad_size_divisor={PATCH} or a crop')
