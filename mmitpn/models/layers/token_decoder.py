"""Decoder from pyramid tokens to per-patch predictions."""
from collections import OrderedDict
from typing import Optional, Sequence, Tuple

import torch
import torch.nn as nn

from .block import HiViTBlock
from .patch_ops import gather_patches
from .pos_embed import (build_2d_sincos_pos_embed, infer_square_grid,
                        relative_position_index)


class TokenDecoder(nn.Module):
    """Predict one vector per 16x16 patch from token-layout pyramid levels.

    Each level ``(B, L, k, k, C_in)`` is embedded per sub-token by
    LayerNorm + Linear ``C_in -> D / k^2``, flattened to ``(B, L, D)`` and
    the levels are summed. With ``ids_restore`` the masked patches get the
    mask token (once per level, as the official decoder appends it to every
    level before the sum) and the sequence is put back in patch order. Then
    the fixed sin-cos position embedding, ``depth`` attention blocks,
    LayerNorm and a Linear ``D -> out_channels``.

    This one class is iTPN's pixel decoder (three levels, official layout),
    each MFM feature decoder (one level) and the CLIP-variant heads (no mask
    token, no position embedding).

    Args:
        in_channels (int | Sequence[int]): Width of each level (one int
            for all).
        level_sizes (Sequence[int]): Sub-tokens per side k of each level,
            in the order the levels are passed (e.g. (4, 2, 1) for the
            pyramid outputs, finest first).
        embed_dims (int): Decoder width D, divisible by every k^2.
        out_channels (int): Prediction width per patch.
        depth (int): Attention blocks. Defaults to 0.
        num_heads (int): Heads of those blocks. Defaults to 8.
        mlp_ratio (float): MLP ratio of those blocks. Defaults to 4.
        grid_size (tuple[int, int], optional): Patch grid of the position
            embedding; None disables it. Defaults to None.
        use_mask_token (bool): Learnable mask token for masked patches.
            Defaults to True.
        norm_eps (float): LayerNorm epsilon. Defaults to 1e-6.
        embed_inputs (bool): Embed each level (LayerNorm + Linear). False
            passes a single ``k = 1`` level of width ``embed_dims`` to the
            blocks as is (the official CLIP side head, which has no input
            embedding). Defaults to True.
        block_cfg (dict, optional): Extra :class:`HiViTBlock` arguments of
            the attention blocks, e.g. the official CLIP side head's
            ``dict(layer_scale_init_value=0.1, rpe_size=(14, 14),
            norm_eps=1e-5)``. With ``rpe_size`` (a Swin table) the tokens
            must fill a grid: ``rpe_size`` itself, or a square one.
            ``drop_path`` may be one rate or a sequence of one per block.
            Defaults to None.
    """

    def __init__(self,
                 in_channels,
                 level_sizes: Sequence[int],
                 embed_dims: int,
                 out_channels: int,
                 depth: int = 0,
                 num_heads: int = 8,
                 mlp_ratio: float = 4.,
                 grid_size: Optional[Tuple[int, int]] = None,
                 use_mask_token: bool = True,
                 norm_eps: float = 1e-6,
                 embed_inputs: bool = True,
                 block_cfg: Optional[dict] = None) -> None:
        super().__init__()
        self.level_sizes = tuple(level_sizes)
        if isinstance(in_channels, int):
            in_channels = (in_channels, ) * len(self.level_sizes)
        if len(in_channels) != len(self.level_sizes):
            raise ValueError(f'{len(in_channels)} level widths for '
                             f'{len(self.level_sizes)} levels.')
        if not embed_inputs and (self.level_sizes != (1, ) or
                                 tuple(in_channels) != (embed_dims, )):
            raise ValueError(
                f'embed_inputs=False takes one level of 1x1 sub-tokens and '
                f'width embed_dims={embed_dims}, got level_sizes='
                f'{self.level_sizes}, in_channels={tuple(in_channels)}.')
        for k in self.level_sizes:
            if embed_dims % (k * k):
                raise ValueError(f'Decoder width {embed_dims} is not '
                                 f'divisible by {k}x{k} sub-tokens.')
        self.embed_dims = embed_dims
        self.level_embeds = nn.ModuleList([
            nn.Sequential(
                OrderedDict(
                    norm=nn.LayerNorm(c, eps=norm_eps),
                    proj=nn.Linear(c, embed_dims // (k * k))))
            for c, k in zip(in_channels, self.level_sizes)
        ]) if embed_inputs else None
        self.mask_token = nn.Parameter(torch.zeros(
            1, 1, embed_dims)) if use_mask_token else None
        if grid_size is not None:
            self.pos_embed = nn.Parameter(
                build_2d_sincos_pos_embed(grid_size, embed_dims),
                requires_grad=False)
        else:
            self.pos_embed = None
        block_cfg = dict(dict(norm_eps=norm_eps), **(block_cfg or {}))
        self.rpe_size = block_cfg.get('rpe_size')
        if block_cfg.get('rpe_type', 'swin') != 'swin':
            raise ValueError('TokenDecoder blocks support Swin relative '
                             'position tables only.')
        # drop_path: one rate for every block, or one per block (the
        # official CLIP side head continues the backbone's schedule)
        drop_path = block_cfg.pop('drop_path', 0.)
        if isinstance(drop_path, (int, float)):
            drop_path = [drop_path] * depth
        if len(drop_path) != depth:
            raise ValueError(f'block_cfg drop_path has {len(drop_path)} '
                             f'rates for {depth} blocks; give one rate or '
                             f'{depth}.')
        self.blocks = nn.ModuleList([
            HiViTBlock(
                embed_dims, num_heads=num_heads, mlp_ratio=mlp_ratio,
                drop_path=dp, **block_cfg) for dp in drop_path
        ])
        self.norm = nn.LayerNorm(embed_dims, eps=norm_eps)
        self.pred = nn.Linear(embed_dims, out_channels)
        self.apply(self._init_module)
        if self.mask_token is not None:
            nn.init.normal_(self.mask_token, std=.02)

    @staticmethod
    def _init_module(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)

    def forward(self,
                levels: Sequence[torch.Tensor],
                ids_restore: Optional[torch.Tensor] = None,
                ids_out: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Decode.

        Args:
            levels (Sequence[torch.Tensor]): Token-layout levels
                ``(B, L, k, k, C)`` in the order of ``level_sizes``.
            ids_restore (torch.Tensor, optional): ``(B, N)`` permutation
                that puts ``[visible tokens, masked tokens]`` back in patch
                order (MAE). None when every patch is present.
            ids_out (torch.Tensor, optional): ``(B, M)`` patch indices
                whose predictions are wanted, e.g. the masked patches when
                the loss reads only them. The last block then computes
                only those rows (queries, residuals, MLP), as do the norm
                and the prediction layer; the values equal the same rows
                of the full output. Needs ``depth >= 1``. Defaults to None.

        Returns:
            torch.Tensor: ``(B, N, out_channels)`` in patch order, or
            ``(B, M, out_channels)`` in the order of ``ids_out``.
        """
        if ids_out is not None and not self.blocks:
            raise ValueError('ids_out needs a decoder with depth >= 1.')
        if len(levels) != len(self.level_sizes):
            raise ValueError(f'Decoder expects {len(self.level_sizes)} '
                             f'levels, got {len(levels)}.')
        if self.level_embeds is None:
            B, L = levels[0].shape[:2]
            x = levels[0].reshape(B, L, self.embed_dims)
        else:
            x = 0
            for lvl, embed in zip(levels, self.level_embeds):
                B, L = lvl.shape[:2]
                x = x + embed(lvl).reshape(B, L, self.embed_dims)
        if ids_restore is not None:
            N = ids_restore.shape[1]
            fill = self.mask_token * len(self.level_sizes)
            x = torch.cat([x, fill.to(x.dtype).expand(B, N - L, -1)], dim=1)
            x = gather_patches(x, ids_restore)
        if self.pos_embed is not None:
            x = x + self.pos_embed.to(x.dtype)
        rpe = dict()
        if self.rpe_size is not None and self.blocks:
            N = x.shape[1]
            grid = tuple(self.rpe_size)
            if N != grid[0] * grid[1]:
                grid = infer_square_grid(N)
            rpe = dict(
                rpe_index=relative_position_index(grid, x.device),
                rpe_grid=grid)
        for i, blk in enumerate(self.blocks):
            last = i == len(self.blocks) - 1
            x = blk(x, query_index=ids_out if last else None, **rpe)
        return self.pred(self.norm(x))
