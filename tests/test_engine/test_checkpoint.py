"""A run killed while saving still resumes from its last whole checkpoint."""
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from mmengine.fileio import get_file_backend
from mmengine.fileio.backends import LocalBackend
from mmengine.logging import MMLogger

from mmitpn.engine.atomic_backend import (AtomicLocalBackend,
                                          remove_orphaned_tmp_files)
from mmitpn.engine.hooks import CrashSafeCheckpointHook
from mmitpn.engine.resume import (find_resumable_checkpoint,
                                  is_complete_checkpoint)

REPO = Path(__file__).resolve().parents[2]


def test_only_the_hook_writes_atomically(tmp_path):
    """MMEngine's own local backend stays MMEngine's; the hook's saves go
    through the atomic one (by name, in ``backend_args``)."""
    assert type(get_file_backend(str(tmp_path / 'x.pth'))) is LocalBackend
    hook = CrashSafeCheckpointHook(interval=1)
    assert hook.backend_args == dict(backend='mmitpn_atomic_local')
    backend = get_file_backend(str(tmp_path), backend_args=hook.backend_args)
    assert type(backend) is AtomicLocalBackend
    backend.put(b'whole', str(tmp_path / 'f.pth'))
    assert (tmp_path / 'f.pth').read_bytes() == b'whole'
    assert sorted(p.name for p in tmp_path.iterdir()) == ['f.pth']
    # a remote out_dir keeps MMEngine's behaviour
    assert CrashSafeCheckpointHook(out_dir='s3://bucket/x').backend_args \
        is None


# A toy project for tools/train.py: CheckpointHook every iteration with
# max_keep_ckpts=1. When $KILL_AT_SAVE_OF names a checkpoint, the write of
# that file stops half-way (bytes written to the temporary file, before
# fsync and rename), touches $SAVING_MARKER and sleeps: the test SIGKILLs
# the process there. Nothing of mmitpn is replaced.
TOY_MODULE = textwrap.dedent('''
    import os, time
    import torch
    import torch.nn as nn
    from mmengine.model import BaseModel
    from mmengine.registry import DATASETS, MODELS

    @MODELS.register_module()
    class KillToy(BaseModel):
        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(64, 64)

        def forward(self, inputs, labels=None, mode='tensor'):
            out = self.linear(torch.stack(inputs))
            return dict(loss=(out - torch.stack(labels)).pow(2).mean())

    @DATASETS.register_module()
    class KillToyData(torch.utils.data.Dataset):
        def __len__(self):
            return 32

        def __getitem__(self, i):
            g = torch.Generator().manual_seed(i)
            return dict(inputs=torch.randn(64, generator=g),
                        labels=torch.randn(64, generator=g))

    kill_at = os.environ.get('KILL_AT_SAVE_OF')
    if kill_at:
        real_fsync = os.fsync

        def stalled_fsync(fd):
            name = os.readlink(f'/proc/self/fd/{fd}')
            if os.path.basename(name).startswith(kill_at + '.tmp-'):
                open(os.environ['SAVING_MARKER'], 'w').close()
                time.sleep(120)  # killed here, mid-save
            real_fsync(fd)

        os.fsync = stalled_fsync
''')

TOY_CONFIG = textwrap.dedent('''
    custom_imports = dict(imports=['kill_toy'], allow_failed_imports=False)
    model = dict(type='KillToy')
    train_dataloader = dict(
        dataset=dict(type='KillToyData'), batch_size=4, num_workers=0,
        sampler=dict(type='DefaultSampler', shuffle=True),
        collate_fn=dict(type='pseudo_collate'))
    optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.01))
    train_cfg = dict(by_epoch=False, max_iters=5)
    default_hooks = dict(
        checkpoint=dict(type='mmitpn.CrashSafeCheckpointHook',
                        by_epoch=False, interval=1, max_keep_ckpts=1),
        weights_only_load=dict(type='mmitpn.WeightsOnlyLoadHook'),
        logger=dict(type='LoggerHook', interval=1))
    log_processor = dict(by_epoch=False)
    randomness = dict(seed=0)
''')


def _train(tmp_path, work_dir, *args, env=None):
    (tmp_path / 'kill_toy.py').write_text(TOY_MODULE)
    config = tmp_path / 'kill_toy_config.py'
    config.write_text(TOY_CONFIG)
    full_env = dict(os.environ, OMP_NUM_THREADS='1',
                    PYTHONPATH=os.pathsep.join([str(tmp_path), str(REPO)]),
                    **(env or {}))
    return subprocess.Popen(
        [sys.executable, str(REPO / 'tools' / 'train.py'), str(config),
         '--work-dir', str(work_dir), *args],
        env=full_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, cwd=tmp_path)


