"""HiViT: the hierarchical ViT that iTPN pre-trains with its pyramid."""
import warnings
from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmengine.model import BaseModule

from mmitpn.registry import MODELS
from ..utils import check_state_dict, parse_allow_partial_load
from ..layers import (HiViTBlock, PatchEmbed, PatchMerge, RowSlicedBlocks,
                      build_2d_sincos_pos_embed, gather_patches,
                      init_trunc_normal,
                      relative_position_index, resize_decomposed_rel_pos,
                      resize_pos_embed, resize_rel_pos_table)
from ..layers.block import RPE_TYPES

_ARCH_KEYS = {'embed_dims', 'depths', 'num_heads'}


@MODELS.register_module()
class HiViTBackbone(BaseModule):
    """HiViT backbone of iTPN, with a dense and a masked (token) path.

    A 16x16 patch is embedded as k x k sub-tokens (k = 4). Stages 1 and 2
    (strides 4 and 8) are MLP-only blocks joined by patch merging; stage 3
    (stride 16) runs global attention. Nothing mixes two 16x16 patches
    before stage 3, so masked patches are dropped from the input and never
    computed (``ids_keep``).

    Two layouts of the same computation:

    - ``forward(img)``: dense channels-last maps internally, returns NCHW
      stage maps ``(B, C_s, H/s, W/s)`` for ``out_indices`` (downstream);
    - ``forward(img, ids_keep=...)``: token layout, returns
      ``(B, L_keep, k_s, k_s, C_s)`` for the kept tokens only (pre-training).

    Papers: HiViT (Zhang et al., ICLR 2023) and iTPN (Tian et al., CVPR 2023).
    Reference code: github.com/sunsmarterjie/iTPN and mmpretrain's
    ``HiViT`` / ``iTPNHiViT``.

    Args:
        arch (str | dict): A name from :attr:`arch_zoo` or a dict with keys
            ``embed_dims`` (stage-3 width C; stages 1, 2 have C/4, C/2),
            ``depths`` (blocks per stage, 3 ints) and ``num_heads``.
            Defaults to ``'itpn-base'``.
        img_size (int | tuple[int, int]): Pre-training image size; sets the
            grid of the absolute position embedding and the relative
            position bias tables. Other input sizes are handled by
            interpolation. Defaults to 224.
        patch_size (int): Token size in pixels. Defaults to 16.
        inner_patches (int): Sub-tokens per token side. Defaults to 4.
        in_channels (int): Input channels. Defaults to 3.
        out_indices (Sequence[int]): Stages (0, 1, 2 for strides 4, 8, 16;
            negative counts from the end) to return. Defaults to (0, 1, 2).
        stem_mlp_ratio (float): MLP ratio of stages 1 and 2. Defaults to 3.
        mlp_ratio (float): MLP ratio of stage 3. Defaults to 4.
        qkv_bias (bool): Bias of the qkv projections. Defaults to True.
        drop_path_rate (float): Stochastic depth, rising linearly over all
            blocks of all stages. Defaults to 0.
        pos_embed_type (str, optional): ``'sincos'`` (fixed MAE table),
            ``'learnable'`` (trainable, initialised by ``pos_embed_init``;
            the official pre-trainings and fine-tunings) or None (no
            absolute position embedding). Defaults to ``'sincos'``.
        pos_embed_size (int | tuple[int, int], optional): Image size the
            absolute position embedding table is made for (grid = size /
            patch_size); other grids interpolate it at every forward (the
            official bicubic scale-factor rule). The official UPerNet
            backbone keeps the 14x14 table of pre-training at
            ``img_size=512``: ``pos_embed_size=224``. Defaults to None
            (``img_size``).
        pos_embed_init (str): Initialisation of a ``'learnable'`` table:
            ``'sincos'`` (MAE's 2-D table; official pixel pre-training) or
            ``'trunc_normal'`` (std 0.02; official CLIP pre-training).
            Defaults to ``'sincos'``.
        rpe_type (str, optional): Relative positions in stage 3: None,
            ``'swin'`` (a Swin bias table per block,
            ``attn.relative_position_bias_table``; official classification,
            segmentation and CLIP pre-training) or ``'decomposed'`` (ViTDet
            decomposed relative positions, ``attn.rel_pos_h`` /
            ``attn.rel_pos_w`` of ``(2 * grid - 1, head_dim)``, linearly
            interpolated for another grid; the official CLIP detection
            backbone). Both work on the dense and the masked path.
            Defaults to None.
        use_rpe (bool, optional): Deprecated alias: True is
            ``rpe_type='swin'``, False is ``rpe_type=None``. Defaults to None
            (not given).
        layer_scale_init_value (float): Layer-scale init of the blocks of
            ``layer_scale_stages``; 0 disables layer scale. Defaults to 0.
        layer_scale_stages (Sequence[int]): Stages (0, 1, 2) whose blocks
            get layer scale when ``layer_scale_init_value > 0``. MLP-only
            stage-1/2 blocks get the MLP-branch scale ``gamma2`` only. The
            official CLIP models use (0, 1, 2); the pyramid never has layer
            scale. Defaults to (2, ).
        norm_eps (float): LayerNorm epsilon. Defaults to 1e-6.
        final_norm (bool): LayerNorm on the stage-3 output (classifiers).
            Defaults to False.
        with_cp (bool): Gradient checkpointing of every block.
            Defaults to False.
        frozen_stages (int): -1 freezes nothing, 0 the patch and position
            embeddings, n > 0 also stages 1..n (with the merges after them).
            Defaults to -1.
        use_mask_token (bool): A learnable token that replaces masked
            stage-3 inputs (BEiT-style masking of the CLIP-target variant:
            the encoder sees every token). Defaults to False.
        pretrained (str, optional): Deprecated, as in mmseg's backbones
            (whose ``_base_`` model configs pass ``pretrained=None``): a
            path becomes ``init_cfg=dict(type='Pretrained',
            checkpoint=pretrained)``. Defaults to None.
        allow_partial_load (bool | Sequence[str]): False: a checkpoint
            (``init_cfg``, ``load_from``) must fill every tensor and bring
            no other keys under the backbone's prefix, else the load stops
            with one line naming the fix. True: load partially on purpose
            (missing and dropped keys are logged at WARNING). A tuple of
            key prefixes relative to the backbone: only the checkpoint
            keys under them may be dropped. See
            :func:`mmitpn.models.utils.check_state_dict`.
            Defaults to False.
        init_cfg (dict | list[dict], optional): Initialisation config, e.g.
            ``dict(type='Pretrained', checkpoint=..., prefix='backbone.')``.
            Defaults to None.
    """
    arch_zoo = {
        **dict.fromkeys(['t', 'tiny'],
                        dict(embed_dims=384, depths=(1, 1, 10), num_heads=6)),
        **dict.fromkeys(['s', 'small'],
                        dict(embed_dims=384, depths=(2, 2, 20), num_heads=6)),
        **dict.fromkeys(['b', 'base'],
                        dict(embed_dims=512, depths=(2, 2, 24), num_heads=8)),
        **dict.fromkeys(['l', 'large'],
                        dict(embed_dims=768, depths=(2, 2, 40),
                             num_heads=12)),
        **dict.fromkeys(['itpn-b', 'itpn-base'],
                        dict(embed_dims=512, depths=(3, 3, 24), num_heads=8)),
        **dict.fromkeys(['itpn-l', 'itpn-large'],
                        dict(embed_dims=768, depths=(2, 2, 40),
                             num_heads=12)),
    }
    num_stages = 3

    def __init__(self,
                 arch: Union[str, dict] = 'itpn-base',
                 img_size: Union[int, Tuple[int, int]] = 224,
                 patch_size: int = 16,
                 inner_patches: int = 4,
                 in_channels: int = 3,
                 out_indices: Sequence[int] = (0, 1, 2),
                 stem_mlp_ratio: float = 3.,
                 mlp_ratio: float = 4.,
                 qkv_bias: bool = True,
                 drop_path_rate: float = 0.,
                 pos_embed_type: Optional[str] = 'sincos',
                 pos_embed_size: Optional[Union[int, Tuple[int, int]]] = None,
                 pos_embed_init: str = 'sincos',
                 rpe_type: Optional[str] = None,
                 use_rpe: Optional[bool] = None,
                 layer_scale_init_value: float = 0.,
                 layer_scale_stages: Sequence[int] = (2, ),
                 norm_eps: float = 1e-6,
                 final_norm: bool = False,
                 with_cp: bool = False,
                 frozen_stages: int = -1,
                 use_mask_token: bool = False,
                 pretrained: Optional[str] = None,
                 allow_partial_load: Union[bool, Sequence[str]] = False,
                 init_cfg: Optional[Union[dict, list]] = None) -> None:
        init_cfg = self._parse_pretrained(pretrained, init_cfg)
        super().__init__(init_cfg=init_cfg)
        self.allow_partial_load = parse_allow_partial_load(
            allow_partial_load, type(self).__name__)
        rpe_type = self._parse_rpe_type(rpe_type, use_rpe)
        layer_scale_stages = self._parse_layer_scale_stages(
            layer_scale_stages)
        self.arch_settings = self._parse_arch(arch)
        C = self.arch_settings['embed_dims']
        depths = tuple(self.arch_settings['depths'])
        self.embed_dims = C
        self.depths = depths
        self.num_heads = self.arch_settings['num_heads']
        self.stage_dims = (C // 4, C // 2, C)
        self.inner_patches = inner_patches
        self.patch_size = patch_size

        img_size = (img_size, img_size) if isinstance(img_size, int) else \
            tuple(img_size)
        if img_size[0] % patch_size or img_size[1] % patch_size:
            raise ValueError(f'img_size {img_size} must be a multiple of '
                             f'patch_size {patch_size}.')
        self.grid_size = (img_size[0] // patch_size,
                          img_size[1] // patch_size)
        pos_size = img_size if pos_embed_size is None else (
            (pos_embed_size, pos_embed_size) if isinstance(
                pos_embed_size, int) else tuple(pos_embed_size))
        if pos_size[0] % patch_size or pos_size[1] % patch_size:
            raise ValueError(f'pos_embed_size {pos_size} must be a multiple '
                             f'of patch_size {patch_size}.')
        #: grid of the absolute position embedding table
        self.pos_grid = (pos_size[0] // patch_size,
                         pos_size[1] // patch_size)
        if inner_patches != 4:
            raise ValueError('HiViT has two 2x2 merges, so inner_patches '
                             f'must be 4, got {inner_patches}.')

        if drop_path_rate < 0 or drop_path_rate >= 1:
            raise ValueError(f'drop_path_rate must be in [0, 1), got '
                             f'{drop_path_rate}; set e.g. drop_path_rate=0.1.')
        self.out_indices = self._parse_out_indices(out_indices)
        if pos_embed_type not in ('sincos', 'learnable', None):
            raise ValueError(f"pos_embed_type must be 'sincos', 'learnable' "
                             f'or None, got {pos_embed_type!r}.')
        self.pos_embed_type = pos_embed_type
        if pos_embed_init not in ('sincos', 'trunc_normal'):
            raise ValueError(f"pos_embed_init must be 'sincos' or "
                             f"'trunc_normal', got {pos_embed_init!r}.")
        self.pos_embed_init = pos_embed_init
        if frozen_stages not in range(-1, self.num_stages + 1):
            raise ValueError(f'frozen_stages must be in -1..3, got '
                             f'{frozen_stages}.')
        self.frozen_stages = frozen_stages

        self.patch_embed = PatchEmbed(in_channels, C // 4, patch_size,
                                      inner_patches, norm_eps)
        if pos_embed_type is not None:
            self.pos_embed = nn.Parameter(
                build_2d_sincos_pos_embed(self.pos_grid, C),
                requires_grad=pos_embed_type == 'learnable')
            if pos_embed_type == 'learnable' and \
                    pos_embed_init == 'trunc_normal':
                nn.init.trunc_normal_(self.pos_embed, std=.02)
        else:
            self.pos_embed = None

        dpr = torch.linspace(0, drop_path_rate, sum(depths)).tolist()
        self.stages = nn.ModuleList()
        self.merges = nn.ModuleList()
        for i, (dim, depth) in enumerate(zip(self.stage_dims, depths)):
            is_attn = i == self.num_stages - 1
            block_dpr, dpr = dpr[:depth], dpr[depth:]
            # per-token stages run large inputs in row slices
            blocks = nn.ModuleList if is_attn else RowSlicedBlocks
            self.stages.append(
                blocks([
                    HiViTBlock(
                        dim,
                        num_heads=self.num_heads if is_attn else 0,
                        mlp_ratio=mlp_ratio if is_attn else stem_mlp_ratio,
                        qkv_bias=qkv_bias,
                        drop_path=block_dpr[j],
                        layer_scale_init_value=layer_scale_init_value
                        if i in layer_scale_stages else 0.,
                        rpe_size=self.grid_size
                        if is_attn and rpe_type else None,
                        rpe_type=rpe_type or 'swin',
                        norm_eps=norm_eps,
                        with_cp=with_cp) for j in range(depth)
                ]))
            if not is_attn:
                self.merges.append(PatchMerge(dim, norm_eps))
        self.rpe_type = rpe_type
        self.layer_scale_stages = layer_scale_stages
        if rpe_type == 'swin':
            self.register_buffer(
                'rpe_index',
                relative_position_index(self.grid_size),
                persistent=False)
        self.norm = nn.LayerNorm(C, eps=norm_eps) if final_norm else None
        self.mask_token = None
        if use_mask_token:
            self.mask_token = nn.Parameter(torch.zeros(1, 1, C))
            nn.init.trunc_normal_(self.mask_token, std=.02)

        self.apply(init_trunc_normal)
        self._register_load_state_dict_pre_hook(self._prepare_pos_embed)
        self._freeze_stages()

    # ------------------------------------------------------------------ setup
    @property
    def use_rpe(self) -> bool:
        """Whether stage 3 has relative positions (any ``rpe_type``)."""
        return self.rpe_type is not None

    @staticmethod
    def _parse_pretrained(pretrained, init_cfg):
        """mmseg's ``pretrained`` argument -> ``init_cfg`` (as mmseg's own
        backbones do)."""
        if pretrained is None:
            return init_cfg
        if not isinstance(pretrained, str):
            raise TypeError(f'pretrained must be a checkpoint path (str) or '
                            f'None, got {type(pretrained).__name__}.')
        if init_cfg is not None:
            raise ValueError('HiViTBackbone got both pretrained and '
                             'init_cfg; set only init_cfg=dict('
                             "type='Pretrained', checkpoint=...).")
        warnings.warn('DeprecationWarning: pretrained is deprecated, please '
                      'use "init_cfg" instead')
        return dict(type='Pretrained', checkpoint=pretrained)

    @staticmethod
    def _parse_rpe_type(rpe_type, use_rpe) -> Optional[str]:
        if rpe_type is not None and rpe_type not in RPE_TYPES:
            raise ValueError(f'rpe_type must be None or one of {RPE_TYPES}, '
                             f'got {rpe_type!r}.')
        if use_rpe is None:
            return rpe_type
        warnings.warn(
            'HiViTBackbone(use_rpe=...) is deprecated; use rpe_type=None, '
            "'swin' (what use_rpe=True did) or 'decomposed'.",
            DeprecationWarning)
        if rpe_type is not None and not use_rpe:
            raise ValueError(f'use_rpe=False contradicts rpe_type='
                             f'{rpe_type!r}; drop the deprecated use_rpe.')
        if rpe_type is not None:
            return rpe_type
        return 'swin' if use_rpe else None

    def _parse_layer_scale_stages(self, stages) -> Tuple[int, ...]:
        stages = (stages, ) if isinstance(stages, int) else tuple(stages)
        if any(s not in range(self.num_stages) for s in stages):
            raise ValueError(f'layer_scale_stages must list stages 0, 1, 2 '
                             f'(strides 4, 8, 16), got {stages}; the '
                             f'official CLIP models use (0, 1, 2).')
        return stages

    def _parse_arch(self, arch: Union[str, dict]) -> dict:
        if isinstance(arch, str):
            key = arch.lower()
            if key not in self.arch_zoo:
                raise ValueError(
                    f'Unknown HiViT arch {arch!r}; choose one of '
                    f'{sorted(set(self.arch_zoo))} or pass a dict with keys '
                    f'{sorted(_ARCH_KEYS)}.')
            return dict(self.arch_zoo[key])
        if not isinstance(arch, dict) or set(arch) != _ARCH_KEYS:
            got = sorted(arch) if isinstance(arch, dict) else arch
            raise ValueError(f'A custom HiViT arch must be a dict with '
                             f'exactly the keys {sorted(_ARCH_KEYS)}, got '
                             f'{got!r}; add the missing keys or use a named '
                             f'arch.')
        C, depths, heads = arch['embed_dims'], arch['depths'], \
            arch['num_heads']
        if not isinstance(depths, (list, tuple)) or len(depths) != 3 or \
                not all(isinstance(d, int) and d >= 1 for d in depths):
            raise ValueError(f'HiViT arch depths must be 3 positive ints '
                             f'(stage 1, 2, 3 blocks), got depths={depths!r}; '
                             f'e.g. depths=(1, 1, 10).')
        if not isinstance(C, int) or not isinstance(heads, int) or \
                heads < 1 or C % 4 or C % heads:
            raise ValueError(
                f'Invalid HiViT arch: embed_dims={C} must be divisible by 4 '
                f'and by num_heads={heads}; pick a width that both divide.')
        return dict(embed_dims=C, depths=tuple(depths), num_heads=heads)

    def _parse_out_indices(self, out_indices) -> Tuple[int, ...]:
        if isinstance(out_indices, int):
            out_indices = [out_indices]
        out = []
        for i in out_indices:
            j = i + self.num_stages if i < 0 else i
            if not 0 <= j < self.num_stages:
                raise ValueError(f'out_indices entry {i} is not a stage of '
                                 f'HiViT; use stages in -3..2, e.g. '
                                 f'out_indices=(0, 1, 2).')
            out.append(j)
        return tuple(out)

    def _freeze_stages(self) -> None:
        if self.frozen_stages < 0:
            return
        frozen = [self.patch_embed]
        frozen += list(self.stages[:self.frozen_stages])
        frozen += list(self.merges[:self.frozen_stages])
        for m in frozen:
            m.eval()
            for p in m.parameters():
                p.requires_grad = False
        if self.pos_embed is not None:
            self.pos_embed.requires_grad = False

    def train(self, mode: bool = True):
        super().train(mode)
        self._freeze_stages()
        return self

    def _prepare_pos_embed(self, state_dict, prefix, *args, **kwargs):
        """Resize a checkpoint's position embedding and relative position
        bias tables to this model's grid when they differ (fine-tuning at
        another resolution; square source grids, as in every released iTPN
        / HiViT checkpoint), then fail with a table if any other tensor has
        another shape (a checkpoint of another arch), and log what the
        checkpoint loads."""
        key = prefix + 'pos_embed'
        if self.pos_embed is not None and key in state_dict and \
                state_dict[key].shape != self.pos_embed.shape and \
                state_dict[key].shape[-1] == self.embed_dims:
            src = state_dict[key]
            s = int(round(src.shape[1]**0.5))
            if s * s != src.shape[1]:
                raise ValueError(
                    f'Checkpoint {key} has shape {tuple(src.shape)}, which '
                    f'is not a square grid: cannot resize it to '
                    f'{self.pos_grid}.')
            state_dict[key] = resize_pos_embed(src, (s, s), self.pos_grid)
        for name, own in self.named_parameters():
            key = prefix + name
            if key not in state_dict or state_dict[key].shape == own.shape:
                continue
            src = state_dict[key]
            if name.endswith('relative_position_bias_table') and \
                    src.dim() == 2 and src.shape[1] == own.shape[1]:
                s = (int(round(src.shape[0]**0.5)) + 1) // 2
                state_dict[key] = resize_rel_pos_table(
                    src, (s, s), self.grid_size)
            elif name.endswith(('rel_pos_h', 'rel_pos_w')) and \
                    src.dim() == 2 and src.shape[1] == own.shape[1]:
                # linear, as the official forward resizes them
                state_dict[key] = resize_decomposed_rel_pos(
                    src, own.shape[0])
        check_state_dict(self, state_dict, prefix, self.allow_partial_load)

    # ---------------------------------------------------------------- forward
    def _pos_embed_for(self, grid: Tuple[int, int],
                       num_tokens: int) -> torch.Tensor:
        """The position embedding for a ``grid`` whose ``num_tokens`` tokens
        enter stage 3, following the official rule: the table is used as
        is only for the full pre-training grid (as many tokens as the table
        and a square grid); otherwise (another size, or masked tokens) it is
        resampled with the official bicubic scale-factor resize, even on the
        same grid, as the official pre-training forward does."""
        if num_tokens == self.pos_embed.shape[1] and grid[0] == grid[1]:
            return self.pos_embed
        return resize_pos_embed(self.pos_embed, self.pos_grid, grid)

    def _run_stage(self, i: int, x: torch.Tensor, **kwargs) -> torch.Tensor:
        if isinstance(self.stages[i], RowSlicedBlocks):
            return self.stages[i](x)
        for blk in self.stages[i]:
            x = blk(x, **kwargs)
        return x

    def forward_dense(self,
                      x: torch.Tensor,
                      mask: Optional[torch.Tensor] = None,
                      return_block: Optional[int] = None,
                      stages: Optional[Sequence[int]] = None):
        """Full-image path; returns NCHW maps of all three stages.

        Args:
            x (torch.Tensor): Images ``(B, C, H, W)``.
            mask (torch.Tensor, optional): ``(B, Hp, Wp)`` or ``(B, N)``,
                true where the stage-3 input is replaced by the mask token
                (needs ``use_mask_token``). Stages 1 and 2 see the whole
                image. Defaults to None.
            return_block (int, optional): Also return the ``(B, N, C)``
                tokens after this stage-3 block (CLIP-variant side head).
            stages (Sequence[int], optional): Stages (0, 1, 2) whose maps
                are wanted; the others are not kept while later stages run
                (memory) and come back as None. Defaults to all three.

        Returns:
            tuple[torch.Tensor]: The three maps, or ``(maps, tokens)`` when
            ``return_block`` is given.
        """
        x = self.patch_embed(x, dense=True)  # (B, H/4, W/4, C/4)
        outs = []
        for i in range(self.num_stages - 1):
            x = self._run_stage(i, x)
            outs.append(x if stages is None or i in stages else None)
            x = self.merges[i](x)
        B, hp, wp, C = x.shape
        x = x.reshape(B, hp * wp, C)
        if mask is not None:
            if self.mask_token is None:
                raise ValueError('Masking with a mask token needs a backbone '
                                 'built with use_mask_token=True.')
            w = mask.reshape(B, hp * wp, 1).to(x.dtype)
            x = x * (1 - w) + self.mask_token.to(x.dtype) * w
        if self.pos_embed is not None:
            x = x + self._pos_embed_for((hp, wp), hp * wp).to(x.dtype)
        rpe = dict()
        if self.rpe_type == 'swin':
            rpe = dict(
                rpe_index=relative_position_index((hp, wp), x.device),
                rpe_grid=(hp, wp))
        elif self.rpe_type == 'decomposed':
            rpe = dict(rpe_grid=(hp, wp))
        side = None
        for i, blk in enumerate(self.stages[-1]):
            x = blk(x, **rpe)
            if i == return_block:
                side = x
        if self.norm is not None:
            x = self.norm(x)
        outs.append(x.view(B, hp, wp, C))
        # standard (contiguous) NCHW: mmcv's compiled ops (RoIAlign, ...)
        # read raw memory and give wrong numbers on channels-last views
        outs = tuple(None if o is None else o.permute(0, 3, 1, 2).contiguous()
                     for o in outs)
        return outs if return_block is None else (outs, side)

    def forward_masked(self, x: torch.Tensor,
                       ids_keep: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """Masked path; returns token-layout stage outputs
        ``(B, L_keep, k, k, C_s)`` of the kept tokens only."""
        self.patch_embed.check_input(x)
        grid = (x.shape[-2] // self.patch_size, x.shape[-1] // self.patch_size)
        B, N = x.shape[0], grid[0] * grid[1]
        if ids_keep.dim() != 2 or ids_keep.shape[0] != B:
            raise ValueError(f'ids_keep must be (B, L_keep) with B={B}, got '
                             f'shape {tuple(ids_keep.shape)}; pass one row of '
                             f'kept patch indices per image.')
        # (a data-dependent check: skipped under torch.compile, where it
        # would break the graph)
        if not torch.compiler.is_compiling() and ids_keep.numel():
            # one device -> host copy for all three checks
            ids = ids_keep.sort(dim=1).values
            lo, hi, repeats = torch.stack([
                ids[:, 0].min(), ids[:, -1].max(),
                (ids.diff(dim=1) == 0).sum()
            ]).tolist()
            if lo < 0 or hi >= N:
                raise ValueError(f'ids_keep holds indices outside [0, {N}) '
                                 f'(min {lo}, max {hi}); index the {N} '
                                 f'patches of the image.')
            if repeats:
                raise ValueError('ids_keep repeats a patch index in a row; '
                                 'every kept patch must be listed once (e.g. '
                                 'noise.argsort(1)[:, :L_keep]).')
        L = ids_keep.shape[1]
        # only the kept patches are embedded: (B, L, 4, 4, C/4)
        x = self.patch_embed(x, dense=False, ids_keep=ids_keep)
        outs = []
        for i in range(self.num_stages - 1):
            x = self._run_stage(i, x)
            outs.append(x)
            x = self.merges[i](x)
        x = x.view(B, L, self.embed_dims)
        if self.pos_embed is not None:
            pos = self._pos_embed_for(grid, L).to(x.dtype).expand(B, -1, -1)
            x = x + gather_patches(pos, ids_keep)
        rpe = dict()
        if self.rpe_type == 'decomposed':
            rpe = dict(rpe_index=ids_keep, rpe_grid=grid)
        elif self.rpe_type == 'swin':
            index = self.rpe_index if grid == self.grid_size else \
                relative_position_index(grid, x.device)
            index = index[ids_keep[:, :, None], ids_keep[:, None, :]]
            rpe = dict(rpe_index=index, rpe_grid=grid)
        x = self._run_stage(self.num_stages - 1, x, **rpe)
        if self.norm is not None:
            x = self.norm(x)
        outs.append(x.view(B, L, 1, 1, self.embed_dims))
        return tuple(outs)

    def forward(
            self,
            x: torch.Tensor,
            ids_keep: Optional[torch.Tensor] = None
    ) -> Tuple[torch.Tensor, ...]:
        """Forward.

        Args:
            x (torch.Tensor): Images ``(B, C, H, W)``, sides multiples of 16.
            ids_keep (torch.Tensor, optional): ``(B, L_keep)`` indices of
                the visible tokens (row-major 16x16 patches). None runs the
                dense path.

        Returns:
            tuple[torch.Tensor]: One output per ``out_indices`` entry: NCHW
            maps (dense path) or token-layout tensors (masked path).
        """
        if ids_keep is None:
            outs = self.forward_dense(x, stages=self.out_indices)
        else:
            outs = self.forward_masked(x, ids_keep)
        return tuple(outs[i] for i in self.out_indices)

    # -------------------------------------------------------------- lr decay
    def get_layer_depth(self, param_name: str, prefix: str = ''):
        """Layer depth of a parameter, for layer-wise lr decay.

        The patch and position embeddings are layer 0; the j-th block over
        all stages (merges not counted) is layer j + 1 and a merge shares
        the depth of the block before it; everything else (final norm,
        parameters outside the backbone) gets the top depth
        ``num_layers - 1``. With ``num_layers = sum(depths) + 2``, the decay
        factor ``d ** (num_layers - 1 - depth)`` gives the embeddings
        ``d ** (sum(depths) + 1)``, the last block ``d`` and the neck and
        heads 1.

        Args:
            param_name (str): Parameter name.
            prefix (str): Prefix of backbone parameters, e.g.
                ``'backbone.'``. Defaults to ''.

        Returns:
            tuple[int, int]: ``(layer_depth, num_layers)``.
        """
        num_layers = sum(self.depths) + 2
        if not param_name.startswith(prefix):
            return num_layers - 1, num_layers
        name = param_name[len(prefix):]
        offsets = [0, self.depths[0], self.depths[0] + self.depths[1]]
        if name in ('pos_embed', 'mask_token') or \
                name.startswith('patch_embed'):
            depth = 0
        elif name.startswith('stages.'):
            s, b = (int(v) for v in name.split('.')[1:3])
            depth = offsets[s] + b + 1
        elif name.startswith('merges.'):
            s = int(name.split('.')[1])
            depth = offsets[s] + self.depths[s]
        else:
            depth = num_layers - 1
        return depth, num_layers
