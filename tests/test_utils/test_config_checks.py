"""mmitpn.utils.config_checks: what a user changes first runs, or ends in
one line naming the value and the fix.

The expectations come from the hosts themselves: MMEngine builds each
scheduler of each shipped config as its runner would (``end`` defaulted to
the training length, epochs converted with the epoch length), and torch
builds the DataLoader; the check must refuse exactly what they refuse.
"""
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import PARAM_SCHEDULERS

from mmitpn.utils.config_checks import (ConfigCheckError, check_config,
                                        check_dataloaders, check_schedule,
                                        fix_dataloaders)

REPO = Path(__file__).resolve().parents[2]
ITPN = REPO / 'configs' / 'itpn'
PRETRAIN_DEMO = ITPN / 'itpn-tiny_pixel-mfm_1xb32-20e_demo.py'
DET_DEMO = ITPN / 'itpn-tiny_mask-rcnn_1xb4-6e_demo.py'


def load(path, **options):
    cfg = Config.fromfile(str(path))
    cfg.merge_from_dict(options)
    return cfg


def mmengine_accepts(cfg, epoch_length):
    """Whether MMEngine builds every scheduler of ``cfg`` (as
    Runner.build_param_scheduler does); the error text otherwise."""
    train_cfg = cfg.train_cfg
    by_epoch = 'max_epochs' in train_cfg
    length = train_cfg.max_epochs if by_epoch else train_cfg.max_iters
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    scheds = cfg.param_scheduler
    scheds = [scheds] if isinstance(scheds, dict) else scheds
    for s in scheds:
        s = dict(s)
        if s.get('by_epoch', True) == by_epoch:
            s.setdefault('end', length)
        s.pop('_scope_', None)
        try:
            PARAM_SCHEDULERS.build(
                s, default_args=dict(optimizer=opt,
                                     epoch_length=epoch_length))
        except (ValueError, AssertionError) as e:
            return str(e)
    return True


def test_short_demo_pretraining_names_the_scheduler_and_the_fix():
    cfg = load(PRETRAIN_DEMO, **{'train_cfg.max_epochs': 1})
    # the failure the user met, from MMEngine itself
    assert 'end should be larger than begin' in mmengine_accepts(cfg, 10)
    with pytest.raises(ConfigCheckError) as e:
        check_schedule(cfg)
    msg = str(e.value)
    assert '\n' not in msg
    assert msg.startswith('param_scheduler[1] (CosineAnnealingLR) begins '
                          'at epoch 1')
    assert 'train_cfg.max_epochs=1' in msg
    assert 'set train_cfg.max_epochs to at least 2' in msg
    # the fix it names runs
    cfg = load(PRETRAIN_DEMO, **{'train_cfg.max_epochs': 2})
    assert mmengine_accepts(cfg, 10) is True
    assert check_schedule(cfg, epoch_length=10) == []


def _shipped():
    return sorted(p for p in ITPN.glob('*.py'))


@pytest.mark.parametrize('path', _shipped(), ids=lambda p: p.stem)
def test_every_config_and_length_agrees_with_mmengine(path):
    """For every shipped config shortened to 1, 2, 3, 6, 41 epochs (or 1,
    100, 1501 iterations) and epochs of 1 or 7 iterations: the check
    raises exactly when MMEngine refuses a scheduler."""
    base = Config.fromfile(str(path))
    by_epoch = 'max_epochs' in base.train_cfg
    key = 'train_cfg.max_epochs' if by_epoch else 'train_cfg.max_iters'
    lengths = (1, 2, 3, 6, 41) if by_epoch else (1, 100, 1501)
    for length in lengths:
        cfg = load(path, **{key: length})
        for epoch_length in (1, 7):
            verdict = mmengine_accepts(cfg, epoch_length)
            if verdict is True:
                check_schedule(cfg, epoch_length=epoch_length)
            else:
                with pytest.raises(ConfigCheckError, match='param_scheduler'):
                    check_schedule(cfg, epoch_length=epoch_length)


def test_no_iteration_per_epoch():
    cfg = load(PRETRAIN_DEMO)
    assert 'must be a positive integer, but got 0' in \
        mmengine_accepts(cfg, 0)
    with pytest.raises(ConfigCheckError,
                       match='0 iterations per epoch.*smaller batch_size'):
        check_schedule(cfg, epoch_length=0)


