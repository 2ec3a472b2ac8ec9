"""A run killed while saving still resumes from its last whole checkpoint."""
import os

import pytest
import torch
from mmengine.fileio import get_file_backend

import mmitpn  # noqa: F401  (installs the atomic backend)
from mmitpn.engine.checkpoint import (AtomicLocalBackend,
                                      find_resumable_checkpoint,
                                      is_complete_checkpoint)


def test_local_backend_is_atomic():
    assert isinstance(get_file_backend('work_dirs/x.pth'), AtomicLocalBackend)


def test_interrupted_write_leaves_previous_file(tmp_path, monkeypatch):
    path = tmp_path / 'iter_1.pth'
    backend = AtomicLocalBackend()
    backend.put(b'old', path)

    real_fsync = os.fsync

    def crash(fd):  # the process dies after writing part of the data
        raise KeyboardInterrupt('killed during save')

    monkeypatch.setattr(os, 'fsync', crash)
    with pytest.raises(KeyboardInterrupt):
        backend.put(b'new and longer', path)
    monkeypatch.setattr(os, 'fsync', real_fsync)
    assert path.read_bytes() == b'old'
    assert sorted(p.name for p in tmp_path.iterdir()) == ['iter_1.pth']


def test_find_resumable_checkpoint_skips_broken_files(tmp_path):
    good = tmp_path / 'iter_2.pth'
    torch.save({'state_dict': {'w': torch.ones(3)}}, good)
    assert is_complete_checkpoint(str(good))
    # a truncated newer file (e.g. written by a tool without atomic saves)
    broken = tmp_path / 'iter_4.pth'
    broken.write_bytes(good.read_bytes()[:50])
    os.utime(broken, (good.stat().st_mtime + 10, ) * 2)
    assert not is_complete_checkpoint(str(broken))
    (tmp_path / 'last_checkpoint').write_text(str(broken))
    assert find_resumable_checkpoint(str(tmp_path)) == str(good)
    (tmp_path / 'last_checkpoint').write_text('')  # pointer cut short
    assert find_resumable_checkpoint(str(tmp_path)) == str(good)
    (tmp_path / 'last_checkpoint').write_text(str(good))
    assert find_resumable_checkpoint(str(tmp_path)) == str(good)
    assert find_resumable_checkpoint(str(tmp_path / 'empty')) is None
