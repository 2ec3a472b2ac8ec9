"""Pixel reconstruction head of iTPN pre-training."""
from typing import Sequence, Tuple, Union

import torch
from mmpretrain.models.heads import MAEPretrainHead

from mmitpn.registry import MODELS
from ..layers import TokenDecoder, gather_patches, masked_patch_ids


@MODELS.register_module()
class ITPNPixelHead(MAEPretrainHead):
    """Multi-level pixel decoder and normalised-pixel loss of iTPN.

    The three pyramid levels (strides 4, 8, 16) of the visible tokens are
    embedded, summed per patch, completed with mask tokens and decoded by
    a transformer into ``patch_size**2 * 3`` pixels per patch (official
    ``itpn_pixel`` decoder). Target construction and the masked loss are
    mmpretrain's :class:`MAEPretrainHead` (patchify, per-patch mean / var
    normalisation, MSE averaged over masked patches).

    Args:
        fpn_channels (int): Pyramid width F. Defaults to 256.
        embed_dims (int): Decoder width D. Defaults to 512.
        depth (int): Decoder attention blocks. Defaults to 8.
        num_heads (int): Decoder heads. Defaults to 16.
        mlp_ratio (float): Decoder MLP ratio. Defaults to 4.
        img_size (int | tuple[int, int]): Pre-training image size (the grid
            of the decoder position embedding). Defaults to 224.
        patch_size (int): Patch size. Defaults to 16.
        img_channels (int): Image channels. Defaults to 3.
        norm_pix (bool): Normalise each target patch. Defaults to True.
        loss (dict): Masked reconstruction loss. Defaults to
            ``dict(type='mmpretrain.PixelReconstructionLoss',
            criterion='L2')``.
        norm_eps (float): LayerNorm epsilon. Defaults to 1e-6.
        predict_masked_only (bool): In :meth:`loss`, compute the last
            decoder block, the norm and the prediction layer for the masked
            patches only (the loss reads nothing else); same loss, less
            work. Falls back to all patches when images have different
            numbers of masked patches. Defaults to True.
    """

    def __init__(self,
                 fpn_channels: int = 256,
                 embed_dims: int = 512,
                 depth: int = 8,
                 num_heads: int = 16,
                 mlp_ratio: float = 4.,
                 img_size: Union[int, Tuple[int, int]] = 224,
                 patch_size: int = 16,
                 img_channels: int = 3,
                 norm_pix: bool = True,
                 loss: dict = dict(
                     type='mmpretrain.PixelReconstructionLoss',
                     criterion='L2'),
                 norm_eps: float = 1e-6,
                 predict_masked_only: bool = True) -> None:
        super().__init__(loss, norm_pix, patch_size, img_channels)
        self.predict_masked_only = predict_masked_only
        img_size = (img_size, img_size) if isinstance(img_size, int) else \
            tuple(img_size)
        self.decoder = TokenDecoder(
            fpn_channels, (4, 2, 1),
            embed_dims,
            patch_size**2 * img_channels,
            depth=depth,
            num_heads=num_heads,
            mlp_ratio=mlp_ratio,
            grid_size=(img_size[0] // patch_size, img_size[1] // patch_size),
            norm_eps=norm_eps)

    def predict(self, pyramid: Sequence[torch.Tensor],
                ids_restore: torch.Tensor) -> torch.Tensor:
        """Pixels of every patch ``(B, N, p*p*3)`` from the pyramid tokens
        (finest first) of the visible patches."""
        return self.decoder(pyramid, ids_restore)

    def loss(self, pyramid: Sequence[torch.Tensor], ids_restore: torch.Tensor,
             img: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Normalised-pixel MSE over the masked patches.

        Args:
            pyramid (Sequence[torch.Tensor]): Pyramid tokens, finest first.
            ids_restore (torch.Tensor): ``(B, N)`` unshuffle indices.
            img (torch.Tensor): Input images ``(B, 3, H, W)``.
            mask (torch.Tensor): ``(B, N)``, 1 for masked patches.
        """
        ids_out = masked_patch_ids(mask) if self.predict_masked_only and \
            self.decoder.blocks else None
        if ids_out is None:
            return super().loss(self.predict(pyramid, ids_restore), img,
                                mask)
        pred = self.decoder(pyramid, ids_restore, ids_out)
        target = gather_patches(self.construct_target(img), ids_out)
        return self.loss_module(pred, target, mask.new_ones(ids_out.shape))