def test_sigkill_during_save_resumes_from_the_previous_checkpoint(tmp_path):
    """kill -9 of tools/train.py while iter_3.pth is written,
    max_keep_ckpts=1: iter_2.pth must still be there, complete, named by
    last_checkpoint; ``--resume`` removes the orphaned temporary file,
    continues from iteration 2 and finishes. (MMEngine alone removes
    iter_2.pth before writing iter_3.pth: nothing would be left to resume
    from.)"""
    work_dir = tmp_path / 'work'
    marker = tmp_path / 'saving'
    proc = _train(tmp_path, work_dir, env=dict(
        KILL_AT_SAVE_OF='iter_3.pth', SAVING_MARKER=str(marker)))
    deadline = time.time() + 240
    while not marker.exists():
        assert proc.poll() is None, proc.stdout.read()[-3000:]
        assert time.time() < deadline, 'the save of iter_3.pth never began'
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL

    names = sorted(p.name for p in work_dir.iterdir() if p.is_file())
    tmp_files = [n for n in names if n.startswith('iter_3.pth.tmp-')]
    assert len(tmp_files) == 1, names  # killed mid-write
    assert 'iter_3.pth' not in names
    assert 'iter_2.pth' in names and 'iter_1.pth' not in names, names
    assert is_complete_checkpoint(str(work_dir / 'iter_2.pth'))
    pointer = (work_dir / 'last_checkpoint').read_text().strip()
    assert Path(pointer).name == 'iter_2.pth'

    proc = _train(tmp_path, work_dir, '--resume')
    out, _ = proc.communicate(timeout=240)
    assert proc.returncode == 0, out[-3000:]
    assert 'resumed epoch: 0, iter: 2' in out, out[-3000:]
    assert 'Iter(train) [3/5]' in out and 'Iter(train) [5/5]' in out
    assert 'Iter(train) [2/5]' not in out  # continued, did not restart
    assert 'iter_3.pth.tmp-' in out  # the removal is reported
    names = sorted(p.name for p in work_dir.iterdir() if p.is_file())
    assert not [n for n in names if '.tmp-' in n], names
    ckpts = [n for n in names if n.endswith('.pth')]
    assert ckpts == ['iter_5.pth'], names  # max_keep_ckpts=1 still holds
    ckpt = torch.load(work_dir / 'iter_5.pth', map_location='cpu',
                      weights_only=False)
    assert ckpt['meta']['iter'] == 5


def rotating_hook(tmp_path, save):
    """A hook keeping one checkpoint, ``iter_1.pth`` already saved, and a
    stand-in runner whose ``save_checkpoint`` is ``save``."""
    from collections import deque
    from types import SimpleNamespace
    hook = CrashSafeCheckpointHook(
        interval=1, by_epoch=False, max_keep_ckpts=1)
    hook.file_backend = AtomicLocalBackend()
    hook.out_dir = str(tmp_path)
    torch.save({'w': 1}, tmp_path / 'iter_1.pth')
    hook.keep_ckpt_ids = deque([1])
    runner = SimpleNamespace(
        message_hub=SimpleNamespace(update_info=lambda *args: None),
        work_dir=str(tmp_path), save_checkpoint=save)
    return hook, runner, tmp_path / 'iter_1.pth'


def test_failed_save_removes_nothing(tmp_path):
    """A save that raises leaves the checkpoints it would have replaced."""

    def disk_full(*args, **kwargs):
        raise OSError('disk full')

    hook, runner, old = rotating_hook(tmp_path, disk_full)
    with pytest.raises(OSError):
        hook._save_checkpoint_with_step(runner, 2, {})
    assert old.exists()
    # nothing stays queued: a later removal happens at once
    assert not hook.file_backend._deferring
    hook.file_backend.remove(str(old))
    assert not old.exists()


def test_removal_waits_for_the_new_checkpoint(tmp_path):
    """The oldest checkpoint is removed after the new one is written."""
    seen = []

    def save(out_dir, name, *args, **kwargs):
        seen.append(old.exists())  # still there while saving
        torch.save({'w': 2}, os.path.join(out_dir, name))

    hook, runner, old = rotating_hook(tmp_path, save)
    hook._save_checkpoint_with_step(runner, 2, {})
    assert seen == [True]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        'iter_2.pth', 'last_checkpoint']


def test_remove_orphaned_tmp_files(tmp_path):
    (tmp_path / 'iter_3.pth.tmp-1234').write_bytes(b'part')
    (tmp_path / 'last_checkpoint.tmp-99').write_text('x')
    (tmp_path / 'iter_2.pth').write_bytes(b'whole')
    (tmp_path / 'notes.tmp-draft').write_text('kept: not <name>.tmp-<pid>')
    removed = remove_orphaned_tmp_files(str(tmp_path), str(tmp_path / 'no'))
    assert sorted(os.path.basename(p) for p in removed) == [
        'iter_3.pth.tmp-1234', 'last_checkpoint.tmp-99']
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        'iter_2.pth', 'notes.tmp-draft']


@pytest.fixture
def warnings_log():
    """WARNING lines logged through MMEngine's current logger."""
    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record)

    logger = MMLogger.get_current_instance()
    handler = Keep(level=logging.WARNING)
    logger.addHandler(handler)
    yield records
    logger.removeHandler(handler)


def test_find_resumable_checkpoint_skips_broken_files(tmp_path, warnings_log):
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
    # the skipped file is reported at WARNING, with its name
    skipped = [r.getMessage() for r in warnings_log
               if 'iter_4.pth' in r.getMessage()]
    assert skipped and all(r.levelno == logging.WARNING
                           for r in warnings_log), skipped
    assert any('truncated' in m for m in skipped), skipped

    warnings_log.clear()
    (tmp_path / 'last_checkpoint').write_text('')  # pointer cut short
    assert find_resumable_checkpoint(str(tmp_path)) == str(good)
    assert any('iter_4.pth' in r.getMessage() for r in warnings_log)
    (tmp_path / 'last_checkpoint').write_text(str(good))
    warnings_log.clear()
    assert find_resumable_checkpoint(str(tmp_path)) == str(good)
    assert not warnings_log  # nothing skipped, nothing said
    # a pointer to a deleted file (what MMEngine's rotation could leave)
    broken.unlink()
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'iter_6.pth'))
    assert find_resumable_checkpoint(str(tmp_path)) == str(good)
    assert any('iter_6.pth, which does not exist' in r.getMessage()
               for r in warnings_log), [r.getMessage() for r in warnings_log]
    assert find_resumable_checkpoint(str(tmp_path / 'empty')) is None
