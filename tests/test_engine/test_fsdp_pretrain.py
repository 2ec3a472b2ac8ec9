"""FSDP pre-training (MMEngine FlexibleRunner + FSDPStrategy) of the tiny
demo iTPN with its EMA teacher, on 2 CPU processes (gloo), started the way
``tools/train.py --launcher pytorch --strategy fsdp`` starts it."""
import json
import math
import os
import socket
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from mmengine.config import Config

import mmitpn.utils.device as device
from mmitpn.engine.hooks import EMATeacherHook
from mmitpn.utils import setup_fsdp
from conftest import cpu_unless_gpus

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
WORKER = HERE / 'fsdp_pretrain_worker.py'
CONFIG = REPO / 'configs' / 'itpn' / \
    'itpn-tiny_pixel-mfm_1xb32-200e_demo.py'
MAX_ITERS = 3


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.fixture
def no_cuda(monkeypatch):
    monkeypatch.setattr(device, 'cuda_available', lambda: False)


def test_fsdp_pretrain_teacher_follows_full_student(tmp_path, demo_data):
    env = cpu_unless_gpus(dict(os.environ, OMP_NUM_THREADS='1'))
    for key in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR',
                'MASTER_PORT'):
        env.pop(key, None)
    def launch(*args):
        res = subprocess.run(
            [sys.executable, '-m', 'torch.distributed.run', '--nnodes=1',
             '--nproc_per_node=2', '--master_addr=127.0.0.1',
             f'--master_port={_free_port()}', str(WORKER), str(tmp_path),
             *args],
            env=env, capture_output=True, text=True, timeout=180,
            cwd=tmp_path)
        assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
        return json.loads((tmp_path / 'fsdp_result.json').read_text())

    result = launch()

    assert result['world_size'] == 2
    assert result['runner'] == 'FlexibleRunner'
    assert result['wrapper'] == 'MMFullyShardedDataParallel'
    # the student really is sharded: each rank holds a part of it
    local, full = result['local_numel'], result['full_numel']
    assert sum(local) == full and max(local) < full
    # every EMA step is (1 - m) * teacher + m * (full, unsharded) student
    assert len(result['ema_errors']) == MAX_ITERS
    assert max(result['ema_errors']) < 1e-6
    assert result['teacher_moves'][0] > 1e-5  # it moved (momentum 0.5)
    assert result['teacher_steps'] == MAX_ITERS + 1  # the copy + 3 steps
    assert result['teacher_vs_student_max_abs'] > 0
    # each rank keeps a whole teacher, and they stay identical
    assert result['teacher_max_abs_diff'] == 0
    assert result['student_max_abs_diff'] == 0
    # different data per rank, finite losses
    assert result['loss_max_abs_diff'] > 0
    for losses in result['losses']:
        assert len(losses) == MAX_ITERS
        assert all(math.isfinite(v) for v in losses)

    # the checkpoint is a full state dict (rank 0), teacher included,
    # that a model without FSDP loads strictly
    ckpt = torch.load(tmp_path / f'iter_{MAX_ITERS}.pth', map_location='cpu',
                      weights_only=False)
    state = ckpt['state_dict']
    assert int(state['teacher.steps']) == MAX_ITERS + 1
    from mmitpn.registry import MODELS
    cfg = Config.fromfile(str(CONFIG))
    model = MODELS.build(cfg.model)
    model.load_state_dict(state, strict=True)
    student = torch.cat([
        p.detach().flatten() for p in model.backbone.parameters()])
    teacher = torch.cat([
        p.detach().flatten() for p in model.teacher.module.parameters()])
    assert float((student - teacher).abs().max()) == pytest.approx(
        result['teacher_vs_student_max_abs'], rel=1e-5)

    # --resume under FSDP (sharded optimizer state loaded back): the run
    # goes on from iteration 3 with the checkpointed teacher and its step
    resumed = launch(str(MAX_ITERS + 2), '--resume')
    assert len(resumed['ema_errors']) == 2  # iterations 4 and 5 only
    assert max(resumed['ema_errors']) < 1e-6
    assert resumed['teacher_steps'] == MAX_ITERS + 3
    assert resumed['teacher_max_abs_diff'] == 0
    assert resumed['student_max_abs_diff'] == 0
    assert all(math.isfinite(v) for v in resumed['losses'][0])


def test_setup_fsdp_config(no_cuda):
    cfg = Config.fromfile(str(CONFIG))
    cfg.model_wrapper_cfg = dict(type='MMDistributedDataParallel')
    strategy = setup_fsdp(cfg, 'pytorch')
    assert cfg.runner_type == 'FlexibleRunner'
    assert 'model_wrapper_cfg' not in cfg
    assert strategy is cfg.strategy
    assert strategy.type == 'ResumableFSDPStrategy'
    assert strategy.state_dict_cfg == 'full'
    assert strategy.model_wrapper == dict(
        type='MMFullyShardedDataParallel',
        use_orig_params=True,
        ignored_modules=['teacher'],
        device_id='cpu')

    # no EMA teacher hook: nothing ignored; kept user settings
    cfg = Config(
        dict(
            launcher='slurm',
            strategy=dict(
                model_wrapper=dict(sharding_strategy='SHARD_GRAD_OP'))))
    setup_fsdp(cfg, state_dict='local')
    wrapper = cfg.strategy.model_wrapper
    assert 'ignored_modules' not in wrapper
    assert wrapper.sharding_strategy == 'SHARD_GRAD_OP'
    assert cfg.strategy.state_dict_cfg == 'local'


def test_setup_fsdp_cuda(monkeypatch):
    monkeypatch.setattr(device, 'cuda_available', lambda: True)
    cfg = Config(dict(custom_hooks=[dict(type='mmitpn.EMATeacherHook')]))
    setup_fsdp(cfg, 'pytorch')
    assert 'device_id' not in cfg.strategy.model_wrapper  # LOCAL_RANK
    assert cfg.strategy.model_wrapper.ignored_modules == ['teacher']


def test_setup_fsdp_errors():
    with pytest.raises(ValueError, match='FSDP needs a distributed'):
        setup_fsdp(Config(dict()), 'none')
    with pytest.raises(ValueError, match="state_dict must be 'full'"):
        setup_fsdp(Config(dict()), 'pytorch', state_dict='sharded')
    with pytest.raises(ValueError, match='FSDP runs with FlexibleRunner'):
        setup_fsdp(Config(dict(runner_type='Runner')), 'pytorch')


def test_ema_hook_refuses_sharded_teacher():
    """A teacher sharded by FSDP (not ignored) has shard-shaped weights
    outside ``summon_full_params``: the hook stops with the fix."""

    class Teacher(torch.nn.Module):

        def __init__(self, numel):
            super().__init__()
            self.module = torch.nn.Module()
            self.module.weight = torch.nn.Parameter(torch.zeros(numel))

    model = torch.nn.Module()
    model.backbone = torch.nn.Module()
    model.backbone.weight = torch.nn.Parameter(torch.zeros(8))
    hook = EMATeacherHook()
    model.teacher = Teacher(8)
    runner = SimpleNamespace(model=model)  # not FSDP: no gathering
    hook._check_teacher_unsharded(runner, model)  # whole: fine
    model.teacher = Teacher(4)
    with pytest.raises(RuntimeError,
                       match=r"sharded the teacher.*ignored_modules="):
        hook._check_teacher_unsharded(runner, model)
