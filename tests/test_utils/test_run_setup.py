"""The edits and checks a command line makes before the runner exists."""
import pytest
from mmengine.config import Config

from mmitpn.utils.config_checks import ConfigCheckError
from mmitpn.utils.run_setup import prepare_test, prepare_train, set_work_dir


def test_work_dir_priority():
    cfg = Config(dict(work_dir='from_config'))
    set_work_dir(cfg, 'configs/x/my_cfg.py')
    assert cfg.work_dir == 'from_config'
    set_work_dir(cfg, 'configs/x/my_cfg.py', 'cli')
    assert cfg.work_dir == 'cli'
    bare = Config(dict())
    set_work_dir(bare, 'configs/x/my_cfg.py')
    assert bare.work_dir == './work_dirs/my_cfg'


def test_prepare_train_maps_resume_and_checks():
    cfg = Config(dict(train_dataloader=dict(
        num_workers=0, persistent_workers=True, batch_size=2)))
    prepare_train(cfg, 'auto')
    assert cfg.resume is True and cfg.load_from is None
    assert cfg.default_hooks.weights_only_load.type == \
        'mmitpn.WeightsOnlyLoadHook'
    assert cfg.train_dataloader.persistent_workers is False  # fixed
    given = Config(dict())
    prepare_train(given, 'work/epoch_1.pth')
    assert given.load_from == 'work/epoch_1.pth' and given.resume
    plain = Config(dict())
    prepare_train(plain)
    assert 'resume' not in plain and 'default_hooks' not in plain
    with pytest.raises(ConfigCheckError, match='batch_size=0'):
        prepare_train(Config(dict(train_dataloader=dict(batch_size=0))))


def test_prepare_test_loads_through_the_hook():
    cfg = Config(dict(test_dataloader=dict(num_workers=0,
                                           persistent_workers=True)))
    prepare_test(cfg, 'model.pth', allow_unsafe=True)
    assert cfg.load_from == 'model.pth'
    assert cfg.test_dataloader.persistent_workers is False
    assert cfg.default_hooks.weights_only_load.allow_unsafe_load is True
