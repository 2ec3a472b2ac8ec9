#!/usr/bin/env python
"""Convert an official iTPN checkpoint (github.com/sunsmarterjie/iTPN) to
mmitpn, mmdet 3 or mmseg 1 keys.

    python tools/model_converters/itpn_to_mmitpn.py SRC DST \\
        [--num-heads N] [--norm-eps EPS] [--dec-num-heads N] \\
        [--task det|seg] [--allow-unsafe-load]

Pixel / CLIP pre-trainings, the official Mask R-CNN / Cascade Mask R-CNN
(mmdet 2.24) and UPerNet (mmseg 0.x) checkpoints and bare backbone state
dicts; the key maps and the architecture read from the tensors are
:mod:`mmitpn.converters.official`'s.

Writes ``{'state_dict': ..., 'meta': {'model_cfg': ..., 'kind': ...,
'config': ..., 'tensors': ..., 'source': ...}}``. ``model_cfg`` (backbone,
neck and the pre-training heads) builds modules that load the converted
weights with no missing or unexpected key. Prints the architecture it read,
the tensor counts (in, out, dropped, with every dropped key named) and the
matching config under ``configs/itpn/``.

The file is read with ``weights_only=True`` and an allow-list
(:func:`mmitpn.utils.safe_load.load_checkpoint_file`): a file asking to
unpickle anything else is refused, in one line naming what it asked for,
unless ``--allow-unsafe-load``.
"""
import argparse
import os

import torch

from mmitpn.converters.official import (check_paths,
                                               convert_official,
                                               load_official)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Convert an official iTPN checkpoint (pre-training, '
        'detector, segmentor) to mmitpn / mmdet 3 / mmseg 1 keys.')
    parser.add_argument('src', help='official checkpoint (.pth)')
    parser.add_argument('dst', help='output path')
    parser.add_argument(
        '--num-heads',
        type=int,
        default=None,
        help='stage-3 attention heads, when the checkpoint cannot tell '
        '(no Swin relative position tables and a non-official width)')
    parser.add_argument(
        '--norm-eps',
        type=float,
        default=None,
        help='LayerNorm epsilon recorded in the config (default: 1e-6 for '
        'pre-training files, 1e-5 for official detectors / segmentors)')
    parser.add_argument(
        '--dec-num-heads',
        type=int,
        default=None,
        help='heads of the pixel decoder (default: width / 32, the '
        'official 512-wide 16-head decoder)')
    parser.add_argument(
        '--task',
        choices=('det', 'seg'),
        default=None,
        help='for a bare backbone state dict: the official det or seg code '
        'it comes from (eps 1e-5; seg: concatenated, max-pooled outputs)')
    parser.add_argument(
        '--allow-unsafe-load',
        action='store_true',
        help='the file is trusted; let its pickle create objects other '
        'than tensors and the allow-listed types (logged at WARNING)')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    check_paths(args.src, args.dst)
    ckpt = load_official(args.src, allow_unsafe=args.allow_unsafe_load)
    state_dict, meta, report = convert_official(
        ckpt,
        num_heads=args.num_heads,
        norm_eps=args.norm_eps,
        dec_num_heads=args.dec_num_heads,
        task=args.task)
    for line in report:
        print(f'[convert] {line}')
    meta['source'] = args.src
    torch.save(dict(state_dict=state_dict, meta=meta), args.dst)
    print(f'[convert] wrote {len(state_dict)} tensors to {args.dst}')


if __name__ == '__main__':
    try:
        main()
    except (ValueError, OSError) as e:
        # one line for the user; MMITPN_DEBUG=1 shows the traceback
        if os.environ.get('MMITPN_DEBUG'):
            raise
        raise SystemExit(f'itpn_to_mmitpn: {e}')
