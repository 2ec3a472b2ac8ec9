#!/usr/bin/env python
"""Time mmitpn against mmpretrain 1.2.0's HiViT / iTPN in one process.

    python tools/analysis_tools/benchmark.py [--cases a b c] \
        [--dtype fp32|bf16] [--threads N] [--device cpu|cuda] [--batch N] \
        [--repeat N] [--warmup N] [--heavy-repeat N] [--json out.json] \
        [--quick] [--compile] [--teacher-dtype fp32|bf16] [--no-memory] \
        [--in-process] [--profile] [--markdown docs/benchmark.md] \
        [--markdown-tag TAG]

    python tools/analysis_tools/benchmark.py --throughput --device cuda \
        [--precisions bf16 fp16] [--batch 64] [--max-batch 1024] \
        [--budget-s 480] [--peak-tflops X] [--compile] [--json out.json] \
        [--markdown FILE [--markdown-tag TAG]]

Both sides are built with the same architecture, mmpretrain's weights are
copied into mmitpn and the outputs are checked equal (max abs difference
< 1e-4, losses to 1e-5 relative) before anything is timed; for
pre-training both get the same ``ids_keep`` / ``mask``
(:mod:`mmitpn.benchmark.reference`). Then every callable of a case is run
``--warmup`` times and ``--repeat`` times, alternating A/B/... (order
reversed every other round) so that both sides see the same machine noise;
the table gives medians, the speed-up over the case's reference
(``ref ms / ms``), the same ratio taken within each round (median and
range: on a shared machine whose load drifts, the more trustworthy
figure) and peak memory (:mod:`mmitpn.benchmark.memory`).

Cases (:mod:`mmitpn.benchmark.cases`; ``--quick`` swaps in a tiny
architecture and small images: a smoke test, not a measurement): ``a``
HiViT-B backbone training step and inference; ``b`` iTPN-B pixel and
pixel + MFM pre-training steps and the teacher's forward; ``c`` backbone +
pyramid on detection-sized images, inference and training with and
without gradient checkpointing.

Each group of a case (e.g. "a ... train") runs in a fresh interpreter
(``--in-process`` runs everything in one), in this order: build, check,
warm-up round(s), one memory round, timed rounds. Case c's calls take
minutes on a CPU, so its timed rounds are capped (``--heavy-repeat``) and
its memory round doubles as warm-up. ``--compile`` wraps mmitpn's backbone
in ``torch.compile`` for the mmitpn entries; compilation happens during
the warm-up.

``--throughput`` (:mod:`mmitpn.benchmark.throughput`) measures the
pre-training steps on an accelerator instead: images/s, peak memory and
MFU in bf16 autocast and fp16 AMP, at ``--batch`` and at the largest batch
found by doubling, within ``--budget-s``.
"""
import argparse
import gc
import json
import os
import sys
import time
from contextlib import nullcontext
from pathlib import Path
from typing import List, Optional

import torch
from mmengine.logging import MMLogger

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from mmitpn.benchmark import cases as C  # noqa: E402
from mmitpn.benchmark import report as R  # noqa: E402
from mmitpn.benchmark.flops import peak_tflops  # noqa: E402
from mmitpn.benchmark.memory import PeakMemory  # noqa: E402
from mmitpn.benchmark.reference import (FULL, QUICK,  # noqa: E402
                                        OutputsDiffer)
from mmitpn.benchmark.throughput import (format_throughput,  # noqa: E402
                                         run_throughput)


