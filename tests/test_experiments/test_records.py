"""Tests of :mod:`mmitpn.experiments.records`: losses read back from
written-out MMEngine logs, and the machine record."""
import json
import os

import pytest
import torch

from mmitpn.experiments.records import (describe_machine, epoch_losses,
                                        loss_curve, machine)


def _write_session(work_dir, stamp, records):
    """A ``<stamp>/vis_data/scalars.json`` as MMEngine writes it."""
    path = work_dir / stamp / 'vis_data' / 'scalars.json'
    path.parent.mkdir(parents=True)
    path.write_text(''.join(json.dumps(r) + '\n' for r in records))


@pytest.fixture
def resumed_run(tmp_path):
    """A run of 2 iterations per epoch, interrupted after iteration 4 and
    resumed from the end of epoch 1: the second session logs iterations
    3-6 again, with other numbers for 3 and 4."""
    first = [dict(loss=4.0, loss_a=3.0, lr=0.1, epoch=1, iter=1, step=1),
             dict(loss=2.0, loss_a=1.0, lr=0.1, epoch=1, iter=2, step=2),
             # a validation record: no loss
             dict(accuracy=0.5, step=1),
             dict(loss=9.0, loss_a=9.0, lr=0.1, epoch=2, iter=3, step=3),
             dict(loss=9.0, loss_a=9.0, lr=0.1, epoch=2, iter=4, step=4)]
    second = [dict(loss=1.5, loss_a=1.0, lr=0.1, epoch=2, iter=3, step=3),
              dict(loss=0.5, loss_a=0.0, lr=0.1, epoch=2, iter=4, step=4),
              dict(loss=0.25, loss_a=0.125, lr=0.1, epoch=3, iter=5,
                   step=5)]
    _write_session(tmp_path, '20240101_000000', first)
    _write_session(tmp_path, '20240101_010000', second)
    return tmp_path


def test_loss_curve_over_sessions_later_wins(resumed_run):
    assert loss_curve(resumed_run) == {
        'loss': ([1, 2, 3, 4, 5], [4.0, 2.0, 1.5, 0.5, 0.25]),
        'loss_a': ([1, 2, 3, 4, 5], [3.0, 1.0, 1.0, 0.0, 0.125]),
    }
    assert loss_curve(resumed_run / 'absent') == {}


def test_epoch_losses_are_means_per_epoch(resumed_run):
    assert epoch_losses(resumed_run) == {
        1: {'loss': 3.0, 'loss_a': 2.0},
        2: {'loss': 1.0, 'loss_a': 0.5},  # the resumed session's numbers
        3: {'loss': 0.25, 'loss_a': 0.125},
    }
    assert epoch_losses(resumed_run / 'absent') == {}


def test_machine_record():
    info = machine()
    assert info['cores'] == os.cpu_count()
    assert info['omp_num_threads'] == str(torch.get_num_threads())
    assert info['torch'] == torch.__version__
    assert info['isa'] == torch.backends.cpu.get_cpu_capability()
    import mmengine
    assert info['mmengine'] == mmengine.__version__
    assert set(info['flags']) <= {'avx', 'avx2', 'fma', 'avx512f',
                                  'avx512_vnni', 'avx512_bf16', 'amx_bf16',
                                  'amx_tile', 'asimd', 'sve'}


def test_machine_line():
    info = dict(cpu='Test CPU', cores=2, omp_num_threads='2', isa='AVX2',
                flags=['avx', 'avx2'], torch='2.x', mmdet='3.3.0',
                python='3.11')
    assert describe_machine(info) == (
        'Test CPU, 2 cores, OMP_NUM_THREADS=2; torch CPU capability AVX2, '
        'ISA flags avx, avx2; torch 2.x, mmdet 3.3.0; Python 3.11')
    info['flags'] = []
    assert 'ISA flags none of the listed;' in describe_machine(info)
