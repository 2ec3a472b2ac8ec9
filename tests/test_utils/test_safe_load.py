"""Checkpoints load with weights_only=True and an allow-list; a pickle that
would run code is refused before anything of it runs."""
import argparse
import logging
import os
import pickle

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer, MMLogger
from torch import serialization

from mmitpn.utils.safe_load import (UnsafeCheckpointError, checkpoint_globals,
                                    load_checkpoint_file, unsafe_globals,
                                    use_weights_only_load)


class WritesAFile:
    """Unpickling it creates ``path``: what a malicious checkpoint does."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, 'w'))


def malicious_checkpoint(tmp_path, marker):
    path = tmp_path / 'evil.pth'
    torch.save({'state_dict': {'w': torch.ones(2)},
                'meta': WritesAFile(marker)}, path)
    assert not marker.exists()
    return path


def mmengine_like_checkpoint(path):
    """What MMEngine 0.10 and the official files put beside the weights."""
    buf = HistoryBuffer()
    buf.update(1.5)
    buf.update(np.float64(2.0))
    torch.save(dict(
        state_dict={'w': torch.arange(3.)},
        meta=dict(epoch=np.int64(3), seed=np.uint32(7),
                  dataset_meta=dict(classes=('a', 'b'))),
        message_hub=dict(log_scalars={'train/loss': buf},
                         runtime_info=dict(iter=np.int64(4),
                                           scale=np.array([1., 2.]))),
        args=argparse.Namespace(lr=1e-3, model='itpn_base')), path)
    return path


def test_malicious_pickle_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / 'pwned'
    path = malicious_checkpoint(tmp_path, marker)
    assert unsafe_globals(str(path)) == ['io.open']
    with pytest.raises(UnsafeCheckpointError,
                       match=r"evil\.pth.*io\.open.*refused.*"
                       r"--allow-unsafe-load"):
        load_checkpoint_file(str(path))
    assert not marker.exists()


def test_allow_list_loads_what_real_checkpoints_hold(tmp_path):
    path = mmengine_like_checkpoint(tmp_path / 'ok.pth')
    assert unsafe_globals(str(path)) == []
    ckpt = load_checkpoint_file(str(path))
    assert ckpt['state_dict']['w'].tolist() == [0., 1., 2.]
    assert ckpt['meta']['epoch'] == 3
    assert ckpt['message_hub']['log_scalars']['train/loss'].mean() == 1.75
    assert ckpt['args'].model == 'itpn_base'
    # torch alone refuses them (why the allow-list exists)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path, weights_only=True)


def test_allow_list_is_scoped():
    before = list(serialization.get_safe_globals())
    with checkpoint_globals():
        inside = serialization.get_safe_globals()
        assert any((g[0] if isinstance(g, tuple) else g) is HistoryBuffer
                   for g in inside)
    assert serialization.get_safe_globals() == before


def test_opt_in_loads_a_trusted_file_and_says_so(tmp_path):
    marker = tmp_path / 'made'
    path = malicious_checkpoint(tmp_path, marker)
    records = []
    before = list(serialization.get_safe_globals())

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record)

    logger = MMLogger.get_current_instance()
    handler = Keep(level=logging.WARNING)
    logger.addHandler(handler)
    try:
        ckpt = load_checkpoint_file(str(path), allow_unsafe=True)
    finally:
        logger.removeHandler(handler)
    assert marker.exists()  # it did run: that is what trusting means
    ckpt['meta'].close()
    assert any('io.open' in r.getMessage() for r in records)
    assert serialization.get_safe_globals() == before


@pytest.mark.parametrize('what', ['missing', 'empty', 'truncated'])
def test_bad_files_one_line(tmp_path, what):
    path = tmp_path / 'x.pth'
    if what != 'missing':
        mmengine_like_checkpoint(path)
        data = path.read_bytes()
        path.write_bytes(b'' if what == 'empty' else data[:len(data) // 2])
    err = FileNotFoundError if what == 'missing' else ValueError
    match = 'does not exist' if what == 'missing' else 'truncated or not'
    with pytest.raises(err, match=match) as info:
        load_checkpoint_file(str(path))
    assert '\n' not in str(info.value) and 'x.pth' in str(info.value)


def test_use_weights_only_load_sets_the_hook():
    from mmengine.config import Config
    cfg = Config(dict(default_hooks=dict(
        weights_only_load=dict(type='mmitpn.WeightsOnlyLoadHook'))))
    use_weights_only_load(cfg)
    assert 'allow_unsafe_load' not in cfg.default_hooks.weights_only_load
    use_weights_only_load(cfg, allow_unsafe=True)
    assert cfg.default_hooks.weights_only_load.allow_unsafe_load is True
    bare = Config(dict())
    use_weights_only_load(bare)
    assert bare.default_hooks.weights_only_load.type == \
        'mmitpn.WeightsOnlyLoadHook'
    assert os.environ.get('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD') is None


def test_not_a_checkpoint_one_line(tmp_path):
    path = tmp_path / 'notes.pth'
    path.write_text('not a checkpoint\n')
    with pytest.raises(ValueError, match=r"notes\.pth' \(17 bytes\) is "
                       r'truncated or not a PyTorch checkpoint \(ValueError: '
                       r'neither a zip nor a pickle\)') as info:
        load_checkpoint_file(str(path))
    assert not isinstance(info.value, UnsafeCheckpointError)
