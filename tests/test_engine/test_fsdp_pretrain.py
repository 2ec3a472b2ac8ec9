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
CLIP_WORKER = HERE / 'fsdp_clip_worker.py'
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


def tiny_clip_model_cfg(clip_file: str) -> dict:
    """ITPNCLIP of a tiny HiViT on 64 px images with a tiny CLIP teacher
    (32-d tokens, 4 x 4 patches)."""
    from conftest import TINY_ARCH
    return dict(
        type='mmitpn.ITPNCLIP',
        backbone=dict(type='mmitpn.HiViTBackbone', arch=TINY_ARCH,
                      img_size=64, use_mask_token=True),
        neck=dict(type='mmitpn.ITPNPyramid', in_channels=(16, 32, 64),
                  out_channels=32, fpn_depth=1, num_outs=3),
        head=dict(type='mmitpn.CLIPDistillHead', in_channels=32,
                  level_sizes=(4, 2, 1), embed_dims=32, target_dims=32),
        teacher=dict(type='mmitpn.CLIPTeacher', weights=clip_file),
        data_preprocessor=dict(
            type='mmpretrain.SelfSupDataPreprocessor',
            mean=[123.675, 116.28, 103.53],
            std=[58.395, 57.12, 57.375],
            to_rgb=True))


def test_fsdp_keeps_the_frozen_clip_teacher_whole(tmp_path):
    """ITPNCLIP under ResumableFSDPStrategy on 2 CPU processes: the student
    is sharded and trained, the registered CLIP teacher is an ignored
    module (whole, frozen, identical on both ranks, still the CLIP file's
    weights after training steps) and the full state dict holds the
    student only, which a model without FSDP loads strictly."""
    from mmpretrain.models.utils.clip_generator_helper import CLIP
    torch.manual_seed(0)
    clip = CLIP(32, 64, 1, 64, 16, context_length=8, vocab_size=50,
                transformer_width=64, transformer_heads=1,
                transformer_layers=1)
    clip_file = tmp_path / 'tiny_clip.pt'
    torch.save(clip.state_dict(), clip_file)
    cfg = tiny_clip_model_cfg(str(clip_file))
    (tmp_path / 'model.json').write_text(json.dumps(cfg))
    env = cpu_unless_gpus(dict(os.environ, OMP_NUM_THREADS='1'))
    for key in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR',
                'MASTER_PORT'):
        env.pop(key, None)
    out = tmp_path / 'clip_result.json'
    res = subprocess.run(
        [sys.executable, '-m', 'torch.distributed.run', '--nnodes=1',
         '--nproc_per_node=2', '--master_addr=127.0.0.1',
         f'--master_port={_free_port()}', str(CLIP_WORKER),
         str(tmp_path / 'model.json'), str(out)],
        env=env, capture_output=True, text=True, timeout=180, cwd=tmp_path)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    result = json.loads(out.read_text())

    assert result['world_size'] == 2
    assert result['wrapper'] == 'MMFullyShardedDataParallel'
    # the student is sharded and trains
    local, full = result['local_numel'], result['full_numel']
    assert sum(local) == full and max(local) < full
    assert result['student_moved'] > 1e-4
    assert result['student_max_abs_diff'] == 0
    assert result['loss_max_abs_diff'] > 0  # different data per rank
    # the teacher: whole parameter shapes on each rank (not shards),
    # frozen, the CLIP file's weights, the same targets on both ranks
    assert result['teacher_shapes_whole']
    assert not result['teacher_requires_grad']
    assert result['teacher_vs_clip_max_abs'] == 0
    assert result['teacher_max_abs_diff'] == 0
    assert result['target_max_abs_diff'] == 0
    # the full state dict is the student's: no teacher key, and it loads
    # strictly into a model built without FSDP
    from mmitpn.registry import MODELS
    model = MODELS.build(cfg)
    assert result['state_keys'] == sorted(model.state_dict())
    assert not [k for k in result['state_keys'] if k.startswith('teacher')]
    state = torch.load(str(out) + '.pth', weights_only=True)
    model.load_state_dict(state, strict=True)
    # ... and holds the trained student
    trained = torch.load(str(out) + '.student.pth', weights_only=True)
    loaded = torch.cat([p.detach().flatten()
                        for n, p in model.named_parameters()
                        if not n.startswith('teacher.')])
    assert torch.equal(loaded, trained)


def test_setup_fsdp_config(no_cuda):
    cfg = Config.fromfile(str(CONFIG))
    cfg.model_wrapper_cfg = dict(type='MMDistributedDataParallel')
    strategy = setup_fsdp(cfg, 'pytorch')
    assert cfg.runner_type == 'FlexibleRunner'
    assert 'model_wrapper_cfg' not in cfg
    assert strategy is cfg.strategy
    assert strategy.type == 'mmitpn.ResumableFSDPStrategy'
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
