"""Pictures of what an iTPN pre-training reconstructs: rows of labelled
panels (original, masked input, reconstruction, visible patches pasted
back), as ``tools/analysis_tools/visualize_reconstruction.py`` writes
them."""
from pathlib import Path

import numpy as np
import torch

IMG_EXT = ('.jpg', '.jpeg', '.png', '.bmp', '.webp')
PANEL_LABELS = ('original', 'masked', 'reconstruction',
                'reconstruction + visible')


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


def reconstruction_row(model, rgb, seed=0, mask_ratio=None, min_panel=192):
    """One row of labelled panels for one image.

    The masks and the pictures are the model's
    (:meth:`mmitpn.models.ITPNMIM.random_masking` with a generator seeded
    ``seed``, :meth:`mmitpn.models.ITPNMIM.reconstruct`).

    Args:
        model (ITPNMIM): The pre-training model, in eval mode.
        rgb (np.ndarray): ``(S, S, 3)`` uint8 RGB image at the model's
            input size.
        seed (int): Seed of the mask. Defaults to 0.
        mask_ratio (float, optional): Masked share; None takes the
            model's. Defaults to None.
        min_panel (int): Panels are enlarged by an integer factor to at
            least this many pixels. Defaults to 192.

    Returns:
        np.ndarray: The RGB row (see :func:`label_panels`).
    """
    pre = model.data_preprocessor
    mean = pre.mean.view(-1).cpu().numpy()
    std = pre.std.view(-1).cpu().numpy()
    size = rgb.shape[0]
    img = (torch.from_numpy(rgb.copy()).permute(2, 0, 1).float()[None]
           .to(pre.mean.device) - pre.mean) / pre.std
    grid = model.backbone.grid_size
    masks = model.random_masking(
        1, grid[0] * grid[1], img.device,
        generator=torch.Generator().manual_seed(seed),
        mask_ratio=mask_ratio)
    with torch.no_grad():
        outs = model.reconstruct(img, masks)
    tiles = [rgb] + [to_uint8(o, mean, std) for o in outs]
    return label_panels(tiles, PANEL_LABELS,
                        zoom=max(1, -(-min_panel // size)))


__all__ = [
    'IMG_EXT', 'PANEL_LABELS', 'label_panels', 'list_images', 'load_model',
    'reconstruction_row', 'to_uint8'
]
