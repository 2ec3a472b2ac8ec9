"""Two-process DDP pre-training keeps students and EMA teachers identical
across ranks (on CPU: gloo, via mmitpn.utils.setup_cpu_dist)."""
import json
import math
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import cpu_unless_gpus

HERE = Path(__file__).resolve().parent
WORKER = HERE / 'ddp_pretrain_worker.py'


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_ddp_students_and_teachers_stay_identical(tmp_path):
    env = cpu_unless_gpus(dict(os.environ, OMP_NUM_THREADS='1'))
    for key in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR',
                'MASTER_PORT'):
        env.pop(key, None)
    res = subprocess.run(
        [sys.executable, '-m', 'torch.distributed.run', '--nnodes=1',
         '--nproc_per_node=2', '--master_addr=127.0.0.1',
         f'--master_port={_free_port()}', str(WORKER), str(tmp_path)],
        env=env, capture_output=True, text=True, timeout=120,
        cwd=tmp_path)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    result = json.loads((tmp_path / 'ddp_result.json').read_text())

    assert result['world_size'] == 2
    assert result['wrapper'] == 'MMDistributedDataParallel'
    # gradients are all-reduced, so every rank takes the same steps ...
    assert result['student_max_abs_diff'] == 0
    # ... and the EMA teacher follows the same student everywhere
    assert result['teacher_max_abs_diff'] == 0
    # the teacher was initialised from the student and then updated
    assert result['teacher_steps'] == 5  # the copy + 4 EMA steps
    assert result['teacher_update_max_abs'] > 0
    assert result['teacher_vs_student_max_abs'] > 0
    # the ranks trained on different images and masks: equal weights come
    # from the all-reduce, not from equal inputs
    l0, l1 = result['last_losses']
    assert math.isfinite(l0) and math.isfinite(l1) and l0 != l1
    assert result['loss_max_abs_diff'] == abs(l1 - l0)
    assert len(result['losses_rank0']) == 4
