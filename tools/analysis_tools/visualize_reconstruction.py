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
from pathlib import Path

import numpy as np
import torch

IMG_EXT = ('.jpg', '.jpeg', '.png', '.bmp', '.webp')
PANEL_LABELS = ('original', 'masked', 'reconstruction',
                'reconstruction + visible')


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


def load_model(config, checkpoint, device='cpu', allow_unsafe=False):
    """Build the pre-training model of ``config`` with the weights of
    ``checkpoint``, in eval mode.

    Args:
        config (str): Pre-training config (an ``ITPNMIM`` model).
        checkpoint (str): Its checkpoint (a state dict, optionally under
            ``'state_dict'``); all tensors must fit the model.
        device (str): Where the model runs. Defaults to 'cpu'.
        allow_unsafe (bool): Opt-in for a trusted file holding other
            objects. Defaults to False.

    Returns:
        ITPNMIM: The model.
    """
    from mmengine.config import Config

    from mmitpn.registry import MODELS
    from mmitpn.utils.safe_load import load_checkpoint_file
    model = MODELS.build(Config.fromfile(config).model)
    if not hasattr(model, 'reconstruct'):
        raise ValueError(f'{config} builds a {type(model).__name__}; '
                         f'reconstruction pictures need a pixel pre-training '
                         f'config (ITPNMIM).')
    ckpt = load_checkpoint_file(checkpoint, map_location='cpu',
                                allow_unsafe=allow_unsafe)
    state = ckpt.get('state_dict', ckpt) if isinstance(ckpt, dict) else ckpt
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(
            f'{checkpoint} does not fit the model of {config}: missing '
            f'{missing[:3]}, unexpected {unexpected[:3]}; pass the config '
            f'the checkpoint was trained with.')
    return model.eval().to(device)


def list_images(paths, limit):
    """Image files given directly or found (sorted) under folders.

    Args:
        paths (Sequence[str]): Image files or folders.
        limit (int): At most this many images.

    Returns:
        list[Path]: The images.
    """
    files = []
    for p in map(Path, paths):
        if p.is_dir():
            files += sorted(f for f in p.rglob('*')
                            if f.suffix.lower() in IMG_EXT)
        elif p.is_file():
            files.append(p)
        else:
            raise FileNotFoundError(f'No image or folder at {p}.')
    if not files:
        raise FileNotFoundError(f'No images ({", ".join(IMG_EXT)}) in '
                                f'{paths}.')
    return files[:limit]


def to_uint8(x, mean, std):
    """The first image of a normalised batch as an ``(H, W, 3)`` uint8.

    Args:
        x (torch.Tensor): ``(B, 3, H, W)`` normalised images.
        mean (np.ndarray): Per-channel mean of the normalisation.
        std (np.ndarray): Per-channel std of the normalisation.

    Returns:
        np.ndarray: The de-normalised image, clipped to 0..255.
    """
    x = x[0].permute(1, 2, 0).cpu().numpy() * std + mean
    return np.clip(x, 0, 255).astype(np.uint8)


def _wrap(label, width, scale, font):
    """Greedy word wrap of ``label`` into lines at most ``width`` px wide
    (a single word wider than that gets a line of its own)."""
    import cv2
    lines = []
    for word in label.split():
        trial = f'{lines[-1]} {word}' if lines else word
        if lines and cv2.getTextSize(trial, font, scale, 1)[0][0] <= width:
            lines[-1] = trial
        else:
            lines.append(word)
    return lines


def label_panels(tiles, labels, zoom=1, sep=4):
    """One row of equally sized RGB panels with a label above each.

    Args:
        tiles (list[np.ndarray]): ``(H, W, 3)`` uint8 images, same size.
        labels (Sequence[str]): One label per tile (wrapped to the width,
            the font shrunk where a word does not fit).
        zoom (int): Integer enlargement of the panels (nearest
            neighbour). Defaults to 1.
        sep (int): White pixels between panels. Defaults to 4.

    Returns:
        np.ndarray: ``(header + H * zoom, n * W * zoom + (n - 1) * sep, 3)``
        uint8, white background, black labels.
    """
    import cv2
    if len(tiles) != len(labels):
        raise ValueError(f'{len(tiles)} panels but {len(labels)} labels.')
    tiles = [np.repeat(np.repeat(t, zoom, 0), zoom, 1) for t in tiles]
    h, w = tiles[0].shape[:2]
    font, pad = cv2.FONT_HERSHEY_SIMPLEX, 4
    scale = w / 320  # 0.6 on a 192-px panel
    for label in labels:  # one font size for all: the widest word fits
        for word in label.split():
            tw = cv2.getTextSize(word, font, scale, 1)[0][0]
            scale = min(scale, scale * (w - 2 * pad) / tw)
    wrapped = [_wrap(label, w - 2 * pad, scale, font) for label in labels]
    line_h = cv2.getTextSize('Ag', font, scale, 1)[0][1] + 2 * pad
    header = line_h * max(len(ls) for ls in wrapped) + pad
    row = np.full((header + h, len(tiles) * (w + sep) - sep, 3), 255,
                  np.uint8)
    for i, (tile, lines) in enumerate(zip(tiles, wrapped)):
        x0 = i * (w + sep)
        row[header:, x0:x0 + w] = tile
        for j, text in enumerate(lines):
            tw = cv2.getTextSize(text, font, scale, 1)[0][0]
            cv2.putText(row, text, (x0 + (w - tw) // 2, (j + 1) * line_h),
                        font, scale, (0, 0, 0), 1, cv2.LINE_AA)
    return row


def main(argv=None):
    """Write one row of labelled panels per image.

    Args:
        argv (list[str], optional): Arguments. Defaults to ``sys.argv``.
    """
    args = parse_args(argv)
    import cv2
    from mmpretrain.utils import register_all_modules
    register_all_modules(init_default_scope=True)
    model = load_model(args.config, args.checkpoint, args.device,
                       args.allow_unsafe_load)
    pre = model.data_preprocessor
    mean = pre.mean.view(-1).cpu().numpy()
    std = pre.std.view(-1).cpu().numpy()
    size = model.backbone.grid_size[0] * model.backbone.patch_size
    os.makedirs(args.out_dir, exist_ok=True)
    for i, path in enumerate(list_images(args.images, args.max_images)):
        bgr = cv2.imread(str(path))
        if bgr is None:
            raise ValueError(f'Cannot decode image {path} (empty or '
                             f'corrupt file).')
        rgb = cv2.resize(bgr[..., ::-1], (size, size),
                         interpolation=cv2.INTER_CUBIC)
        img = (torch.from_numpy(rgb.copy()).permute(2, 0, 1).float()[None]
               .to(args.device) - pre.mean) / pre.std
        masks = model.random_masking(
            1, model.backbone.grid_size[0] * model.backbone.grid_size[1],
            img.device, generator=torch.Generator().manual_seed(
                args.seed + i), mask_ratio=args.mask_ratio)
        outs = model.reconstruct(img, masks)
        tiles = [rgb] + [to_uint8(o, mean, std) for o in outs]
        row = label_panels(tiles, PANEL_LABELS,
                           zoom=max(1, -(-args.min_panel // size)))
        out = osp.join(args.out_dir, f'{Path(path).stem}_reconstruction.png')
        cv2.imwrite(out, row[..., ::-1])
        print(f'[reconstruction] {path} -> {out}')


if __name__ == '__main__':
    main()
