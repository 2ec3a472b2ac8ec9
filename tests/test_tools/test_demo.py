"""Checks of ``tools/demo.py`` that need no training run: the demo is a
preset of :class:`mmitpn.experiments.ablation.Ablation` (variants d and a
of seed 0), and the demo fine-tuning configs start from its pre-training."""
from mmengine.config import Config

from mmitpn.experiments import ablation as abl
from mmitpn.experiments import runs


def test_demo_configs_start_from_the_demos_pretraining():
    pretrain = runs.find_config(abl.PRETRAIN_CFG)
    # where the demo (default --work-dir work_dirs/demo) leaves it
    ckpt = (f'work_dirs/demo/{abl.DEMO_LAYOUT["pretrain", "pixel-mfm"]}/'
            f'{runs.final_checkpoint(pretrain)}')
    assert ckpt == 'work_dirs/demo/pretrain/epoch_200.pth'
    for config, _, _ in abl.TASKS.values():
        model = Config.fromfile(runs.find_config(config)).model
        for part in (model.backbone, model.neck):
            assert part.init_cfg.checkpoint == ckpt


def test_demo_runs_are_the_ablations_variants_d_and_a():
    # pre-trained backbone + pyramid (pixel + MFM), and from scratch
    assert abl.VARIANTS['d'][:2] == ('pixel-mfm', True)
    assert abl.VARIANTS['a'][:2] == (None, False)
    assert set(abl.DEMO_LAYOUT) == {('pretrain', 'pixel-mfm'), ('det', 'd'),
                                    ('det', 'a')}
    # the seed the configs ship with (the README's numbers are seed 0's)
    assert abl.DEMO_SEED == 0
    for name in (abl.PRETRAIN_CFG, abl.TASKS['det'][0]):
        assert Config.fromfile(runs.find_config(name)).randomness.seed == 0
