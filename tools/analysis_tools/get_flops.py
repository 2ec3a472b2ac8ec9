"""Count the parameters and FLOPs of a model of any mmitpn config.

Works on mmdet (detectors), mmseg (segmentors) and mmpretrain (classifiers,
and mmitpn's pre-training models) configs: the model runs on one random
image of ``--shape`` (default: 1344x800 for detectors, the crop size for
segmentors, the backbone's ``img_size`` otherwise). What is counted, and
how (one multiply-add = one FLOP, fused attention included), is
:func:`mmitpn.benchmark.flops.get_flops`.

Example::

    python tools/analysis_tools/get_flops.py \\
        configs/itpn/itpn-base-pixel_mask-rcnn_8xb8-amp-1x_coco.py \\
        --shape 800 1344
"""
import argparse
import os.path as osp
import sys

try:
    import mmitpn  # noqa: F401
except ImportError:  # not installed: run from a checkout
    sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(
        osp.abspath(__file__)))))
    import mmitpn  # noqa: F401

from mmengine.config import Config, DictAction

from mmitpn.benchmark.flops import get_flops


def parse_args(argv=None):
    """Command-line options.

    Args:
        argv (list[str], optional): Arguments; None reads ``sys.argv``.
    """
    parser = argparse.ArgumentParser(
        description='Count the parameters and FLOPs of a model')
    parser.add_argument('config', help='config file path')
    parser.add_argument(
        '--shape',
        type=int,
        nargs='+',
        default=None,
        help='input size: H W (or one value for a square); by default the '
        'crop / pre-training size, 800 1344 for detectors')
    parser.add_argument(
        '--show-table',
        action='store_true',
        help='also print the per-module complexity table')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override some settings in the used config, the key-value pair '
        'in xxx=yyy format will be merged into config file.')
    return parser.parse_args(argv)


def main(argv=None):
    """Count and print.

    Args:
        argv (list[str], optional): Arguments; None reads ``sys.argv``.
    """
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.shape is not None and len(args.shape) not in (1, 2):
        raise SystemExit('--shape takes H W or one size.')
    r = get_flops(cfg, args.shape, args.show_table)
    line = '=' * 40
    print(f'{line}\nConfig: {args.config}\n'
          f'Model: {r["model_type"]} ({r["task"]})\n'
          f'Input shape: (1, 3, {r["shape"][0]}, {r["shape"][1]})\n'
          f'Params: {r["params_str"]}\n'
          f'FLOPs: {r["flops_str"]}\n'
          f'Backbone + neck: Params {r["backbone_params_str"]}, '
          f'FLOPs {r["backbone_flops_str"]}\n{line}')
    if r['table']:
        print(r['table'])
    print('FLOPs count multiply-adds; operators the analyser does not know '
          '(RoIAlign, NMS, ...) are not counted: check before you cite.')


if __name__ == '__main__':
    main()
