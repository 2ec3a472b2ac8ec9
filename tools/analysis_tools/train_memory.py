"""Estimate the GPU memory of one training step of configs from two CPU
measurements (:mod:`mmitpn.utils.train_memory`).

Examples::

    python tools/analysis_tools/train_memory.py CONFIG [CONFIG ...]
    python tools/analysis_tools/train_memory.py CONFIG --with-cp on \\
        --out work_dirs/memory.jsonl

Each config runs one forward and backward pass at its real input size, and
one with fewer pixels, in fresh one-thread processes (minutes for a COCO
config on a CPU); a markdown row per config is printed, and with ``--out``
the full results are appended as JSON lines.
"""
import argparse
import json
import os.path as osp
import sys

try:
    import mmitpn  # noqa: F401
except ImportError:  # not installed: run from a checkout
    sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(
        osp.abspath(__file__)))))

from mmitpn.utils.train_memory import GIB, memory_report  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('configs', nargs='+', help='config files')
    parser.add_argument(
        '--with-cp', choices=('on', 'off'), default=None,
        help='set with_cp of backbone and neck (default: the config\'s)')
    parser.add_argument(
        '--images', type=int, nargs=2, metavar=('SMALL', 'REAL'),
        help='images of the two measurements, both at the real size '
        '(default: the config\'s measurement points)')
    parser.add_argument('--gpu-gib', type=float, default=80.,
                        help='GPU memory for the verdict (GiB)')
    parser.add_argument('--out', help='append the results (JSON lines)')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    with_cp = None if args.with_cp is None else args.with_cp == 'on'
    print('| config | images / GPU | with_cp | per image (GiB) | fixed (GiB) '
          '| estimate (GiB) | fits |')
    print('|---|---|---|---|---|---|---|')
    for config in args.configs:
        r = memory_report(config, with_cp=with_cp,
                          gpu_bytes=args.gpu_gib * GIB, images=args.images)
        print(f'| `{osp.basename(config)}` | {r["images_per_gpu"]} | '
              f'{"on" if r["with_cp"] else "off"} | '
              f'{r["per_image"] / GIB:.2f} | {r["fixed"] / GIB:.1f} | '
              f'{r["total"] / GIB:.1f} | {r["verdict"]} |', flush=True)
        if args.out:
            with open(args.out, 'a') as f:
                f.write(json.dumps(r) + '\n')


if __name__ == '__main__':
    main()
