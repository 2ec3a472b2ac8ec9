"""Feature-distillation head of the CLIP-target iTPN variant."""
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule

from mmitpn.registry import MODELS
from ..layers import TokenDecoder


@MODELS.register_module()
class CLIPDistillHead(BaseModule):
    """Regress normalised CLIP patch tokens from token-layout features.

    Official ``itpn_clip`` heads are both instances: (a) the pyramid head,
    levels of widths F with (4, 2, 1) sub-tokens embedded to
    ``E, E/4, E/16``, flattened, summed, LayerNorm, Linear to the CLIP width
    (``depth=0``); (b) the side head on an intermediate stage-3 output
    (``level_sizes=(1,)``, ``depth=2`` attention blocks). The target is
    LayerNorm-ed without affine parameters; the loss is smooth-L1 over all
    tokens, as in the official code.

    Args:
        in_channels (int | Sequence[int]): Width of each input level.
        level_sizes (Sequence[int]): Sub-tokens per side of each level.
        embed_dims (int): Head width E.
        target_dims (int): CLIP width (512 for ViT-B/16, 768 for L/14).
        depth (int): Attention blocks. Defaults to 0.
        num_heads (int): Their heads. Defaults to 8.
        beta (float): Smooth-L1 threshold. Defaults to 1.
        loss_weight (float): Weight of the loss. Defaults to 1.
        embed_inputs (bool): Embed the input levels (LayerNorm + Linear).
            The official side head has no input embedding: False (one
            level of width ``embed_dims``). Defaults to True.
        block_cfg (dict, optional): Extra :class:`HiViTBlock` arguments of
            the attention blocks; the official side head's blocks have
            layer scale, a Swin table and torch's LayerNorm eps:
            ``dict(layer_scale_init_value=0.1, rpe_size=(14, 14),
            norm_eps=1e-5)``. Defaults to None.
        init_cfg (dict, optional): Initialisation config. Defaults to None.
    """

    def __init__(self,
                 in_channels,
                 level_sizes: Sequence[int],
                 embed_dims: int,
                 target_dims: int,
                 depth: int = 0,
                 num_heads: int = 8,
                 beta: float = 1.,
                 loss_weight: float = 1.,
                 embed_inputs: bool = True,
                 block_cfg: Optional[dict] = None,
                 init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.decoder = TokenDecoder(
            in_channels,
            level_sizes,
            embed_dims,
            target_dims,
            depth=depth,
            num_heads=num_heads,
            use_mask_token=False,
            embed_inputs=embed_inputs,
            block_cfg=block_cfg)
        self.target_dims = target_dims
        self.beta = beta
        self.loss_weight = loss_weight

    def loss(self, levels: Sequence[torch.Tensor],
             target: torch.Tensor) -> torch.Tensor:
        """Smooth-L1 of every token.

        Args:
            levels (Sequence[torch.Tensor]): ``(B, N, k, k, C)`` inputs.
            target (torch.Tensor): ``(B, N, E)`` CLIP tokens.
        """
        if target.shape[-1] != self.target_dims:
            raise ValueError(
                f'The CLIP teacher gives {target.shape[-1]}-d targets but '
                f'the head predicts {self.target_dims}-d ones; set '
                f'target_dims={target.shape[-1]} (512 for ViT-B/16, 768 for '
                f'ViT-L/14).')
        pred = self.decoder(levels).float()
        # the official target norm is nn.LayerNorm(elementwise_affine=False)
        # with torch's default eps (itpn_clip/clip/create_clip.py:16)
        target = F.layer_norm(target.float(), (self.target_dims, ), eps=1e-5)
        return self.loss_weight * F.smooth_l1_loss(
            pred, target, beta=self.beta)
