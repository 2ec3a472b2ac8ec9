#!/usr/bin/env python
"""Time and peak memory of HiViT's row-sliced MLP-only blocks, on and off.

    OMP_NUM_THREADS=2 python tools/analysis_tools/benchmark_row_slices.py \
        [--rounds 3] [--cases infer1024 cp_stage1 cp_p4] [--json FILE]

:class:`mmitpn.models.layers.RowSlicedBlocks` runs sequences of MLP-only
blocks over slices of rows (inference: no full hidden tensors; with
``with_cp``: one checkpoint per slice). ``off`` sets
``RowSlicedBlocks.max_elems = 0`` (the blocks run on the whole input).
Every measurement runs in a fresh process (peak memory = growth of the
resident-set high-water mark during the first call), ``on`` and ``off``
alternating, the order reversed every other round; the table gives
medians over the rounds and the per-round ratio of the process CPU times
(steadier than wall time on a shared machine). iTPN-B shapes at a
1024x1024 image:

- ``infer1024``: backbone (``itpn-base``) + pyramid (``fpn_depth=1``, the
  detection configs), batch 1, no autograd;
- ``cp_stage1``: HiViT stage 1 (3 blocks, width 128, MLP ratio 3, 65536
  rows), forward + backward with ``with_cp``;
- ``cp_p4``: the pyramid's stride-4 level (``blocks_4`` of ``fpn_depth=1``:
  width 256, MLP ratio 4, 65536 rows), forward + backward with
  ``with_cp``.
"""
import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

CASES = ('infer1024', 'cp_stage1', 'cp_p4')


def parse_args(argv=None):
    """Command-line arguments.

    Args:
        argv (list[str], optional): Arguments. Defaults to ``sys.argv``.

    Returns:
        argparse.Namespace: The parsed arguments.
    """
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--cases', nargs='+', choices=CASES, default=CASES)
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--repeat', type=int, default=2,
                        help='timed calls after the first (memory) call')
    parser.add_argument('--size', type=int, default=1024,
                        help='image side (rows = (size / 4) ** 2)')
    parser.add_argument('--max-elems', type=int, default=None,
                        help='RowSlicedBlocks.max_elems of the "on" runs '
                        '(default: the class default)')
    parser.add_argument('--json', help='write all measurements here')
    parser.add_argument('--one', nargs=2, metavar=('CASE', 'MODE'),
                        help=argparse.SUPPRESS)  # a single measurement
    return parser.parse_args(argv)


def measure(case: str, mode: str, size: int, repeat: int,
            max_elems=None) -> dict:
    """One measurement in this process.

    Args:
        case (str): One of :data:`CASES`.
        mode (str): ``'on'`` or ``'off'`` (``max_elems = 0``).
        size (int): Image side.
        repeat (int): Timed calls after the first.
        max_elems (int, optional): ``RowSlicedBlocks.max_elems`` when
            ``mode`` is ``'on'``. Defaults to None (the class default).

    Returns:
        dict: ``first_s``, ``wall_s`` / ``cpu_s`` (median of the timed
        calls) and ``peak_mb``.
    """
    import torch

    from mmitpn.models import HiViTBackbone, ITPNPyramid
    from mmitpn.models.layers import HiViTBlock, RowSlicedBlocks
    torch.manual_seed(0)
    if mode == 'off':
        RowSlicedBlocks.max_elems = 0
    elif max_elems is not None:
        RowSlicedBlocks.max_elems = max_elems
    if case == 'infer1024':
        bb = HiViTBackbone(arch='itpn-base', img_size=size).eval()
        neck = ITPNPyramid(in_channels=(128, 256, 512), out_channels=256,
                           fpn_depth=1, num_outs=5).eval()
        x = torch.randn(1, 3, size, size)

        def call():
            with torch.no_grad():
                return neck(bb(x))
    else:
        dim, ratio, depth = (128, 3., 3) if case == 'cp_stage1' else \
            (256, 4., 1)
        blocks = RowSlicedBlocks([
            HiViTBlock(dim, mlp_ratio=ratio, with_cp=True)
            for _ in range(depth)
        ]).train()
        # stage 1: token layout (B, N, 4, 4, C); pyramid: (B, H, W, C)
        x = torch.randn(1, (size // 16)**2, 4, 4, dim) \
            if case == 'cp_stage1' else torch.randn(1, size // 4,
                                                    size // 4, dim)
        w = torch.randn(dim)

        def call():
            xi = x.clone().requires_grad_()
            (blocks(xi) * w).sum().backward()
            return xi.grad

    def rss_mb():
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    base = rss_mb()
    t0 = time.perf_counter()
    call()
    first = time.perf_counter() - t0
    peak = rss_mb() - base
    wall, cpu = [], []
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        call()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return dict(case=case, mode=mode, max_elems=RowSlicedBlocks.max_elems,
                first_s=first,
                wall_s=statistics.median(wall) if wall else first,
                cpu_s=statistics.median(cpu) if cpu else None,
                peak_mb=peak)


def main(argv=None):
    """Alternate on / off measurements in fresh processes; print a table.

    Args:
        argv (list[str], optional): Arguments. Defaults to ``sys.argv``.
    """
    args = parse_args(argv)
    if args.one:
        print(json.dumps(measure(*args.one, args.size, args.repeat,
                                 args.max_elems)))
        return
    runs = []
    for r in range(args.rounds):
        for case in args.cases:
            for mode in (('on', 'off') if r % 2 == 0 else ('off', 'on')):
                out = subprocess.run(
                    [sys.executable, __file__, '--one', case, mode,
                     '--size', str(args.size), '--repeat', str(args.repeat)]
                    + ([] if args.max_elems is None else
                       ['--max-elems', str(args.max_elems)]),
                    capture_output=True, text=True, check=True).stdout
                runs.append(dict(json.loads(out.strip().splitlines()[-1]),
                                 round=r))
                print(runs[-1], flush=True)
    print('\n| case | wall s on / off | CPU s on / off | CPU on/off per '
          'round | peak MB on / off | peak on/off |\n'
          '|---|---|---|---|---|---|')
    for case in args.cases:
        def med(mode, key):
            return statistics.median(
                d[key] for d in runs if d['case'] == case
                and d['mode'] == mode)

        def ratios(key):
            return sorted(
                next(d[key] for d in runs if d['case'] == case
                     and d['mode'] == 'on' and d['round'] == r) /
                next(d[key] for d in runs if d['case'] == case
                     and d['mode'] == 'off' and d['round'] == r)
                for r in range(args.rounds))

        cpu = ratios('cpu_s')
        print(f"| {case} | {med('on', 'wall_s'):.1f} / "
              f"{med('off', 'wall_s'):.1f} | {med('on', 'cpu_s'):.1f} / "
              f"{med('off', 'cpu_s'):.1f} | {statistics.median(cpu):.2f} "
              f'({cpu[0]:.2f}-{cpu[-1]:.2f}) | '
              f"{med('on', 'peak_mb'):.0f} / {med('off', 'peak_mb'):.0f} | "
              f"{med('on', 'peak_mb') / med('off', 'peak_mb'):.2f} |")
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(runs, f, indent=1)


if __name__ == '__main__':
    main()
