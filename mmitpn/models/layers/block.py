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


def _scaled(x: torch.Tensor, gamma: Optional[torch.Tensor]) -> torch.Tensor:
    """``x`` times a per-channel layer scale, or ``x`` when there is none."""
    return x if gamma is None else x * gamma


class HiViTBlock(nn.Module):
    """Pre-norm transformer block; without heads it is MLP-only.

    HiViT's stage-1/2 blocks, its stage-3 blocks and the iTPN pyramid blocks
    are all this class (timm's ``Block``: two residual lines, norm, layer
    scale and drop path chosen at construction). ``num_heads=0`` drops the
    attention branch (no ``norm1``/``attn``, so token mixing is impossible
    and masked tokens can be dropped). Per-token ops act on the last
    dimension, so the block runs unchanged on ``(B, N, C)``,
    ``(B, N, k, k, C)`` or ``(B, H, W, C)`` inputs; attention requires
    ``(B, N, C)``. Sequences of MLP-only blocks run large inputs in row
    slices through :class:`RowSlicedBlocks`.

    Layer scale (CaiT) multiplies a residual branch by the per-channel
    parameter ``gamma1`` (attention) or ``gamma2`` (MLP), or by nothing
    when the block has none (the attribute is None): parameters of the
    block itself, so that the state-dict keys are the parameter names
    (``stages.2.0.gamma1``), which FSDP's full state dict and mmengine's
    parameter-wise optimizer settings rely on.

    Args:
        dim (int): Token width.
        num_heads (int): Attention heads; 0 makes the block MLP-only.
            Defaults to 0.
        mlp_ratio (float): Hidden width of the MLP over ``dim``.
            Defaults to 4.
        qkv_bias (bool): Bias in the qkv projection. Defaults to True.
        drop_path (float): Stochastic depth rate. Defaults to 0.
        layer_scale_init_value (float): Initial value of the per-channel
            residual scales (CaiT); 0 disables them. MLP-only blocks get
            the MLP-branch scale ``gamma2`` only (official ``gamma_2``).
            Defaults to 0.
        rpe_size (tuple[int, int], optional): Grid of the relative position
            parameters; None disables them. Defaults to None.
        rpe_type (str): ``'swin'`` (bias table) or ``'decomposed'``
            (ViTDet), see :class:`Attention`. Defaults to ``'swin'``.
        norm_eps (float): LayerNorm epsilon. Defaults to 1e-6.
        with_cp (bool): Gradient checkpointing of this block (saves
            activation memory at the cost of recomputing the forward).
            Defaults to False.
    """

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

        def layer_scale(enabled):
            return nn.Parameter(
                torch.full((dim, ), float(layer_scale_init_value))
            ) if enabled and layer_scale_init_value > 0 else None

        self.gamma1 = layer_scale(self.with_attn)
        self.gamma2 = layer_scale(True)

    def forward(self,
                x: torch.Tensor,
                rpe_index: Optional[torch.Tensor] = None,
                rpe_grid: Optional[tuple] = None,
                query_index: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Forward (checkpointed with ``with_cp`` when autograd records).

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

        Returns:
            torch.Tensor: The block's output, shaped as ``x`` (or
            ``(B, M, C)`` with ``query_index``).
        """
        if query_index is not None and not self.with_attn:
            raise ValueError('query_index needs an attention block; gather '
                             'the tokens before an MLP-only block.')
        if self.with_cp and torch.is_grad_enabled() and x.requires_grad:
            return checkpoint(self._forward, x, rpe_index, rpe_grid,
                              query_index, use_reentrant=False)
        return self._forward(x, rpe_index, rpe_grid, query_index)

    def _forward(self,
                 x: torch.Tensor,
                 rpe_index: Optional[torch.Tensor] = None,
                 rpe_grid: Optional[tuple] = None,
                 query_index: Optional[torch.Tensor] = None) -> torch.Tensor:
        if self.with_attn:
            y = self.attn(self.norm1(x), rpe_index, rpe_grid, query_index)
            if query_index is not None:
                x = gather_patches(x, query_index)
            x = x + self.drop_path(_scaled(y, self.gamma1))
        return x + self.drop_path(_scaled(self.mlp(self.norm2(x)),
                                          self.gamma2))


class RowSlicedBlocks(nn.ModuleList):
    """MLP-only :class:`HiViTBlock` s, run one after the other, over slices
    of rows when the input is large.

    An MLP-only block acts on every row (the last dimension) alone, so the
    rows can be cut into slices that pass through all the blocks one slice
    at a time; every row is computed by the same ops (a matrix product over
    fewer rows may only round differently). It is a ``ModuleList``: the
    blocks keep their names (``stages.0.1.mlp.fc1.weight``).

    - Without autograd (inference, teachers): slices of at most
      :attr:`max_elems` hidden values (rows = ``max_elems // hidden``) are
      written into one output, so a large input (e.g. the stride-4 pyramid
      level of a 1024x1024 image, 65536 x 1024 hidden values) never
      materialises its full hidden tensors.
    - With autograd and blocks built with ``with_cp``: every block runs
      on every slice under its own checkpoint, so the backward recomputes
      (and holds) one block on one slice at a time.
    - Otherwise, with active drop path in training (it draws one mask per
      sample, not per row) or for inputs of at most one slice, the blocks
      run on the whole input as usual.

    The gain is measured in ``docs/benchmark.md`` (section "Row slices").

    Args:
        modules (Iterable[HiViTBlock], optional): MLP-only blocks.
            Defaults to None.

    Attributes:
        max_elems (int): Hidden values per slice; 0 disables slicing.
            Defaults to ``2 ** 24`` (64 MiB in fp32).
    """
    max_elems = 2**24

    def __init__(self, modules=None) -> None:
        super().__init__(modules)
        if any(getattr(m, 'with_attn', True) for m in self):
            raise ValueError('RowSlicedBlocks holds MLP-only HiViTBlocks '
                             '(num_heads=0): attention mixes the rows.')

    def rows_per_slice(self,
                       x: torch.Tensor,
                       index: Optional[int] = None) -> int:
        """Rows per slice for ``x`` (0: run on the whole input).

        Args:
            x (torch.Tensor): The input.
            index (int, optional): Only this block runs. Defaults to None.

        Returns:
            int: Rows per slice, or 0.
        """
        blocks = list(self) if index is None else [self[index]]
        if not blocks or self.max_elems <= 0 or \
                torch.compiler.is_compiling():
            return 0
        step = self.max_elems // max(b.mlp.fc1.out_features for b in blocks)
        if step <= 0 or x.numel() // x.shape[-1] <= step or any(
                b.training and not isinstance(b.drop_path, nn.Identity)
                for b in blocks):
            return 0
        return step

    def forward(self, x: torch.Tensor,
                index: Optional[int] = None) -> torch.Tensor:
        """Run the blocks (or only block ``index``) on ``x``.

        Args:
            x (torch.Tensor): Tokens ``(..., C)`` in any layout.
            index (int, optional): Run only this block (e.g. one output
                block per pyramid level). Defaults to None (all, in order).

        Returns:
            torch.Tensor: Shaped as ``x``.
        """
        blocks = list(self) if index is None else [self[index]]
        checkpointed = torch.is_grad_enabled() and x.requires_grad and \
            any(b.with_cp for b in blocks)
        step = self.rows_per_slice(x, index) \
            if checkpointed or not torch.is_grad_enabled() else 0
        if not step:
            for blk in blocks:
                x = blk(x)
            return x

        flat = x.reshape(-1, x.shape[-1])
        if checkpointed:
            # one checkpoint per block and slice: the backward holds the
            # activations of one block on one slice at a time
            for blk in blocks:
                flat = torch.cat([
                    checkpoint(blk._forward, rows, use_reentrant=False)
                    for rows in flat.split(step)
                ])
            return flat.view(x.shape)
        out = torch.empty_like(flat)
        for i in range(0, flat.shape[0], step):
            rows = flat[i:i + step]
            for blk in blocks:
                rows = blk._forward(rows)
            out[i:i + step] = rows
        return out.view(x.shape)
