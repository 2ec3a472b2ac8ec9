"""Position embedding helpers of HiViT / iTPN."""
import math
from typing import Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F


def build_2d_sincos_pos_embed(grid_size: Tuple[int, int],
                              dim: int) -> torch.Tensor:
    """Fixed 2-D sine-cosine position embedding of MAE.

    The first half of the channels encodes the column (x), the second half
    the row (y), each as ``[sin(pos * w), cos(pos * w)]`` with
    ``w = 1 / 10000 ** (2i / (dim / 2))``, which is the table the official
    iTPN pre-training uses.

    Args:
        grid_size (tuple[int, int]): ``(H, W)`` of the patch grid.
        dim (int): Embedding width, a multiple of 4.

    Returns:
        torch.Tensor: ``(1, H * W, dim)`` in row-major patch order.
    """
    if dim % 4 != 0:
        raise ValueError(f'sin-cos position embedding needs a width that is '
                         f'a multiple of 4, got {dim}.')
    h, w = grid_size
    gy, gx = np.meshgrid(
        np.arange(h, dtype=np.float64),
        np.arange(w, dtype=np.float64),
        indexing='ij')
    omega = 1. / 10000**(np.arange(dim // 4, dtype=np.float64) / (dim / 4.))

    def embed_1d(pos):
        out = np.einsum('m,d->md', pos.reshape(-1), omega)
        return np.concatenate([np.sin(out), np.cos(out)], axis=1)

    table = np.concatenate([embed_1d(gx), embed_1d(gy)], axis=1)
    return torch.from_numpy(table).float().unsqueeze(0)


def resize_pos_embed(pos_embed: torch.Tensor, src_shape: Tuple[int, int],
                     dst_shape: Tuple[int, int]) -> torch.Tensor:
    """Resize an absolute position embedding the way the official iTPN code
    does (bicubic, ``scale_factor = (dst + 0.1) / src``, not ``size=``).

    The scale factor, not the output size, sets the sampling positions, so
    this gives slightly different values than size-based resizing, and it
    is applied even when the grid is unchanged (the official pre-training
    and detection forwards both do, so a 14x14 table is never used as is);
    matching it keeps converted official weights numerically faithful.

    Args:
        pos_embed (torch.Tensor): ``(1, Hs * Ws, C)``.
        src_shape (tuple[int, int]): ``(Hs, Ws)`` of ``pos_embed``.
        dst_shape (tuple[int, int]): Target ``(Hd, Wd)``.

    Returns:
        torch.Tensor: ``(1, Hd * Wd, C)``.
    """
    # int(): grid sizes read from a traced input's shape are tensors
    # (jit tracing, FLOP counting), which F.interpolate's scale_factor refuses
    hs, ws = (int(s) for s in src_shape)
    hd, wd = (int(s) for s in dst_shape)
    c = pos_embed.shape[-1]
    grid = pos_embed.reshape(1, hs, ws, c).permute(0, 3, 1, 2)
    dtype = grid.dtype
    grid = F.interpolate(
        grid.float(),
        scale_factor=((hd + 0.1) / hs, (wd + 0.1) / ws),
        mode='bicubic',
        align_corners=False)
    assert grid.shape[-2:] == (hd, wd), (grid.shape, dst_shape)
    return grid.to(dtype).permute(0, 2, 3, 1).reshape(1, hd * wd, c)


def relative_position_index(grid_size: Tuple[int, int],
                            device=None) -> torch.Tensor:
    """Swin-style index of every token pair into a relative bias table.

    Args:
        grid_size (tuple[int, int]): ``(H, W)`` of the token grid.
        device (torch.device, optional): Device of the result.

    Returns:
        torch.Tensor: ``(H * W, H * W)`` int64 indices into a table of
        ``(2H - 1) * (2W - 1)`` rows.
    """
    h, w = grid_size
    coords = torch.stack(
        torch.meshgrid(
            torch.arange(h, device=device),
            torch.arange(w, device=device),
            indexing='ij')).flatten(1)
    rel = coords[:, :, None] - coords[:, None, :]
    rel = rel.permute(1, 2, 0)
    return (rel[..., 0] + h - 1) * (2 * w - 1) + rel[..., 1] + w - 1


def resize_rel_pos_table(table: torch.Tensor, src_shape: Tuple[int, int],
                         dst_shape: Tuple[int, int]) -> torch.Tensor:
    """Resize a relative position bias table to another token grid.

    Args:
        table (torch.Tensor): ``((2Hs-1)(2Ws-1), heads)``.
        src_shape (tuple[int, int]): ``(Hs, Ws)`` the table was made for.
        dst_shape (tuple[int, int]): ``(Hd, Wd)`` to resize to.

    Returns:
        torch.Tensor: ``((2Hd-1)(2Wd-1), heads)``.
    """
    if tuple(src_shape) == tuple(dst_shape):
        return table
    hs, ws = (2 * int(s) - 1 for s in src_shape)
    hd, wd = (2 * int(s) - 1 for s in dst_shape)
    heads = table.shape[-1]
    grid = table.reshape(1, hs, ws, heads).permute(0, 3, 1, 2)
    grid = F.interpolate(
        grid.float(), size=(hd, wd), mode='bicubic', align_corners=False)
    return grid.to(table.dtype).permute(0, 2, 3, 1).reshape(hd * wd, heads)


def infer_square_grid(num_tokens: int) -> Tuple[int, int]:
    """``(s, s)`` with ``s * s == num_tokens``, or a clear error."""
    s = int(round(math.sqrt(num_tokens)))
    if s * s != num_tokens:
        raise ValueError(
            f'Cannot infer a square grid from {num_tokens} position '
            f'embeddings; pass the grid shape explicitly.')
    return s, s


def resize_decomposed_rel_pos(rel_pos: torch.Tensor,
                              length: int) -> torch.Tensor:
    """Linearly resize a ViTDet decomposed relative position table along its
    first axis, as the official iTPN CLIP detection backbone (and ViTDet's
    ``get_rel_pos``) does: ``F.interpolate(mode='linear')`` on the
    ``(1, dim, L)`` view, ``align_corners=False``.

    Args:
        rel_pos (torch.Tensor): ``(L, dim)`` table.
        length (int): Target length, ``2 * size - 1`` for a grid side
            ``size``.

    Returns:
        torch.Tensor: ``(length, dim)`` (the input itself when ``L`` is
        already ``length``).
    """
    length = int(length)
    if rel_pos.shape[0] == length:
        return rel_pos
    resized = F.interpolate(
        rel_pos.float().t().unsqueeze(0), size=length, mode='linear')
    return resized[0].t().to(rel_pos.dtype)


def decomposed_rel_pos_table(size: int,
                             rel_pos: torch.Tensor) -> torch.Tensor:
    """Per (query, key) pair of one grid axis, the embedding of their
    offset: ``R[i, j] = rel_pos'[i - j + size - 1]``, where ``rel_pos'`` is
    ``rel_pos`` resized to ``2 * size - 1`` rows (queries and keys on the
    same grid, as in iTPN's backbone).

    Args:
        size (int): Grid side (rows for ``rel_pos_h``, columns for
            ``rel_pos_w``).
        rel_pos (torch.Tensor): ``(L, dim)`` table.

    Returns:
        torch.Tensor: ``(size, size, dim)``.
    """
    size = int(size)
    table = resize_decomposed_rel_pos(rel_pos, 2 * size - 1)
    coords = torch.arange(size, device=rel_pos.device)
    return table[coords[:, None] - coords[None, :] + size - 1]


def decomposed_rel_pos_bias(q: torch.Tensor,
                            rel_pos_h: torch.Tensor,
                            rel_pos_w: torch.Tensor,
                            grid: Tuple[int, int],
                            ids: Optional[torch.Tensor] = None
                            ) -> torch.Tensor:
    """Attention bias of ViTDet's decomposed relative positions.

    For query token ``i`` at (row ``r_i``, column ``c_i``) and key ``j``:
    ``bias[i, j] = q_i . Rh[r_i, r_j] + q_i . Rw[c_i, c_j]`` with ``Rh``,
    ``Rw`` from :func:`decomposed_rel_pos_table`, ``q`` the *unscaled*
    queries (the official code adds this to ``q k^T * scale``).

    Args:
        q (torch.Tensor): ``(B, heads, N, dim)`` queries.
        rel_pos_h (torch.Tensor): ``(Lh, dim)`` row table.
        rel_pos_w (torch.Tensor): ``(Lw, dim)`` column table.
        grid (tuple[int, int]): ``(H, W)`` token grid.
        ids (torch.Tensor, optional): ``(B, N)`` row-major grid positions of
            the tokens (the kept tokens of a masked input). None: the ``N =
            H * W`` tokens of the grid in row-major order.

    Returns:
        torch.Tensor: ``(B, heads, N, N)`` bias in ``q``'s dtype.
    """
    h, w = (int(s) for s in grid)
    Rh = decomposed_rel_pos_table(h, rel_pos_h).to(q.dtype)
    Rw = decomposed_rel_pos_table(w, rel_pos_w).to(q.dtype)
    B, nh, N, d = q.shape
    if ids is None:
        if N != h * w:
            raise ValueError(f'{N} tokens do not fill the {h}x{w} grid; pass '
                             f'their positions (ids).')
        r_q = q.reshape(B, nh, h, w, d)
        rel_h = torch.einsum('bnhwc,hkc->bnhwk', r_q, Rh)
        rel_w = torch.einsum('bnhwc,wkc->bnhwk', r_q, Rw)
        bias = rel_h[..., :, None] + rel_w[..., None, :]
        return bias.reshape(B, nh, N, N)
    rows, cols = ids // w, ids % w  # (B, N)
    # q_i . R[r_i, k] for every grid row k, then pick the keys' rows
    rel_h = torch.einsum('bnlc,blkc->bnlk', q, Rh[rows])  # (B, nh, N, h)
    rel_w = torch.einsum('bnlc,blkc->bnlk', q, Rw[cols])  # (B, nh, N, w)
    expand = (B, nh, N, N)
    return (rel_h.gather(-1, rows[:, None, None, :].expand(expand)) +
            rel_w.gather(-1, cols[:, None, None, :].expand(expand)))