def parse_args(argv=None):
    """Command-line options (see the module docstring).

    Args:
        argv (list[str], optional): Arguments; None reads ``sys.argv``.
    """
    p = argparse.ArgumentParser(
        description='Time mmitpn against mmpretrain 1.2.0 (HiViT / iTPN).')
    p.add_argument('--cases', nargs='+', choices=sorted(C.CASES),
                   default=sorted(C.CASES))
    p.add_argument('--dtype', choices=('fp32', 'bf16'), default='fp32',
                   help='bf16 = torch.autocast(bfloat16) around the '
                   'forward of both sides')
    p.add_argument('--threads', type=int, default=None,
                   help='torch.set_num_threads (default: torch\'s)')
    p.add_argument('--device', default='cpu', help="'cpu' or 'cuda[:i]'")
    p.add_argument('--repeat', type=int, default=None,
                   help='timed rounds per case (default 5, --quick 1; '
                   '--throughput: at most 10, --quick 2)')
    p.add_argument('--warmup', type=int, default=None,
                   help='untimed rounds first (default 1; --throughput 3)')
    p.add_argument('--batch', type=int, default=None,
                   help='batch size of cases a and b (default 8, --quick 2): '
                   'shorter calls alternate more finely, which helps on a '
                   'loaded machine; --throughput: of the comparison '
                   '(default 64, --quick 2)')
    p.add_argument('--json', default=None, help='also write results here')
    p.add_argument('--markdown', default=None,
                   help='also write the table as Markdown into this file, '
                   'between the lines "%s" and "%s" if it has them (the '
                   'rest of the file is kept), else as the whole file' %
                   (R.MD_BEGIN, R.MD_END))
    p.add_argument('--markdown-tag', default='',
                   help='with --markdown: write between the lines '
                   '"<!-- benchmark:TAG:begin -->" and '
                   '"<!-- benchmark:TAG:end -->" instead (several tables '
                   'in one file)')
    p.add_argument('--quick', action='store_true',
                   help='tiny architecture and images, 1 round: a smoke '
                   'test of the tool, not a measurement')
    p.add_argument('--compile', action='store_true',
                   help='torch.compile the mmitpn backbone')
    p.add_argument('--heavy-repeat', type=int, default=2,
                   help='cap on the timed rounds of case c (a 1024x1024 '
                   'call takes 30-120 s on a 2-core CPU; its memory round '
                   'doubles as warm-up)')
    p.add_argument('--teacher-dtype', choices=('fp32', 'bf16'),
                   default='fp32',
                   help="ITPNMIM's teacher_dtype in the pixel+MFM step; "
                   'with bf16 the fp32 teacher forward is timed too and '
                   'the targets of both are compared')
    p.add_argument('--profile', action='store_true',
                   help='after timing, profile one call of each entry and '
                   'report the share of its time in matrix products '
                   '(GEMM share): 1 / the reference\'s share bounds the '
                   'speed-up of any implementation doing the same products '
                   'at the same speed')
    p.add_argument('--no-memory', action='store_true',
                   help='skip the peak-memory measurements')
    p.add_argument('--in-process', action='store_true',
                   help='run every case in this process instead of one '
                   'fresh process per group (faster start; CPU memory '
                   'figures then also count heap blocks left resident by '
                   'earlier groups)')
    t = p.add_argument_group('--throughput (pre-training steps: images/s, '
                             'memory, MFU)')
    t.add_argument('--throughput', action='store_true',
                   help='run the throughput benchmark instead of the cases')
    t.add_argument('--precisions', nargs='+', choices=('bf16', 'fp16'),
                   default=['bf16', 'fp16'],
                   help='bf16 autocast and / or fp16 AMP (loss scaler)')
    t.add_argument('--max-batch', type=int, default=None,
                   help='largest batch the doubling tries (default 1024, '
                   '--quick 8)')
    t.add_argument('--budget-s', type=float, default=480.,
                   help='time for the whole run; what does not fit is '
                   'skipped and reported as skipped')
    t.add_argument('--peak-tflops', type=float, default=None,
                   help="the device's dense bf16 peak for the MFU (default: "
                   'from the table of known GPUs)')
    p.add_argument('--worker', default=None, help=argparse.SUPPRESS)
    p.add_argument('--worker-out', default=None, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def log(msg: str) -> None:
    """Progress to stderr (stdout holds the table and the JSON).

    Args:
        msg (str): The line.
    """
    print(msg, file=sys.stderr, flush=True)


def command(argv: Optional[List[str]]) -> str:
    """The command line of this run, for the report.

    Args:
        argv (list[str], optional): Arguments; None reads ``sys.argv``.
    """
    return 'python tools/analysis_tools/benchmark.py ' + ' '.join(
        argv if argv is not None else sys.argv[1:])


def save(result: dict, args) -> None:
    """Write ``--json`` (and ``--markdown``) if asked.

    Args:
        result (dict): The run.
        args (argparse.Namespace): The options.
    """
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        with open(args.json, 'w') as f:
            json.dump(result, f, indent=1)
    if args.markdown:
        body = format_throughput(result, markdown=True) \
            if args.throughput else None
        R.write_markdown(args.markdown, result, args.markdown_tag, body)


def main(argv=None) -> dict:
    """Run the benchmark; print the table, notes and JSON.

    Args:
        argv (list[str], optional): Arguments; None reads ``sys.argv``.

    Returns:
        dict: The result (also written to ``--json``).
    """
    args = parse_args(argv)
    dev = torch.device(args.device)
    if dev.type == 'cuda' and not torch.cuda.is_available():
        raise SystemExit('--device cuda but torch sees no GPU.')
    if args.threads:
        torch.set_num_threads(args.threads)
    # no per-parameter init log of mmpretrain's init_weights
    MMLogger.get_current_instance().setLevel('WARNING')
    try:
        if args.throughput:
            return throughput_main(args, argv, dev)
        return cases_main(args, argv, dev)
    except OutputsDiffer as exc:
        raise SystemExit(str(exc))


def throughput_main(args, argv, dev: torch.device) -> dict:
    """``--throughput``: run :func:`run_throughput`, saving after each
    phase; print the table and the JSON.

    Args:
        args (argparse.Namespace): The options.
        argv (list[str], optional): The arguments, for the report.
        dev (torch.device): Where to run.
    """
    import mmcv
    import mmengine
    import mmpretrain
    a = QUICK if args.quick else FULL
    batch = args.batch or (2 if args.quick else 64)
    name = torch.cuda.get_device_name(dev) if dev.type == 'cuda' else \
        f'cpu ({R.cpu_name()}, {os.cpu_count()} cores)'
    peak = args.peak_tflops or (peak_tflops(name) if dev.type == 'cuda'
                                else None)
    env = dict(
        command=command(argv), device=name, peak_tflops=peak,
        peak_source='--peak-tflops' if args.peak_tflops else
        'table' if peak else 'unknown (no MFU)', torch=torch.__version__,
        cuda=torch.version.cuda, python=sys.version.split()[0],
        mmpretrain=mmpretrain.__version__, mmengine=mmengine.__version__,
        mmcv=mmcv.__version__, arch='tiny (--quick)' if args.quick else
        'iTPN-B 224 (mmpretrain base)', batch=batch,
        precisions=args.precisions, budget_s=args.budget_s)

    def on_update(result):
        save(dict(result, env=env), args)

    result = run_throughput(
        a, dev, batch, args.precisions,
        max_batch=args.max_batch or (8 if args.quick else 1024),
        warmup=args.warmup or (1 if args.quick else 3),
        repeat=args.repeat or (2 if args.quick else 10),
        compile=args.compile, budget_s=args.budget_s, peak=peak,
        memory=not args.no_memory, log=log, on_update=on_update)
    result = dict(result, env=env)
    save(result, args)
    print(format_throughput(result))
    print()
    for n in result['notes']:
        print('- ' + n)
    print()
    print(json.dumps(result, indent=1))
    return result


def cases_main(args, argv, dev: torch.device) -> dict:
    """The cases (default mode).

    Args:
        args (argparse.Namespace): The options.
        argv (list[str], optional): The arguments (passed on to workers).
        dev (torch.device): Where to run.
    """
    import mmpretrain
    repeat = args.repeat or (1 if args.quick else 5)
    warmup = args.warmup if args.warmup is not None else 1
    a = QUICK if args.quick else FULL
    if args.batch:
        a = dict(a, batch=args.batch)
    dtype = torch.bfloat16 if args.dtype == 'bf16' else None

    def autocast():
        if dtype is None:
            return nullcontext()
        return torch.autocast(dev.type, dtype=dtype)

    mem = PeakMemory(dev)
    opts = C.CaseOptions(args.quick, args.compile, args.heavy_repeat,
                         args.teacher_dtype, args.dtype != 'fp32')
    if args.worker:
        return run_worker(args, a, dev, autocast, opts, mem, warmup, repeat)
    if args.in_process:
        mem.steady()
    env = dict(
        torch=torch.__version__, mmpretrain=mmpretrain.__version__,
        device=str(dev) if dev.type == 'cpu' else torch.cuda.get_device_name(
            dev), cpu=R.cpu_name(), cpu_isa=R.cpu_isa(), cores=os.cpu_count(),
        threads=torch.get_num_threads(), dtype=args.dtype, repeat=repeat,
        warmup=warmup, heavy_repeat=opts.heavy_repeat, quick=args.quick,
        compile=args.compile, teacher_dtype=args.teacher_dtype,
        in_process=args.in_process, load_avg_start=R.load_avg(),
        command=command(argv))
    notes = [
        "arch: mmpretrain arch='base' HiViT = 4+4 MLP blocks in stages 1-2 "
        '(it doubles depths (2, 2, 24)) + 24 attention blocks; mmitpn is '
        'built with depths (4, 4, 24) to match (official iTPN-B: 3, 3, 24)'
        if not args.quick else 'arch: tiny (--quick), not a measurement',
        "decoder: mmpretrain's iTPN config (6 blocks, 16 heads, level-embed "
        'LayerNorm eps 1e-5); mmitpn configured the same',
        'peak MB: memory allocated during one call above what existed '
        'before it (CPU: RSS high-water mark; CUDA: max_memory_allocated)',
        'speed-up = median ms of "vs" / median ms of the row; per round = '
        'median (min-max) of that ratio within each round, where both ran '
        'back to back',
    ]
    rows = []
    t_start = time.time()
    for name in args.cases:
        if args.in_process:
            log(f'case {name}: building, copying weights, checking outputs')
            entries, case_notes = C.CASES[name](a, dev, autocast, opts)
            for line in case_notes:
                log('  ' + line)
            for case in dict.fromkeys(e.case for e in entries):
                group = [e for e in entries if e.case == case]
                log(f'running {case}: {len(group)} entries')
                C.run_entries(group, warmup, repeat, dev,
                              None if args.no_memory else mem, log,
                              args.profile)
            case_rows = C.summarize(entries)
            del entries
            gc.collect()
        else:
            case_rows, case_notes = [], []
            for g in range(C.num_groups(name, a)):
                part = spawn_worker(argv, name, g)
                case_rows += part['rows']
                case_notes += part['notes']
        rows += case_rows
        notes += case_notes
    env['wall_s'] = round(time.time() - t_start, 1)
    env['load_avg_end'] = R.load_avg()
    result = dict(env=env, notes=notes, results=rows)
    print(R.format_table(rows))
    print()
    for n in notes:
        print('- ' + n)
    print()
    print(json.dumps(result, indent=1))
    save(result, args)
    return result


def spawn_worker(argv: Optional[List[str]], case: str, group: int) -> dict:
    """Run one group of a case in a fresh interpreter (same options) and
    return its rows and notes. A fresh process per group keeps the C heap
    of one group's timings from distorting the next group's memory
    measurement (freed glibc heap blocks stay resident).

    Args:
        argv (list[str], optional): The run's arguments.
        case (str): The case.
        group (int): Index of the group in the case.
    """
    import subprocess
    import tempfile
    argv = list(sys.argv[1:] if argv is None else argv)
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, 'rows.json')
        cmd = [sys.executable, os.path.abspath(__file__), *argv, '--worker',
               f'{case}:{group}', '--worker-out', out]
        proc = subprocess.run(cmd, stdout=subprocess.DEVNULL)
        if proc.returncode != 0:
            raise SystemExit(f'benchmark worker for case {case} group '
                             f'{group} failed (exit {proc.returncode}); '
                             f'see its messages above.')
        with open(out) as f:
            return json.load(f)


