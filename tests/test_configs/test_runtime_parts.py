"""Every shipped config names the registered parts of mmitpn's guarantees
(so any door gives the same run), and the training pipelines mmitpn writes
are seeded per sample."""
import pytest
from mmengine.config import Config

from conftest import REPO

CONFIGS = sorted((REPO / 'configs' / 'itpn').glob('*.py'))
PARTS = {
    'checkpoint': 'mmitpn.CrashSafeCheckpointHook',
    'weights_only_load': 'mmitpn.WeightsOnlyLoadHook',
    'iter_seed': 'mmitpn.IterSeedHook',
    'data_check': 'mmitpn.DataCheckHook',
    'frozen_params': 'mmitpn.FrozenParamSummaryHook',
}
# configs that inherit a host's training pipeline unchanged (ImageNet
# fine-tuning: mmpretrain's RandAugment pipeline) are not seeded per sample
UNSEEDED = ('_in1k.py', )


def _innermost(dataset):
    while 'dataset' in dataset:
        dataset = dataset['dataset']
    return dataset


@pytest.mark.parametrize('path', CONFIGS, ids=lambda p: p.name)
def test_config_names_the_parts(path):
    cfg = Config.fromfile(str(path))
    hooks = cfg.default_hooks
    for key, type_ in PARTS.items():
        assert hooks[key]['type'] == type_, (key, hooks.get(key))
    assert hooks.weights_only_load.get('allow_unsafe_load', False) is False
    fine_tune_in1k = path.name.endswith(UNSEEDED) and \
        'hivit' not in path.name
    if fine_tune_in1k:
        return
    loader = cfg.train_dataloader
    assert loader.sampler.type == 'mmitpn.SeededSampler'
    assert 'shuffle' not in loader.sampler  # the wrapped sampler's own
    pipeline = _innermost(loader.dataset).pipeline
    assert pipeline[0]['type'] == 'mmitpn.SeedAugmentation'
    assert pipeline[1]['type'] == 'mmitpn.CheckedLoadImageFromFile'
