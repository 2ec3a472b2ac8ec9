"""Generate the embedded demo data of ``mmitpn`` (deterministic, offline).

The command line of :func:`mmitpn.datasets.demo_data.make_demo_data`, which
documents the three data sets (``pretrain/``, ``coco/``, ``ade/``).

Usage::

    python tools/data/make_demo_data.py [--out data/demo] [--seed 0]
        [--scale 1.0] [--force]
"""
import argparse
import os.path as osp
import sys

try:
    from mmitpn.datasets.demo_data import make_demo_data
except ImportError:  # not installed: run from a checkout
    sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(
        osp.abspath(__file__)))))
    from mmitpn.datasets.demo_data import make_demo_data


def parse_args(argv=None):
    """Command line.

    Args:
        argv (list[str], optional): Arguments (default: ``sys.argv[1:]``).

    Returns:
        argparse.Namespace: Parsed arguments.
    """
    parser = argparse.ArgumentParser(
        description='Generate the deterministic synthetic demo data of '
        'mmitpn (pre-training images, COCO shapes, ADE-style shapes).')
    parser.add_argument(
        '--out', default='data/demo', help='output directory')
    parser.add_argument('--seed', type=int, default=0, help='random seed')
    parser.add_argument(
        '--scale',
        type=float,
        default=1.0,
        help='multiplier of the image counts (e.g. 0.1 for a quick set)')
    parser.add_argument(
        '--force', action='store_true', help='regenerate even if up to date')
    return parser.parse_args(argv)


def main(argv=None):
    """Entry point.

    Args:
        argv (list[str], optional): Arguments (default: ``sys.argv[1:]``).
    """
    args = parse_args(argv)
    make_demo_data(
        args.out, seed=args.seed, force=args.force, scale=args.scale,
        verbose=True)


if __name__ == '__main__':
    sys.exit(main())
