"""Masked feature modeling (MFM) head of iTPN."""
from typing import Dict, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule

from mmitpn.registry import MODELS
from ..layers import TokenDecoder, gather_patches, masked_patch_ids


@MODELS.register_module()
class ITPNFeatureHead(BaseModule):
    """Each pyramid level reconstructs a teacher feature of its stride.

    For a level with k x k sub-tokens per patch, a light decoder (one
    :class:`TokenDecoder`: embed, mask tokens, position embedding,
    ``depth`` attention blocks, Linear) predicts the teacher's ``k x k x C``
    feature of every patch; the loss is taken on masked patches only. The
    target is normalised per sub-token by a LayerNorm without affine
    parameters (as the CLIP-target variant does), which keeps the scale of
    the three losses comparable and stops a collapsing teacher from making
    the task trivial.

    The iTPN paper describes MFM (teacher = moving-average backbone fed the
    unmasked image, one reconstruction per pyramid level) but its code was
    never released; the decoder, loss and normalisation here are mmitpn's
    choices, all exposed as arguments.

    Args:
        fpn_channels (int): Pyramid width F. Defaults to 256.
        target_channels (Sequence[int]): Teacher widths at strides 4, 8, 16.
            Defaults to (128, 256, 512).
        level_sizes (Sequence[int]): Sub-tokens per side at those strides.
            Defaults to (4, 2, 1).
        target_sizes (Sequence[int], optional): Sub-tokens per side of each
            target (e.g. (1, 1, 1) when every level predicts one CLIP vector
            per patch). Defaults to ``level_sizes``.
        embed_dims (int): Decoder width. Defaults to 256.
        depth (int): Attention blocks per level decoder. Defaults to 2.
        num_heads (int): Their heads. Defaults to 8.
        img_size (int | tuple[int, int]): Pre-training image size.
            Defaults to 224.
        patch_size (int): Patch size. Defaults to 16.
        criterion (str): ``'l2'``, ``'smooth_l1'`` or ``'cosine'``
            (1 - cosine similarity per sub-token). Defaults to ``'l2'``.
        loss_weights (Sequence[float]): Weight of each level's loss (strides
            4, 8, 16). Defaults to (1., 1., 1.).
        norm_target (bool): Non-affine LayerNorm of the target.
            Defaults to True.
        norm_eps (float): LayerNorm epsilon. Defaults to 1e-6.
        predict_masked_only (bool): Compute the last decoder block, norm
            and prediction for the masked patches only (the loss reads
            nothing else); same loss, less work. Falls back to all patches
            when images have different numbers of masked patches.
            Defaults to True.
        init_cfg (dict, optional): Initialisation config. Defaults to None.
    """
    criteria = ('l2', 'smooth_l1', 'cosine')

    def __init__(self,
                 fpn_channels: int = 256,
                 target_channels: Sequence[int] = (128, 256, 512),
                 level_sizes: Sequence[int] = (4, 2, 1),
                 target_sizes: Optional[Sequence[int]] = None,
                 embed_dims: int = 256,
                 depth: int = 2,
                 num_heads: int = 8,
                 img_size: Union[int, Tuple[int, int]] = 224,
                 patch_size: int = 16,
                 criterion: str = 'l2',
                 loss_weights: Sequence[float] = (1., 1., 1.),
                 norm_target: bool = True,
                 norm_eps: float = 1e-6,
                 predict_masked_only: bool = True,
                 init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.predict_masked_only = predict_masked_only
        if criterion not in self.criteria:
            raise ValueError(f'MFM criterion must be one of {self.criteria}, '
                             f'got {criterion!r}.')
        if not len(target_channels) == len(level_sizes) == len(loss_weights):
            raise ValueError('target_channels, level_sizes and loss_weights '
                             'need one entry per pyramid level.')
        img_size = (img_size, img_size) if isinstance(img_size, int) else \
            tuple(img_size)
        grid = (img_size[0] // patch_size, img_size[1] // patch_size)
        self.criterion = criterion
        self.level_sizes = tuple(level_sizes)
        self.target_sizes = tuple(target_sizes or level_sizes)
        self.target_channels = tuple(target_channels)
        self.loss_weights = tuple(float(w) for w in loss_weights)
        self.norm_target = norm_target
        self.strides = tuple(patch_size // k for k in self.level_sizes)
        self.decoders = torch.nn.ModuleList([
            TokenDecoder(
                fpn_channels, (k, ),
                embed_dims,
                t * t * c,
                depth=depth,
                num_heads=num_heads,
                grid_size=grid,
                norm_eps=norm_eps) for k, t, c in zip(
                    self.level_sizes, self.target_sizes, self.target_channels)
        ])

    @property
    def active(self) -> bool:
        """Whether any level has a non-zero weight (else no teacher pass)."""
        return any(w != 0 for w in self.loss_weights)

    def _criterion(self, pred: torch.Tensor,
                   target: torch.Tensor) -> torch.Tensor:
        """Per-patch loss ``(B, N)`` of ``(B, N, k*k, C)`` tensors."""
        if self.criterion == 'cosine':
            return 1 - F.cosine_similarity(pred, target, dim=-1).mean(-1)
        if self.criterion == 'smooth_l1':
            err = F.smooth_l1_loss(pred, target, reduction='none')
        else:
            err = (pred - target)**2
        return err.flatten(2).mean(-1)

    def loss(self, pyramid: Sequence[torch.Tensor], ids_restore: torch.Tensor,
             targets: Sequence[torch.Tensor],
             mask: torch.Tensor) -> Dict[str, torch.Tensor]:
        """MFM losses, one per level, named ``loss_mfm_s{stride}``.

        Args:
            pyramid (Sequence[torch.Tensor]): Student pyramid tokens of the
                visible patches, ``(B, L, k, k, F)``, finest first.
            ids_restore (torch.Tensor, optional): ``(B, N)`` unshuffle
                indices; None when ``pyramid`` holds every patch.
            targets (Sequence[torch.Tensor]): Teacher features of all
                patches, token layout ``(B, N, t, t, C)``, finest first.
            mask (torch.Tensor): ``(B, N)``, 1 for masked patches.
        """
        losses = dict()
        denom = mask.sum().clamp(min=1)
        ids_out = masked_patch_ids(mask) if self.predict_masked_only and \
            all(len(d.blocks) for d in self.decoders) else None
        for lvl, tgt, dec, k, c, w, s in zip(pyramid, targets, self.decoders,
                                             self.target_sizes,
                                             self.target_channels,
                                             self.loss_weights, self.strides):
            if tgt.shape[-1] != c or tgt.shape[2] != k:
                raise ValueError(
                    f'MFM target at stride {s} has shape '
                    f'{tuple(tgt.shape)}, expected (B, N, {k}, {k}, {c}); '
                    f'set target_channels to the teacher widths.')
            if w == 0:
                continue
            B, N = tgt.shape[:2]
            if ids_out is None:
                tgt = tgt.reshape(B, N, k * k, c).float()
                pred = dec([lvl], ids_restore).view(B, N, k * k, c).float()
                weight = mask
            else:
                M = ids_out.shape[1]
                tgt = gather_patches(tgt, ids_out).reshape(B, M, k * k,
                                                           c).float()
                pred = dec([lvl], ids_restore,
                           ids_out).view(B, M, k * k, c).float()
                weight = 1.
            if self.norm_target:
                tgt = F.layer_norm(tgt, (c, ), eps=1e-6)
            per_patch = self._criterion(pred, tgt)
            losses[f'loss_mfm_s{s}'] = w * (per_patch * weight).sum() / denom
        return losses
