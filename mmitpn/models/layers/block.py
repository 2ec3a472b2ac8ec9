"""The one transformer block of HiViT and the iTPN pyramid."""
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn.bricks import DropPath
from torch.utils.checkpoint import checkpoint

from .patch_ops import gather_patches
from .pos_embed import decomposed_rel_pos_bias, resize_rel_pos_table

#: Kinds of relative position of :class:`Attention`.
RPE_TYPES = ('swin', 'decomposed')


def init_trunc_normal(m: nn.Module) -> None:
    """Initialise Linear layers with truncated normal (std 0.02, zero bias)
    and LayerNorms with ones / zeros, as the official HiViT / iTPN code.

    Args:
        m (nn.Module): A module, typically passed by ``Module.apply``.
    """
    if isinstance(m, nn.Linear):
        nn.init.trunc_normal_(m.weight, std=.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.LayerNorm):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)


class Mlp(nn.Module):
    """Two linear layers with GELU in between.

    Args:
        in_features (int): Input (and output) width.
        hidden_features (int): Hidden width.
    """

    def __init__(self, in_features: int, hidden_features: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_features, in_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Attention(nn.Module):
    """Multi-head self-attention over ``(B, N, C)`` tokens, computed with
    :func:`torch.nn.functional.scaled_dot_product_attention` (fused kernels
    on GPU, no materialised attention matrix when there is no bias).

    Args:
        dim (int): Token width.
        num_heads (int): Number of heads; must divide ``dim``.
        qkv_bias (bool): Whether the qkv projection has a bias.
            Defaults to True.
        rpe_size (tuple[int, int], optional): Grid ``(Hp, Wp)`` the
            relative position parameters are made for. None disables
            relative positions. Defaults to None.
        rpe_type (str): ``'swin'``: a ``((2Hp-1)(2Wp-1), heads)`` bias
            table indexed by the token pair's offset (HiViT, the official
            classification / segmentation / pixel models);
            ``'decomposed'``: ViTDet's decomposed relative positions,
            ``rel_pos_h`` ``(2Hp-1, head_dim)`` and ``rel_pos_w``
            ``(2Wp-1, head_dim)`` whose products with the query are added
            per row and per column (the official CLIP detection backbone,
            ``iTPN_CLIP.py``). Defaults to ``'swin'``.
    """

    def __init__(self,
                 dim: int,
                 num_heads: int,
                 qkv_bias: bool = True,
                 rpe_size: Optional[tuple] = None,
                 rpe_type: str = 'swin') -> None:
        super().__init__()
        if dim % num_heads != 0:
            raise ValueError(f'Attention width {dim} is not divisible by '
                             f'num_heads={num_heads}; choose num_heads that '
                             f'divides the width.')
        if rpe_type not in RPE_TYPES:
            raise ValueError(f'rpe_type must be one of {RPE_TYPES}, got '
                             f'{rpe_type!r}.')
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.rpe_size = tuple(rpe_size) if rpe_size is not None else None
        self.rpe_type = rpe_type if self.rpe_size is not None else None
        if self.rpe_type == 'swin':
            h, w = self.rpe_size
            self.relative_position_bias_table = nn.Parameter(
                torch.zeros((2 * h - 1) * (2 * w - 1), num_heads))
            nn.init.trunc_normal_(self.relative_position_bias_table, std=.02)
        elif self.rpe_type == 'decomposed':
            h, w = self.rpe_size
            head_dim = dim // num_heads
            self.rel_pos_h = nn.Parameter(torch.zeros(2 * h - 1, head_dim))
            self.rel_pos_w = nn.Parameter(torch.zeros(2 * w - 1, head_dim))
            nn.init.trunc_normal_(self.rel_pos_h, std=.02)
            nn.init.trunc_normal_(self.rel_pos_w, std=.02)

    def forward(self,
                x: torch.Tensor,
                rpe_index: Optional[torch.Tensor] = None,
                rpe_grid: Optional[tuple] = None,
                query_index: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Forward.

        Args:
            x (torch.Tensor): Tokens ``(B, N, C)``.
            rpe_index (torch.Tensor, optional): Swin table: indices into
                the bias table of grid ``rpe_grid``, ``(N, N)`` or
                ``(B, N, N)`` (masked tokens already removed); required.
                Decomposed: ``(B, N)`` row-major grid positions of the
                tokens (masked input), or None when the ``N`` tokens fill
                ``rpe_grid`` in row-major order.
            rpe_grid (tuple[int, int], optional): Token grid the positions
                refer to; parameters made for another grid are resized to
                it (Swin: bicubic; decomposed: linear, as officially).
                Defaults to the parameters' own grid.
            query_index (torch.Tensor, optional): ``(B, M)`` indices of the
                tokens whose outputs are wanted; they attend to all ``N``
                tokens and the result is ``(B, M, C)``: the same rows as the
                full output, without computing the others (a decoder whose
                loss reads the masked patches only). Defaults to None (all).
        """
        B, N, C = x.shape
        h, d = self.num_heads, C // self.num_heads
        if query_index is None:
            qkv = self.qkv(x).view(B, N, 3, h, d)
            q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        else:
            if self.rpe_type is not None:
                raise ValueError('query_index is not supported with a '
                                 'relative position bias.')
            w, b = self.qkv.weight, self.qkv.bias
            kv = F.linear(x, w[C:], None if b is None else b[C:])
            k, v = kv.view(B, N, 2, h, d).permute(2, 0, 3, 1, 4).unbind(0)
            q = F.linear(gather_patches(x, query_index), w[:C],
                         None if b is None else b[:C])
            q = q.view(B, -1, h, d).transpose(1, 2)
        bias = None
        if self.rpe_type == 'decomposed':
            grid = self.rpe_size if rpe_grid is None else rpe_grid
            bias = decomposed_rel_pos_bias(q, self.rel_pos_h, self.rel_pos_w,
                                           grid, rpe_index)
        elif self.rpe_type == 'swin':
            if rpe_index is None:
                raise ValueError('This attention has a relative position '
                                 'bias; pass rpe_index.')
            table = self.relative_position_bias_table
            if rpe_grid is not None and tuple(rpe_grid) != self.rpe_size:
                table = resize_rel_pos_table(table, self.rpe_size, rpe_grid)
            bias = table[rpe_index]
            # (N, N, h) -> (1, h, N, N) or (B, N, N, h) -> (B, h, N, N)
            bias = bias.permute(0, 3, 1, 2) if bias.dim() == 4 else \
                bias.permute(2, 0, 1).unsqueeze(0)
            bias = bias.to(q.dtype)
        x = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        return self.proj(x.transpose(1, 2).reshape(B, -1, C))


class HiViTBlock(nn.Module):
    """Pre-norm transformer block; without heads it is MLP-only.

    HiViT's stage-1/2 blocks, its stage-3 blocks and the iTPN pyramid blocks
    are all this class: ``num_heads=0`` drops the attention branch (no
    ``norm1``/``attn``, so token mixing is impossible and masked tokens can
    be dropped). Per-token ops act on the last dimension, so the block runs
    unchanged on ``(B, N, C)``, ``(B, N, k, k, C)`` or ``(B, H, W, C)``
    inputs; attention requires ``(B, N, C)``.

    Args:
        dim (int): Token width.
        num_heads (int): Attention heads; 0 makes the block MLP-only.
            Defaults to 0.
        mlp_ratio (float): Hidden width of the MLP over ``dim``.
            Defaults to 4.
        qkv_bias (bool): Bias in the qkv projection. Defaults to True.
        drop_path (float): Stochastic depth rate. Defaults to 0.
        layer_scale_init_value (float): Initial value of the per-channel
            residual scales (CaiT); 0 disables them. Defaults to 0.
        rpe_size (tuple[int, int], optional): Grid of the relative position
            parameters; None disables them. Defaults to None.
        rpe_type (str): ``'swin'`` (bias table) or ``'decomposed'``
            (ViTDet), see :class:`Attention`. Defaults to ``'swin'``.
        norm_eps (float): LayerNorm epsilon. Defaults to 1e-6.
        with_cp (bool): Gradient checkpointing of this block (saves
            activation memory at the cost of recomputing the forward).
            Defaults to False.

    Attributes:
        mlp_chunk_elems (int): Without autograd (inference, teachers) the
            MLP branch runs over slices of at most this many hidden values
            (rows = ``mlp_chunk_elems // hidden``), so a large input (e.g.
            the stride-4 pyramid level of a 1024x1024 image, 65536 x 1024
            hidden values) never materialises its full hidden tensors;
            with ``with_cp``, an MLP-only block checkpoints such row slices
            one by one, so its backward recomputes one slice at a time.
            Every row is computed by the same ops, so the result is the
            same. 0 disables it. Defaults to ``2 ** 24`` (64 MiB in fp32).
    """
    mlp_chunk_elems = 2**24

    def __init__(self,
                 dim: int,
                 num_heads: int = 0,
                 mlp_ratio: float = 4.,
                 qkv_bias: bool = True,
                 drop_path: float = 0.,
                 layer_scale_init_value: float = 0.,
                 rpe_size: Optional[tuple] = None,
                 rpe_type: str = 'swin',
                 norm_eps: float = 1e-6,
                 with_cp: bool = False) -> None:
        super().__init__()
        self.with_attn = num_heads > 0
        self.with_cp = with_cp
        if self.with_attn:
            self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
            self.attn = Attention(dim, num_heads, qkv_bias, rpe_size,
                                  rpe_type)
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.drop_path = DropPath(drop_path) if drop_path > 0 else \
            nn.Identity()
        if layer_scale_init_value > 0:
            # MLP-only blocks: the MLP-branch scale only (official gamma_2)
            self.gamma1 = nn.Parameter(
                torch.full((dim, ), float(layer_scale_init_value))
            ) if self.with_attn else None
            self.gamma2 = nn.Parameter(
                torch.full((dim, ), float(layer_scale_init_value)))
        else:
            self.gamma1 = self.gamma2 = None

    def _forward(self,
                 x: torch.Tensor,
                 rpe_index: Optional[torch.Tensor] = None,
                 rpe_grid: Optional[tuple] = None,
                 query_index: Optional[torch.Tensor] = None) -> torch.Tensor:
        if query_index is not None and not self.with_attn:
            raise ValueError('query_index needs an attention block; gather '
                             'the tokens before an MLP-only block.')
        if self.with_attn:
            y = self.attn(self.norm1(x), rpe_index, rpe_grid, query_index)
            if query_index is not None:
                x = gather_patches(x, query_index)
            if self.gamma1 is not None:
                y = y * self.gamma1
            x = x + self.drop_path(y)
        return self._mlp_residual(x)

    def _mlp_branch(self, x: torch.Tensor) -> torch.Tensor:
        y = self.mlp(self.norm2(x))
        return y if self.gamma2 is None else y * self.gamma2

    def _mlp_residual(self, x: torch.Tensor) -> torch.Tensor:
        """``x + drop_path(mlp(norm2(x)))``, sliced over rows when no
        autograd graph is recorded (see :attr:`mlp_chunk_elems`)."""
        rows = x.numel() // x.shape[-1]
        step = self.mlp_chunk_elems // self.mlp.fc1.out_features
        if (step <= 0 or rows <= step or torch.is_grad_enabled()
                or (self.training and not isinstance(self.drop_path,
                                                     nn.Identity))
                or not x.is_contiguous() or torch.compiler.is_compiling()):
            return x + self.drop_path(self._mlp_branch(x))
        flat = x.view(rows, x.shape[-1])
        out = torch.empty_like(flat)
        for i in range(0, rows, step):
            torch.add(flat[i:i + step], self._mlp_branch(flat[i:i + step]),
                      out=out[i:i + step])
        return out.view(x.shape)

    def forward(self,
                x: torch.Tensor,
                rpe_index: Optional[torch.Tensor] = None,
                rpe_grid: Optional[tuple] = None,
                query_index: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Forward.

        Args:
            x (torch.Tensor): Tokens; ``(B, N, C)`` when the block attends.
            rpe_index (torch.Tensor, optional): Relative position indices,
                see :class:`Attention`.
            rpe_grid (tuple[int, int], optional): Their token grid.
            query_index (torch.Tensor, optional): ``(B, M)`` tokens whose
                outputs are wanted (attention blocks only): returns those
                ``M`` rows of the full output, ``(B, M, C)``, computing the
                queries, the residuals and the MLP for them only.
                Defaults to None (all tokens).
        """
        if query_index is not None:
            if self.with_cp and torch.is_grad_enabled() and x.requires_grad:
                return checkpoint(self._forward, x, rpe_index, rpe_grid,
                                  query_index, use_reentrant=False)
            return self._forward(x, rpe_index, rpe_grid, query_index)
        if self.with_cp and torch.is_grad_enabled() and x.requires_grad:
            step = self._row_step(x)
            if step:
                # per-token block: checkpoint row slices separately, so the
                # backward recomputes (and holds) one slice at a time
                rows = x.view(-1, x.shape[-1]).split(step)
                return torch.cat([
                    checkpoint(self._forward, r, use_reentrant=False)
                    for r in rows
                ]).view(x.shape)
            return checkpoint(
                self._forward, x, rpe_index, rpe_grid, use_reentrant=False)
        return self._forward(x, rpe_index, rpe_grid)

    def _row_step(self, x: torch.Tensor) -> int:
        """Rows per slice for :attr:`mlp_chunk_elems` (0: do not slice).
        Only MLP-only blocks under checkpointing slice, and only without
        active drop path (it draws one mask per sample, not per row)."""
        step = self.mlp_chunk_elems // self.mlp.fc1.out_features
        rows = x.numel() // x.shape[-1]
        if (self.with_attn or step <= 0 or rows <= step
                or not x.is_contiguous() or torch.compiler.is_compiling()
                or (self.training
                    and not isinstance(self.drop_path, nn.Identity))):
            return 0
        return step
