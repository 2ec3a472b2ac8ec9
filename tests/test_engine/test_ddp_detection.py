"""Two-process DDP training of the tiny demo Mask R-CNN on CPU (gloo), and
SyncBN of the detection heads degrading to BN (with a warning) where it
cannot synchronise: on one process, and on CPU processes."""
import json
import math
import os
import socket
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest
from mmengine.config import Config

import mmitpn.utils.device as device
import mmitpn.utils.distributed as distributed
from mmitpn.utils import degrade_sync_bn

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
WORKER = HERE / 'ddp_detection_worker.py'
CONFIG = REPO / 'configs' / 'itpn' / \
    'itpn-tiny_mask-rcnn_1xb4-6e_demo.py'
HEAD_NORMS = ['model.roi_head.bbox_head.norm_cfg',
              'model.roi_head.mask_head.norm_cfg']


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _torchrun_env():
    env = dict(os.environ, OMP_NUM_THREADS='1')
    for key in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR',
                'MASTER_PORT'):
        env.pop(key, None)
    return env


@pytest.fixture
def no_cuda(monkeypatch):
    monkeypatch.setattr(device, 'cuda_available', lambda: False)


def test_ddp_mask_rcnn_ranks_agree(tmp_path, demo_data):
    res = subprocess.run(
        [sys.executable, '-m', 'torch.distributed.run', '--nnodes=1',
         '--nproc_per_node=2', '--master_addr=127.0.0.1',
         f'--master_port={_free_port()}', str(WORKER), str(tmp_path)],
        # CUDA hidden: the CPU (gloo) path, also on a GPU machine
        env=dict(_torchrun_env(), CUDA_VISIBLE_DEVICES=''),
        capture_output=True, text=True, timeout=180, cwd=tmp_path)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    result = json.loads((tmp_path / 'ddp_det_result.json').read_text())

    assert result['world_size'] == 2
    assert result['wrapper'] == 'MMDistributedDataParallel'
    # all-reduced gradients: every rank takes the same steps
    assert result['num_params'] > 1e6
    assert result['params_max_abs_diff'] == 0
    # ... from different images (a different loss on each rank), and BN of
    # the heads normalises with its own batch (no SyncBN on CPU)
    assert result['losses_max_abs_diff'] > 0
    assert result['bn_buffers_max_abs_diff'] > 0
    assert result['roi_head_norm_types'] == ['BatchNorm2d']
    assert len(result['sync_bn_warnings']) == 1
    assert "SyncBatchNorm does not run on CPU" in \
        result['sync_bn_warnings'][0]
    for path in HEAD_NORMS:
        assert path in result['sync_bn_warnings'][0]
    # every Mask R-CNN loss is logged, finite, for each of the 3 iterations
    assert result['loss_terms'] == [
        'loss', 'loss_bbox', 'loss_cls', 'loss_mask', 'loss_rpn_bbox',
        'loss_rpn_cls'
    ]
    for losses in result['losses']:
        assert len(losses) == 3
        assert all(math.isfinite(v) and v > 0 for v in losses)
    assert result['checkpoint']
    log = next(tmp_path.glob('*/*.log')).read_text()  # rank 0's
    assert len([x for x in log.splitlines() if 'loss_mask:' in x]) == 3


def test_torch_sync_bn_fails_on_cpu_process_group(tmp_path):
    """Why SyncBN must go on CPU: in a (gloo) process group torch's
    SyncBatchNorm refuses CPU tensors, even with one process."""
    script = textwrap.dedent(f"""
        import torch, torch.distributed as dist
        dist.init_process_group(
            'gloo', init_method='file://{tmp_path}/store', rank=0,
            world_size=1)
        bn = torch.nn.SyncBatchNorm(4).train()
        try:
            bn(torch.randn(2, 4, 3, 3))
        except ValueError as e:
            print('ERROR', e)
        dist.destroy_process_group()
        """)
    res = subprocess.run([sys.executable, '-c', script],
                         env=_torchrun_env(), capture_output=True,
                         text=True, timeout=60)
    assert res.returncode == 0, res.stderr[-2000:]
    assert 'ERROR SyncBatchNorm expected input tensor to be on GPU' in \
        res.stdout


def test_degrade_sync_bn_one_process():
    cfg = Config.fromfile(str(CONFIG))
    assert cfg.model.roi_head.bbox_head.norm_cfg.type == 'SyncBN'
    with pytest.warns(UserWarning,
                      match=r'SyncBN degrades to BN .*one process'):
        paths = degrade_sync_bn(cfg, 'none')
    assert paths == HEAD_NORMS
    assert cfg.model.roi_head.bbox_head.norm_cfg == dict(
        type='BN', requires_grad=True)
    assert cfg.model.roi_head.mask_head.norm_cfg.type == 'BN'
    # nothing left: a second call neither changes nor warns
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        assert degrade_sync_bn(cfg, 'none') == []


def test_degrade_sync_bn_cpu_processes(no_cuda):
    cfg = Config(
        dict(
            launcher='pytorch',
            sync_bn='torch',
            model=dict(
                type='M',
                heads=[
                    dict(norm_cfg=dict(type='MMSyncBN')),
                    dict(norm_cfg=dict(type='GN', num_groups=2))
                ])))
    with pytest.warns(UserWarning,
                      match="does not run on CPU.*heads\\[0\\].norm_cfg, "
                      "cfg.sync_bn='torch'"):
        assert degrade_sync_bn(cfg) == ['model.heads[0].norm_cfg']
    assert cfg.model.heads[0].norm_cfg.type == 'BN'
    assert cfg.model.heads[1].norm_cfg.type == 'GN'
    assert 'sync_bn' not in cfg
    # setup_cpu_dist does it too (once)
    cfg = Config(dict(model=dict(norm_cfg=dict(type='SyncBN'))))
    with pytest.warns(UserWarning, match='SyncBN degrades'):
        distributed.setup_cpu_dist(cfg, 'pytorch')
    assert cfg.model.norm_cfg.type == 'BN'


def test_degrade_sync_bn_kept_with_cuda(monkeypatch):
    monkeypatch.setattr(device, 'cuda_available', lambda: True)
    cfg = Config(dict(sync_bn='torch',
                      model=dict(norm_cfg=dict(type='SyncBN'))))
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        assert degrade_sync_bn(cfg, 'pytorch') == []
    assert cfg.model.norm_cfg.type == 'SyncBN' and cfg.sync_bn == 'torch'