def test_schedules_that_run_but_not_as_meant_warn():
    # a longer run: the step schedule of the demo ends at epoch 6
    notes = check_schedule(load(DET_DEMO, **{'train_cfg.max_epochs': 12}))
    assert notes == [
        'param_scheduler[1] (MultiStepLR) ends at epoch 6 but training '
        'runs to 12 (train_cfg.max_epochs): the lr stays at its last value '
        'for 6 epochs; set its end (and milestones) for the new length.'
    ]
    # a shorter one: cut schedule, validation every 2 epochs never runs
    notes = check_schedule(load(DET_DEMO, **{'train_cfg.max_epochs': 1}))
    assert len(notes) == 2
    assert notes[0].startswith('param_scheduler[1] (MultiStepLR) runs to '
                               'epoch 6 but training stops at 1')
    assert notes[1].startswith('train_cfg.val_interval=2 is longer than the '
                               'training (train_cfg.max_epochs=1)')
    # the shipped lengths: nothing to say
    assert check_schedule(load(DET_DEMO)) == []
    assert check_schedule(load(PRETRAIN_DEMO), epoch_length=10) == []


def _dataloader_error(loader_cfg):
    """What torch says when building a DataLoader with these options."""
    kwargs = {k: loader_cfg[k] for k in ('num_workers', 'persistent_workers',
                                         'prefetch_factor')
              if k in loader_cfg}
    try:
        torch.utils.data.DataLoader(list(range(4)), batch_size=2, **kwargs)
    except ValueError as e:
        return str(e)
    return None


def test_zero_workers_with_persistent_workers_is_fixed():
    cfg = load(PRETRAIN_DEMO, **{'train_dataloader.num_workers': 0})
    assert cfg.train_dataloader.persistent_workers is True
    assert 'persistent_workers option needs num_workers > 0' in \
        _dataloader_error(cfg.train_dataloader)
    with pytest.raises(ConfigCheckError,
                       match=r'train_dataloader.persistent_workers=True.*'
                       r'set train_dataloader.persistent_workers=False'):
        check_dataloaders(cfg)
    notes = fix_dataloaders(cfg)
    assert notes == ['train_dataloader.num_workers=0: persistent_workers '
                     'set to False (it needs worker processes).']
    assert cfg.train_dataloader.persistent_workers is False
    assert _dataloader_error(cfg.train_dataloader) is None
    check_dataloaders(cfg)
    # workers left: nothing changes
    cfg = load(PRETRAIN_DEMO)
    assert fix_dataloaders(cfg) == []
    assert cfg.train_dataloader.persistent_workers is True


def test_zero_workers_with_prefetch_factor_is_fixed():
    cfg = load(DET_DEMO, **{'val_dataloader.num_workers': 0,
                            'val_dataloader.prefetch_factor': 4})
    assert 'prefetch_factor option could only be specified' in \
        _dataloader_error(cfg.val_dataloader)
    notes = fix_dataloaders(cfg)
    assert any('val_dataloader.num_workers=0: prefetch_factor dropped' in n
               for n in notes)
    assert _dataloader_error(cfg.val_dataloader) is None


@pytest.mark.parametrize('key,value,match', [
    ('train_dataloader.num_workers', -1, r'num_workers=-1: give a whole'),
    ('train_dataloader.num_workers', 1.5, r'num_workers=1.5: give a whole'),
    ('train_dataloader.batch_size', 0, r'batch_size=0: give a whole'),
])
def test_values_no_fix_can_guess(key, value, match):
    cfg = load(DET_DEMO, **{key: value})
    with pytest.raises(ConfigCheckError, match=match):
        check_config(cfg)


def test_check_config_fixes_then_checks():
    cfg = load(PRETRAIN_DEMO, **{'train_dataloader.num_workers': 0,
                                 'train_cfg.max_epochs': 20})
    assert check_config(cfg, epoch_length=10) == [
        'train_dataloader.num_workers=0: persistent_workers set to False '
        '(it needs worker processes).'
    ]
    cfg = load(PRETRAIN_DEMO, **{'train_cfg.max_epochs': 1})
    with pytest.raises(ConfigCheckError, match='at least 2'):
        check_config(cfg)
