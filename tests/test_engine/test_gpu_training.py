"""Training paths that only exist on a CUDA GPU: fp16 AMP with dynamic loss
scaling (and its scaler in the checkpoint), FSDP on one GPU (NCCL).

Marked ``gpu`` and skipped without CUDA; run them on a GPU machine with
``python -m pytest -m gpu``.
"""
import os
import socket

import pytest
import torch
from conftest import ToyImages, tiny_itpn_cfg
from mmengine.hooks import Hook
from mmengine.runner import Runner

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(),
                       reason='needs a CUDA GPU')
]


class Record(Hook):
    """The loss scale at the start of training and the loss of each
    iteration."""

    def __init__(self):
        self.start_scale = None
        self.losses = []

    def before_train(self, runner):
        self.start_scale = runner.optim_wrapper.loss_scaler.get_scale()

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        self.losses.append(float(outputs['loss'].detach()))


def amp_runner(work_dir, max_iters, init_scale, resume=False, hooks=()):
    return Runner(
        model=tiny_itpn_cfg(),
        work_dir=str(work_dir),
        train_dataloader=dict(
            dataset=ToyImages(8),
            sampler=dict(type='InfiniteSampler', shuffle=True),
            collate_fn=dict(type='default_collate'),
            batch_size=2,
            num_workers=0),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        optim_wrapper=dict(
            type='AmpOptimWrapper',
            dtype='float16',
            loss_scale=dict(init_scale=init_scale, growth_interval=1000),
            optimizer=dict(type='AdamW', lr=1e-4)),
        default_hooks=dict(
            checkpoint=dict(
                type='CheckpointHook', interval=max_iters, by_epoch=False),
            logger=dict(type='LoggerHook', interval=1)),
        custom_hooks=[dict(type='mmitpn.EMATeacherHook'), *hooks],
        randomness=dict(seed=0),
        resume=resume,
        default_scope='mmpretrain')


def test_gpu_fp16_amp_loss_scale_is_checkpointed_and_resumed(tmp_path):
    """fp16 AMP on CUDA trains with a dynamic loss scale; the checkpoint
    holds the scaler's live scale, and --resume restores it (not the
    config's initial scale)."""
    rec = Record()
    runner = amp_runner(tmp_path, 3, init_scale=1024., hooks=[rec])
    runner.train()
    assert next(runner.model.parameters()).is_cuda
    assert rec.start_scale == 1024.
    assert len(rec.losses) == 3 and all(
        torch.isfinite(torch.tensor(rec.losses)))
    live = runner.optim_wrapper.loss_scaler.get_scale()
    assert live in (1024., 512., 256.)  # halved on an overflow, never grown
    ckpt = torch.load(tmp_path / 'iter_3.pth', map_location='cpu',
                      weights_only=False)
    saved = ckpt['optimizer']['loss_scaler']
    assert float(saved['scale']) == live
    # a resumed run configured with another initial scale takes the saved one
    rec2 = Record()
    resumed = amp_runner(tmp_path, 4, init_scale=65536., resume=True,
                         hooks=[rec2])
    resumed.train()
    assert rec2.start_scale == live
    assert len(rec2.losses) == 1  # iteration 4 only


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_gpu_fsdp_one_gpu_matches_the_plain_model():
    """A model wrapped in FSDP (NCCL, one process on one GPU) gives the
    plain model's loss and gradients (given masks, through FSDP's
    forward). With one rank torch's FSDP shards nothing (NO_SHARD; NCCL
    refuses two ranks on one GPU): this checks the CUDA / NCCL wrapping;
    sharding itself is checked with two gloo processes in
    ``test_fsdp_pretrain.py``. (The same body passes on a CPU with gloo
    and ``device_id=torch.device('cpu')``.)"""
    import torch.distributed as dist
    from mmpretrain.structures import DataSample
    from torch.distributed.fsdp import FullyShardedDataParallel as FSDP

    from mmitpn.registry import MODELS
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(_free_port()))
    dist.init_process_group('nccl', rank=0, world_size=1)
    try:
        plain = MODELS.build(tiny_itpn_cfg(mfm=False)).cuda()
        model = MODELS.build(tiny_itpn_cfg(mfm=False)).cuda()
        model.load_state_dict(plain.state_dict())
        sharded = FSDP(model, use_orig_params=True,
                       device_id=torch.cuda.current_device())
        img = torch.randn(2, 3, 64, 64, device='cuda')
        samples = []
        for i in range(2):
            ds = DataSample()
            m = torch.ones(16, dtype=torch.bool)
            m[torch.randperm(16)[:4]] = False
            ds.set_field(m.view(4, 4).cuda(), 'mask')
            samples.append(ds)
        want = plain(img, samples, mode='loss')['loss_pixel']
        got = sharded(img, samples, mode='loss')['loss_pixel']
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
        want.backward()
        got.backward()
        grads = {n.replace('_fsdp_wrapped_module.', ''): p.grad
                 for n, p in sharded.named_parameters()}
        checked = 0
        for name, p in plain.named_parameters():
            if p.grad is not None:
                torch.testing.assert_close(grads[name], p.grad, atol=1e-5,
                                           rtol=1e-4, msg=name)
                checked += 1
        assert checked > 10
    finally:
        dist.destroy_process_group()
