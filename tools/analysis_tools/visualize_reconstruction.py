#!/usr/bin/env python
"""Write MIM reconstruction pictures of an iTPN pre-training checkpoint.

    python tools/analysis_tools/visualize_reconstruction.py CONFIG CHECKPOINT \
        IMAGES... [--out-dir DIR] [--mask-ratio 0.75] [--seed 0] \
        [--allow-unsafe-load]

``IMAGES`` are image files or folders. For each image a PNG row of four
labelled panels is written: original, masked input, reconstruction, and
reconstruction with the visible patches pasted back. The masks and the
pictures are the model's (:meth:`mmitpn.models.ITPNMIM.random_masking`
with a generator seeded ``--seed`` + image index, and
:meth:`mmitpn.models.ITPNMIM.reconstruct`). Panels are enlarged by an
integer factor (nearest neighbour, patches stay sharp) to at least
``--min-panel`` pixels, so that the labels fit. The checkpoint is read
without running code (:func:`mmitpn.utils.safe_load.load_checkpoint_file`);
``--allow-unsafe-load`` is the opt-in for a trusted file holding other
objects.
"""
import argparse
import os
import os.path as osp
import sys
from pathlib import Path

try:
    import mmitpn  # noqa: F401
except ImportError:  # not installed: run from a checkout
    sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(
        osp.abspath(__file__)))))


def parse_args(argv=None):
    """Command-line arguments.

    Args:
        argv (list[str], optional): Arguments. Defaults to ``sys.argv``.

    Returns:
        argparse.Namespace: The parsed arguments.
    """
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[1])
    parser.add_argument('config', help='pre-training config')
    parser.add_argument('checkpoint', help='pre-training checkpoint')
    parser.add_argument('images', nargs='+', help='image files or folders')
    parser.add_argument('--out-dir', default='work_dirs/reconstructions')
    parser.add_argument('--mask-ratio', type=float, default=None,
                        help='defaults to the model\'s')
    parser.add_argument('--max-images', type=int, default=16)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--min-panel', type=int, default=192,
                        help='enlarge panels to at least this many pixels')
    parser.add_argument(
        '--allow-unsafe-load', action='store_true',
        help='load a trusted checkpoint that holds objects beyond '
        'tensors and plain data (logged); refused by default')
    return parser.parse_args(argv)


def main(argv=None):
    """Write one row of labelled panels per image.

    Args:
        argv (list[str], optional): Arguments. Defaults to ``sys.argv``.
    """
    args = parse_args(argv)
    import cv2
    from mmpretrain.utils import register_all_modules

    from mmitpn.visualization import (list_images, load_model,
                                      reconstruction_row)
    register_all_modules(init_default_scope=True)
    model = load_model(args.config, args.checkpoint, args.device,
                       args.allow_unsafe_load)
    size = model.backbone.grid_size[0] * model.backbone.patch_size
    os.makedirs(args.out_dir, exist_ok=True)
    for i, path in enumerate(list_images(args.images, args.max_images)):
        bgr = cv2.imread(str(path))
        if bgr is None:
            raise ValueError(f'Cannot decode image {path} (empty or '
                             f'corrupt file).')
        rgb = cv2.resize(bgr[..., ::-1], (size, size),
                         interpolation=cv2.INTER_CUBIC)
        row = reconstruction_row(model, rgb, args.seed + i, args.mask_ratio,
                                 args.min_panel)
        out = osp.join(args.out_dir, f'{Path(path).stem}_reconstruction.png')
        cv2.imwrite(out, row[..., ::-1])
        print(f'[reconstruction] {path} -> {out}')


if __name__ == '__main__':
    main()
