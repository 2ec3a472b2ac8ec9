"""seed_augmentation_per_sample: the config edit tools/train.py makes."""
from mmengine.config import Config

from mmitpn.utils import seed_augmentation_per_sample


def test_wraps_sampler_heads_pipeline_adds_hook_once():
    cfg = Config(dict(
        train_dataloader=dict(
            sampler=dict(type='DefaultSampler', shuffle=True),
            dataset=dict(type='RepeatDataset', times=2, dataset=dict(
                type='CocoDataset', pipeline=[dict(type='LoadImageFromFile')
                                              ]))),
        custom_hooks=[dict(type='mmitpn.EMATeacherHook')]))
    assert seed_augmentation_per_sample(cfg) is True
    assert seed_augmentation_per_sample(cfg) is True  # idempotent
    loader = cfg.train_dataloader
    assert loader.sampler == dict(
        type='mmitpn.SeededSampler',
        sampler=dict(type='DefaultSampler', shuffle=True))
    pipeline = loader.dataset.dataset.pipeline
    assert [t['type'] for t in pipeline] == [
        'mmitpn.SeedAugmentation', 'LoadImageFromFile']
    assert [h['type'] for h in cfg.custom_hooks] == [
        'mmitpn.EMATeacherHook', 'mmitpn.IterSeedHook']


def test_without_a_pipeline_only_the_hook():
    cfg = Config(dict(train_dataloader=dict(
        sampler=dict(type='DefaultSampler'),
        dataset=dict(type='ConcatDataset', datasets=[]))))
    assert seed_augmentation_per_sample(cfg) is False
    assert cfg.train_dataloader.sampler.type == 'DefaultSampler'
    assert cfg.custom_hooks == [dict(type='mmitpn.IterSeedHook')]
    assert seed_augmentation_per_sample(Config(dict())) is False
