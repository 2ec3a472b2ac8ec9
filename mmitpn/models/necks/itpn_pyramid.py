"""The iTPN feature pyramid: pre-trained with the backbone, reused as is."""
from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule

from mmitpn.registry import MODELS
from ..utils import check_state_dict, parse_allow_partial_load
from ..layers import (HiViTBlock, PatchSplit, RowSlicedBlocks,
                      init_trunc_normal)


@MODELS.register_module()
class ITPNPyramid(BaseModule):
    """Top-down feature pyramid of iTPN built from per-token MLP blocks.

    No convolution: every op acts on one position (or splits one position
    into 2x2), so visible tokens never see masked ones and the same weights
    run masked pre-training (token layout) and dense downstream tasks::

        P16 = align_16(X16)
        P8  = blocks_8(split_16to8(X16) + align_8(X8))
        P4  = blocks_4(split_8to4(P8) + align_4(X4))
        out = out_blocks(P4, P8, P16) [+ pooled P16 levels]

    ``split`` is LayerNorm + Linear C -> 4F whose output is laid out as a 2x2
    sub-grid (see :class:`PatchSplit`). ``split_16to8`` reads X16, not P16,
    as the official code does.

    Paper: iTPN (Tian et al., CVPR 2023); reference code
    github.com/sunsmarterjie/iTPN (``models_itpn_mim.py``, ``iTPN_pixel.py``).

    Args:
        in_channels (Sequence[int]): Widths of the backbone stages at
            strides 4, 8, 16 (C/4, C/2, C). Defaults to (128, 256, 512).
        out_channels (int): Pyramid width F. Defaults to 256.
        fpn_depth (int): MLP blocks after each top-down fusion.
            Defaults to 2.
        mlp_ratio (float): MLP ratio of the pyramid blocks. Defaults to 4.
        num_outs (int): Outputs: 3 (strides 4, 8, 16), 4 or 5 (extra
            strides 32 and 64 pooled from the previous level; dense layout
            only). Defaults to 5.
        extra_pool (str): ``'avg'`` (official detection) or ``'max'``
            (official segmentation) 2x2 pooling for the extra levels.
            Defaults to ``'avg'``.
        concat_inputs (bool): Concatenate every output with the backbone map
            of the same stride (the official UPerNet variant; widths become
            F + C_s, the pooled levels F + C). Dense layout only.
            Defaults to False.
        drop_path_rate (float): Stochastic depth of the pyramid blocks.
            Defaults to 0.
        norm_eps (float): LayerNorm epsilon. Defaults to 1e-6.
        with_cp (bool): Gradient checkpointing of the blocks.
            Defaults to False.
        allow_partial_load (bool | Sequence[str]): False: a checkpoint
            must fill every tensor and bring no other keys under the
            pyramid's prefix, else the load stops with one line naming the
            fix (e.g. ``fpn_depth``). True: load partially on purpose
            (logged at WARNING). A tuple of key prefixes relative to the
            pyramid, e.g. ``('blocks_8.1.', 'blocks_4.1.')`` for the
            official COCO recipe that loads a depth-2 pre-training pyramid
            at ``fpn_depth=1``: only those checkpoint keys may be dropped
            (logged at WARNING). Defaults to False.
        init_cfg (dict | list[dict], optional): Initialisation config.
            Defaults to None.
    """

    def __init__(self,
                 in_channels: Sequence[int] = (128, 256, 512),
                 out_channels: int = 256,
                 fpn_depth: int = 2,
                 mlp_ratio: float = 4.,
                 num_outs: int = 5,
                 extra_pool: str = 'avg',
                 concat_inputs: bool = False,
                 drop_path_rate: float = 0.,
                 norm_eps: float = 1e-6,
                 with_cp: bool = False,
                 allow_partial_load: Union[bool, Sequence[str]] = False,
                 init_cfg: Optional[Union[dict, list]] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.allow_partial_load = parse_allow_partial_load(
            allow_partial_load, type(self).__name__)
        in_channels = tuple(in_channels)
        if len(in_channels) != 3:
            raise ValueError(f'ITPNPyramid takes the three HiViT stages '
                             f'(strides 4, 8, 16), got in_channels='
                             f'{in_channels}.')
        if num_outs not in (3, 4, 5):
            raise ValueError(f'num_outs must be 3, 4 or 5, got {num_outs}.')
        if extra_pool not in ('avg', 'max'):
            raise ValueError(f"extra_pool must be 'avg' or 'max', got "
                             f'{extra_pool!r}.')
        if fpn_depth < 1:
            raise ValueError(f'fpn_depth must be >= 1, got {fpn_depth}.')
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.num_outs = num_outs
        self.extra_pool = extra_pool
        self.concat_inputs = concat_inputs
        c4, c8, c16 = in_channels
        F_ = out_channels

        def blocks(n, rates):  # per-token: large levels in row slices
            return RowSlicedBlocks([
                HiViTBlock(
                    F_,
                    mlp_ratio=mlp_ratio,
                    drop_path=rates[i],
                    norm_eps=norm_eps,
                    with_cp=with_cp) for i in range(n)
            ])

        dpr = torch.linspace(0, drop_path_rate, 2 * fpn_depth + 3).tolist()
        self.align_16 = nn.Linear(c16, F_) if c16 != F_ else nn.Identity()
        self.split_16to8 = PatchSplit(c16, F_, norm_eps)
        self.align_8 = nn.Linear(c8, F_, bias=False)
        self.blocks_8 = blocks(fpn_depth, dpr[:fpn_depth])
        self.split_8to4 = PatchSplit(F_, F_, norm_eps)
        self.align_4 = nn.Linear(c4, F_, bias=False)
        self.blocks_4 = blocks(fpn_depth, dpr[fpn_depth:2 * fpn_depth])
        # finest first: out_blocks[0] on P4, [1] on P8, [2] on P16
        self.out_blocks = blocks(3, dpr[2 * fpn_depth:])
        self.apply(init_trunc_normal)
        self._register_load_state_dict_pre_hook(self._check_checkpoint)

    def _check_checkpoint(self, state_dict, prefix, *args) -> None:
        """Fail with a table when a checkpoint of another width is loaded,
        and log what the checkpoint loads."""
        check_state_dict(self, state_dict, prefix, self.allow_partial_load)

    @property
    def out_widths(self) -> Tuple[int, ...]:
        """Channels of each output (``concat_inputs`` widens them)."""
        F_ = self.out_channels
        if not self.concat_inputs:
            return (F_, ) * self.num_outs
        c4, c8, c16 = self.in_channels
        return (F_ + c4, F_ + c8, F_ + c16, F_ + c16, F_ + c16)[:self.num_outs]

    def _pyramid(self, x4: torch.Tensor, x8: torch.Tensor,
                 x16: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """Layout-agnostic core on ``(..., h, w, C)`` tensors."""
        p16 = self.align_16(x16)
        p8 = self.blocks_8(self.split_16to8(x16) + self.align_8(x8))
        p4 = self.blocks_4(self.split_8to4(p8) + self.align_4(x4))
        return tuple(
            self.out_blocks(p, index=i) for i, p in enumerate((p4, p8, p16)))

    def forward(self, inputs: Sequence[torch.Tensor]) -> Tuple[torch.Tensor]:
        """Forward.

        Args:
            inputs (Sequence[torch.Tensor]): Backbone stages at strides 4, 8,
                16, either dense NCHW maps ``(B, C_s, H/s, W/s)`` or
                token-layout tensors ``(B, L, k_s, k_s, C_s)`` (k = 4, 2, 1)
                of the same tokens (masked pre-training).

        Returns:
            tuple[torch.Tensor]: Finest first, in the layout given: dense
            ``(B, F, H/s, W/s)`` for s = 4, 8, 16 (, 32, 64); or tokens
            ``(B, L, k_s, k_s, F)`` for s = 4, 8, 16 (no pooled levels: they
            would mix tokens).
        """
        if len(inputs) != 3:
            raise ValueError(f'ITPNPyramid needs the 3 HiViT stage outputs '
                             f"(backbone out_indices=(0, 1, 2)), got "
                             f'{len(inputs)}.')
        widths = tuple(x.shape[1] if x.dim() == 4 else x.shape[-1]
                       for x in inputs)
        if widths != tuple(self.in_channels):
            raise ValueError(
                f'ITPNPyramid was built for stage widths '
                f'{tuple(self.in_channels)} but got {widths}; set neck '
                f'in_channels to (C/4, C/2, C) of the backbone.')
        if inputs[0].dim() == 5:
            if self.concat_inputs:
                raise ValueError('concat_inputs is for dense maps only.')
            return self._pyramid(*inputs)
        x4, x8, x16 = (x.permute(0, 2, 3, 1) for x in inputs)
        # standard (contiguous) NCHW: mmcv's RoIAlign reads raw memory and
        # gives wrong features on channels-last views
        outs = [
            o.permute(0, 3, 1, 2).contiguous()
            for o in self._pyramid(x4, x8, x16)
        ]
        if self.concat_inputs:
            outs = [torch.cat([o, x], dim=1) for o, x in zip(outs, inputs)]
        pool = F.avg_pool2d if self.extra_pool == 'avg' else F.max_pool2d
        while len(outs) < self.num_outs:
            outs.append(pool(outs[-1], kernel_size=2, stride=2))
        return tuple(outs)