def run_worker(args, a, dev, autocast, opts, mem, warmup, repeat) -> dict:
    """Body of a worker process: build the case, run one of its groups,
    write ``{'rows', 'notes'}`` to ``--worker-out``.

    Args:
        args (argparse.Namespace): The options (``--worker case:group``).
        a (dict): The preset.
        dev (torch.device): Where to run.
        autocast (Callable): Returns the forwards' context.
        opts (CaseOptions): Options of the cases.
        mem (PeakMemory): The memory meter.
        warmup (int): Untimed rounds.
        repeat (int): Timed rounds.
    """
    name, group = args.worker.split(':')
    group = int(group)
    if not args.no_memory:
        # until the memory round is over the heap holds no freed big
        # blocks that would blur the resident-set measurement
        mem.precise()
    log(f'case {name} [{group + 1}/{C.num_groups(name, a)}]: building, '
        'copying weights, checking outputs')
    entries, notes = C.CASES[name](a, dev, autocast, opts)
    if group == 0:
        for line in notes:
            log('  ' + line)
    cases = list(dict.fromkeys(e.case for e in entries))
    entries = [e for e in entries if e.case == cases[group]]
    log(f'running {cases[group]}: {len(entries)} entries')
    C.run_entries(entries, warmup, repeat, dev,
                  None if args.no_memory else mem, log, args.profile)
    result = dict(rows=C.summarize(entries), notes=notes if group == 0
                  else [])
    with open(args.worker_out, 'w') as f:
        json.dump(result, f)
    return result


if __name__ == '__main__':
    main()
