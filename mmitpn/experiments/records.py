"""What a run leaves behind, read back: the training losses MMEngine logs
to ``<work_dir>/<timestamp>/vis_data/scalars.json``, and the machine a run
was measured on."""
import json
import os
import platform
from pathlib import Path
from typing import Dict, List, Tuple, Union

#: CPU features that decide which kernels torch runs (numbers move with
#: them), as ``/proc/cpuinfo`` spells them.
ISA_FLAGS = ('avx', 'avx2', 'fma', 'avx512f', 'avx512_vnni', 'avx512_bf16',
             'amx_bf16', 'amx_tile', 'asimd', 'sve')
#: Packages whose versions a record names.
PACKAGES = ('mmengine', 'mmcv', 'mmdet', 'mmseg', 'mmpretrain')


def _logged_iterations(work_dir: Union[str, Path]) -> Dict[int, dict]:
    """Every logged training record of a run by iteration, over all its
    sessions (an interrupted and resumed run has one ``scalars.json`` per
    session; the later session wins where they overlap).

    Args:
        work_dir (str | Path): The training's work dir.

    Returns:
        dict: ``{iteration: record}`` of the records that hold a loss.
    """
    by_iter = {}
    for js in sorted(Path(work_dir).glob('*/vis_data/scalars.json')):
        for line in js.read_text().splitlines():
            rec = json.loads(line)
            if 'loss' in rec and 'iter' in rec:
                by_iter[rec['iter']] = rec
    return by_iter


def loss_curve(
        work_dir: Union[str, Path]) -> Dict[str, Tuple[List, List]]:
    """Logged training losses of a run by iteration, over all its sessions.

    Args:
        work_dir (str | Path): The training's work dir.

    Returns:
        dict: ``{loss name: ([iteration, ...], [value, ...])}``; empty when
        nothing was logged.
    """
    by_iter = _logged_iterations(work_dir)
    curves = {}
    for it in sorted(by_iter):
        for k, v in by_iter[it].items():
            if k.startswith('loss'):
                xs, ys = curves.setdefault(k, ([], []))
                xs.append(it)
                ys.append(v)
    return curves


def epoch_losses(work_dir: Union[str, Path]) -> Dict[int, Dict[str, float]]:
    """Mean of every logged loss over the logged iterations of each epoch
    (over all sessions of the run, as :func:`loss_curve`).

    Args:
        work_dir (str | Path): The training's work dir.

    Returns:
        dict: ``{epoch: {loss name: mean}}`` in epoch order; empty when
        nothing was logged (or the run counts iterations, not epochs).
    """
    per_epoch = {}
    for it, rec in sorted(_logged_iterations(work_dir).items()):
        if 'epoch' in rec:
            per_epoch.setdefault(rec['epoch'], []).append(rec)
    return {
        e: {k: sum(r[k] for r in recs) / len(recs)
            for k in recs[0] if k.startswith('loss')}
        for e, recs in sorted(per_epoch.items())
    }


def machine() -> dict:
    """The CPU and software a run is measured on (results move with the
    CPU's kernels).

    Returns:
        dict: ``cpu``, ``cores``, ``omp_num_threads`` (torch's intra-op
        threads, as a string), ``isa`` (torch's CPU capability), ``torch``,
        ``python``, ``flags`` (those of :data:`ISA_FLAGS` the CPU has) and
        the version of each installed package of :data:`PACKAGES`.
    """
    import torch
    info = dict(cpu=platform.processor() or platform.machine(),
                cores=os.cpu_count(),
                omp_num_threads=str(torch.get_num_threads()),
                isa=torch.backends.cpu.get_cpu_capability(),
                torch=torch.__version__,
                python=platform.python_version())
    flags = set()
    try:
        for line in Path('/proc/cpuinfo').read_text().splitlines():
            key, _, value = line.partition(':')
            if key.strip() == 'model name':
                info['cpu'] = value.strip()
            elif key.strip() in ('flags', 'Features'):
                flags = set(value.split())
    except OSError:  # not Linux
        pass
    info['flags'] = [f for f in ISA_FLAGS if f in flags]
    for pkg in PACKAGES:
        try:
            info[pkg] = __import__(pkg).__version__
        except ImportError:
            pass
    return info


def describe_machine(info: dict) -> str:
    """One line of what :func:`machine` recorded.

    Args:
        info (dict): A run's ``machine`` record.

    Returns:
        str: CPU, cores, threads, ISA and software versions.
    """
    flags = ', '.join(info.get('flags', [])) or 'none of the listed'
    sw = ', '.join(f'{k} {info[k]}'
                   for k in ('torch', ) + PACKAGES if k in info)
    return (f'{info["cpu"]}, {info["cores"]} cores, OMP_NUM_THREADS='
            f'{info["omp_num_threads"]}; torch CPU capability '
            f'{info["isa"]}, ISA flags {flags}; {sw}; Python '
            f'{info["python"]}')
