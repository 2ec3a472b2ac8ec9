#!/usr/bin/env python
"""Write MIM reconstruction pictures of an iTPN pre-training checkpoint.

    python tools/analysis_tools/visualize_reconstruction.py CONFIG CHECKPOINT \
        IMAGES... [--out-dir DIR] [--mask-ratio 0.75] [--seed 0]

``IMAGES`` are image files or folders. For each image a PNG row of four
labelled panels is written: original, masked input, reconstruction, and
reconstruction with the visible patches pasted back. With a
normalised-pixel loss the prediction of each patch is de-normalised with
that patch's own mean and std (as MAE's visualisation does). Panels are
enlarged by an integer factor (nearest neighbour, patches stay sharp) to at
least ``--min-panel`` pixels, so that the labels fit.
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
    return parser.parse_args(argv)


def list_images(paths, limit):
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


def reconstruct(model, img, mask_ratio=None, seed=0):
    """Masked input, reconstruction and pasted reconstruction of one
    preprocessed image ``(1, 3, H, W)``, all in the normalised space.

    Args:
        model: An ``ITPNMIM`` model in eval mode.
        img (torch.Tensor): Normalised image.
        mask_ratio (float, optional): Overrides the model's ratio.
        seed (int): Seed of the random mask.
    """
    head = model.head
    p = head.patch_size
    grid = (img.shape[-2] // p, img.shape[-1] // p)
    n = grid[0] * grid[1]
    ratio = model.mask_ratio if mask_ratio is None else mask_ratio
    keep = max(1, int(n * (1 - ratio)))
    noise = torch.rand(1, n, generator=torch.Generator().manual_seed(seed))
    ids_shuffle = noise.argsort(1).to(img.device)
    ids_restore = ids_shuffle.argsort(1)
    mask = torch.ones(1, n, device=img.device)
    mask[:, :keep] = 0
    mask = torch.gather(mask, 1, ids_restore)
    with torch.no_grad():
        pyramid = model.neck(model.backbone(img, ids_keep=ids_shuffle[:, :keep]))
        pred = head.predict(pyramid, ids_restore)
    patches = head.patchify(img)
    if head.norm_pix:
        mean = patches.mean(-1, keepdim=True)
        std = (patches.var(-1, keepdim=True) + 1e-6)**.5
        pred = pred * std + mean
    m = mask.unsqueeze(-1)
    masked = head.unpatchify(patches * (1 - m))
    recon = head.unpatchify(pred)
    pasted = head.unpatchify(patches * (1 - m) + pred * m)
    return masked, recon, pasted


def to_uint8(x, mean, std):
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
    args = parse_args(argv)
    from mmengine.config import Config
    from mmengine.runner import load_checkpoint
    from mmpretrain.utils import register_all_modules

    import mmitpn  # noqa: F401
    from mmitpn.registry import MODELS
    import cv2
    register_all_modules(init_default_scope=True)
    cfg = Config.fromfile(args.config)
    model = MODELS.build(cfg.model).eval().to(args.device)
    load_checkpoint(model, args.checkpoint, map_location='cpu')
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
        outs = reconstruct(model, img, args.mask_ratio, args.seed + i)
        tiles = [rgb] + [to_uint8(o, mean, std) for o in outs]
        row = label_panels(tiles, PANEL_LABELS,
                           zoom=max(1, -(-args.min_panel // size)))
        out = osp.join(args.out_dir, f'{Path(path).stem}_reconstruction.png')
        cv2.imwrite(out, row[..., ::-1])
        print(f'[reconstruction] {path} -> {out}')


if __name__ == '__main__':
    main()
