"""Layout-agnostic patch merging / splitting of HiViT and iTPN.

Both operate on the last three dimensions ``(..., h, w, C)``, so the same
module serves the *token layout* ``(B, N, k, k, C)`` (each 16x16 patch
carries its k x k sub-tokens; used with masking) and the *dense
channels-last layout* ``(B, H, W, C)`` (full images). Sub-token groups never
cross a 16x16 patch, so both layouts give the same numbers.
"""
from typing import Optional

import torch
import torch.nn as nn


def masked_patch_ids(mask: torch.Tensor) -> Optional[torch.Tensor]:
    """Indices ``(B, M)`` of the masked patches of a ``(B, N)`` mask (1 =
    masked), in patch order, when every image has the same number ``M`` of
    them (random masking at a fixed ratio, mmpretrain's mask generators);
    else None.

    Args:
        mask (torch.Tensor): ``(B, N)`` mask, 1 (or True) for masked
            patches.
    """
    mask = mask.flatten(1).bool()
    counts = mask.sum(1)
    if counts.numel() == 0 or not torch.all(counts == counts[0]) or \
            int(counts[0]) == 0:
        return None
    ids = mask.to(torch.uint8).argsort(dim=1, descending=True, stable=True)
    return ids[:, :int(counts[0])]


def gather_patches(x: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """Rows ``ids`` ``(B, M)`` of a ``(B, N, ...)`` tensor: ``(B, M, ...)``.

    Args:
        x (torch.Tensor): Per-patch values.
        ids (torch.Tensor): Patch indices per image.
    """
    idx = ids.view(*ids.shape, *(1, ) * (x.dim() - 2))
    return x.gather(1, idx.expand(-1, -1, *x.shape[2:]))


class PatchEmbed(nn.Module):
    """Embed 16x16 patches as k x k sub-tokens (k = patch / inner stride).

    Args:
        in_channels (int): Image channels. Defaults to 3.
        embed_dims (int): Sub-token width (stage-1 width).
        patch_size (int): Patch size. Defaults to 16.
        inner_patches (int): Sub-tokens per patch side. Defaults to 4.
        norm_eps (float): LayerNorm epsilon. Defaults to 1e-6.
    """

    def __init__(self,
                 in_channels: int = 3,
                 embed_dims: int = 128,
                 patch_size: int = 16,
                 inner_patches: int = 4,
                 norm_eps: float = 1e-6) -> None:
        super().__init__()
        if patch_size % inner_patches != 0:
            raise ValueError(f'patch_size {patch_size} is not divisible by '
                             f'inner_patches {inner_patches}.')
        self.in_channels = in_channels
        self.patch_size = patch_size
        self.inner_patches = inner_patches
        stride = patch_size // inner_patches
        self.proj = nn.Conv2d(
            in_channels, embed_dims, kernel_size=stride, stride=stride)
        self.norm = nn.LayerNorm(embed_dims, eps=norm_eps)

    def check_input(self, x: torch.Tensor) -> None:
        """Raise a one-line error for inputs HiViT cannot take."""
        if x.dim() != 4:
            raise ValueError(f'HiViT expects images (B, C, H, W), got a '
                             f'tensor of shape {tuple(x.shape)}; add the '
                             f'batch dimension (x[None]) for one image.')
        if not x.is_floating_point():
            raise TypeError(f'HiViT expects floating-point images, got '
                            f'{x.dtype}; normalise them first (the data '
                            f'preprocessor does) or call x.float().')
        if x.shape[1] != self.in_channels:
            raise ValueError(
                f'HiViT was built for {self.in_channels}-channel images but '
                f'got {x.shape[1]} channels (shape {tuple(x.shape)}); '
                f'convert the images or set in_channels={x.shape[1]}.')
        h, w = x.shape[-2:]
        p = self.patch_size
        if h % p or w % p:
            raise ValueError(
                f'HiViT needs image sides that are multiples of {p}, got '
                f'{h}x{w}; pad the batch (e.g. pad_size_divisor={p} in the '
                f'data preprocessor) or resize to a multiple of {p}.')

    def forward(self,
                x: torch.Tensor,
                dense: bool = True,
                ids_keep: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Embed.

        Args:
            x (torch.Tensor): Images ``(B, C, H, W)``.
            dense (bool): Return the dense layout ``(B, H/4, W/4, C')``;
                otherwise the token layout ``(B, N, k, k, C')``.
            ids_keep (torch.Tensor, optional): ``(B, L)`` indices of the
                16x16 patches to embed (token layout only): the pixels of
                the other patches are dropped before the convolution, so
                masked patches cost nothing, forward or backward (the
                kernel never crosses a patch border, so the kept tokens get
                the same values). Defaults to None (every patch).
        """
        self.check_input(x)
        if ids_keep is not None:
            if dense:
                raise ValueError('ids_keep needs the token layout '
                                 '(dense=False).')
            return self._forward_kept(x, ids_keep)
        x = self.proj(x)
        B, C, H, W = x.shape
        k = self.inner_patches
        if dense:
            x = x.permute(0, 2, 3, 1)
        else:
            x = x.view(B, C, H // k, k, W // k, k).permute(0, 2, 4, 3, 5, 1)
            x = x.reshape(B, (H // k) * (W // k), k, k, C)
        return self.norm(x)

    def _forward_kept(self, x: torch.Tensor,
                      ids_keep: torch.Tensor) -> torch.Tensor:
        B, C, H, W = x.shape
        p, k = self.patch_size, self.inner_patches
        L = ids_keep.shape[1]
        x = x.reshape(B, C, H // p, p, W // p, p).permute(0, 2, 4, 1, 3, 5)
        x = x.reshape(B, (H // p) * (W // p), C * p * p)
        x = gather_patches(x, ids_keep)
        x = self.proj(x.view(B * L, C, p, p))  # (B * L, C', k, k)
        x = x.view(B, L, -1, k, k).permute(0, 1, 3, 4, 2)
        return self.norm(x)


class PatchMerge(nn.Module):
    """Join each 2x2 group of sub-tokens: concat, LayerNorm, Linear 4C->2C.

    The concatenation order ``[(even, even), (odd, even), (even, odd),
    (odd, odd)]`` over (row, col) is the official one and must match to load
    official weights.

    Args:
        dim (int): Input width C.
        norm_eps (float): LayerNorm epsilon. Defaults to 1e-6.
    """

    def __init__(self, dim: int, norm_eps: float = 1e-6) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim * 4, eps=norm_eps)
        self.reduction = nn.Linear(dim * 4, dim * 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Merge ``(..., h, w, C)`` into ``(..., h/2, w/2, 2C)``."""
        x = torch.cat([
            x[..., 0::2, 0::2, :], x[..., 1::2, 0::2, :],
            x[..., 0::2, 1::2, :], x[..., 1::2, 1::2, :]
        ], dim=-1)
        return self.reduction(self.norm(x))


class PatchSplit(nn.Module):
    """Split every position into a 2x2 group (the inverse of a merge):
    LayerNorm, Linear C->4C', then each position's 4C' values become a 2x2
    sub-grid with sub-row ``2h + i`` and sub-col ``2w + j``.

    Args:
        in_dims (int): Input width C.
        out_dims (int): Output width C'.
        norm_eps (float): LayerNorm epsilon. Defaults to 1e-6.
    """

    def __init__(self,
                 in_dims: int,
                 out_dims: int,
                 norm_eps: float = 1e-6) -> None:
        super().__init__()
        self.out_dims = out_dims
        self.norm = nn.LayerNorm(in_dims, eps=norm_eps)
        self.reduction = nn.Linear(in_dims, out_dims * 4, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Split ``(..., h, w, C)`` into ``(..., 2h, 2w, C')``."""
        x = self.reduction(self.norm(x))
        *lead, h, w, _ = x.shape
        x = x.view(*lead, h, w, 2, 2, self.out_dims)
        x = x.transpose(-4, -3)  # (..., h, 2, w, 2, C')
        return x.reshape(*lead, h * 2, w * 2, self.out_dims)


def tokens_to_dense(x: torch.Tensor, grid: tuple) -> torch.Tensor:
    """``(B, Hp*Wp, k, k, C)`` token layout -> ``(B, C, Hp*k, Wp*k)``.

    Args:
        x (torch.Tensor): Tokens of the full grid (no token dropped).
        grid (tuple[int, int]): ``(Hp, Wp)``.
    """
    B, N, k, _, C = x.shape
    hp, wp = grid
    if N != hp * wp:
        raise ValueError(f'{N} tokens do not fill a {hp}x{wp} grid; only '
                         f'unmasked token maps can be made dense.')
    x = x.view(B, hp, wp, k, k, C).permute(0, 5, 1, 3, 2, 4)
    return x.reshape(B, C, hp * k, wp * k)


def dense_to_tokens(x: torch.Tensor, k: int) -> torch.Tensor:
    """``(B, C, Hp*k, Wp*k)`` -> ``(B, Hp*Wp, k, k, C)`` token layout.

    Args:
        x (torch.Tensor): Dense map.
        k (int): Sub-tokens per token side.
    """
    B, C, H, W = x.shape
    x = x.view(B, C, H // k, k, W // k, k).permute(0, 2, 4, 3, 5, 1)
    return x.reshape(B, (H // k) * (W // k), k, k, C)
