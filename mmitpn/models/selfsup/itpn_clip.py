"""iTPN pre-training with a frozen CLIP teacher."""
from typing import Dict, List, Optional

import torch
from mmpretrain.models.selfsup import BaseSelfSupervisor
from mmpretrain.structures import DataSample

from mmitpn.registry import MODELS
from ..layers import dense_to_tokens


@MODELS.register_module()
class ITPNCLIP(BaseSelfSupervisor):
    """CLIP-target iTPN (official ``itpn_clip``), plus optional MFM.

    BEiT-style block masks come from the data pipeline (mmpretrain's
    ``BEiTMaskGenerator`` packed into ``data_samples[i].mask``). Masked
    stage-3 inputs are replaced by the backbone's mask token; the encoder
    sees every token, and stages 1, 2 see the whole image. Losses:

    - ``loss_clip``: the pyramid head regresses the CLIP patch tokens from
      the summed pyramid levels (all tokens, smooth-L1);
    - ``loss_clip_side``: the side head does the same from the stage-3
      tokens after block ``side_block``;
    - ``loss_mfm_s*`` (with ``mfm_head``): each pyramid level alone
      reconstructs the CLIP token of the masked patches (MFM on the
      pyramid with CLIP as the teacher).

    Args:
        backbone (dict): :class:`HiViTBackbone` config with
            ``use_mask_token=True`` (and, officially, ``use_rpe=True``,
            ``layer_scale_init_value=0.1``).
        neck (dict): :class:`ITPNPyramid` config.
        head (dict): :class:`CLIPDistillHead` on the pyramid.
        teacher (dict): :class:`CLIPTeacher` config (local weight file).
        side_head (dict, optional): :class:`CLIPDistillHead` on stage 3.
            Defaults to None.
        side_block (int, optional): Stage-3 block feeding the side head;
            defaults to ``int(0.75 * depth)`` as officially.
        mfm_head (dict, optional): :class:`ITPNFeatureHead` with
            ``target_sizes=(1, 1, 1)`` and the CLIP width as every target
            width. Defaults to None.
        data_preprocessor (dict, optional): Defaults to mmpretrain's
            ``SelfSupDataPreprocessor``.
        init_cfg (dict, optional): Initialisation config. Defaults to None.
    """

    def __init__(self,
                 backbone: dict,
                 neck: dict,
                 head: dict,
                 teacher: dict,
                 side_head: Optional[dict] = None,
                 side_block: Optional[int] = None,
                 mfm_head: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(
            backbone=backbone,
            neck=neck,
            head=head,
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg)
        if self.backbone.mask_token is None:
            raise ValueError('ITPNCLIP masks with a mask token: build the '
                             'backbone with use_mask_token=True.')
        # Kept out of the module tree: it is frozen, rebuilt from its local
        # file, and would add hundreds of MB to every checkpoint.
        self._teacher = (MODELS.build(teacher), )
        self.side_head = MODELS.build(side_head) if side_head else None
        depth = self.backbone.depths[-1]
        self.side_block = int(0.75 * depth) if side_block is None else \
            side_block
        if not 0 <= self.side_block < depth:
            raise ValueError(f'side_block {self.side_block} is not a stage-3 '
                             f'block (0..{depth - 1}).')
        self.mfm_head = MODELS.build(mfm_head) if mfm_head else None

    @property
    def teacher(self):
        """The frozen CLIP teacher (on the model's device)."""
        teacher = self._teacher[0]
        device = self.backbone.pos_embed.device \
            if self.backbone.pos_embed is not None else \
            self.backbone.mask_token.device
        if teacher.scale.device != device:
            teacher.to(device)
        return teacher

    def extract_feat(self, inputs: torch.Tensor):
        """Dense pyramid of full images."""
        return self.neck(self.backbone(inputs))

    def loss(self, inputs, data_samples: List[DataSample],
             **kwargs) -> Dict[str, torch.Tensor]:
        img = inputs[0] if isinstance(inputs, (list, tuple)) else inputs
        if not data_samples or 'mask' not in data_samples[0]:
            raise ValueError(
                'ITPNCLIP needs block masks from the pipeline: add '
                "dict(type='BEiTMaskGenerator', input_size=14, "
                'num_masking_patches=75, min_num_patches=16) and '
                "PackInputs(algorithm_keys=['mask']).")
        mask = torch.stack([ds.mask for ds in data_samples]).to(
            img.device).flatten(1).float()
        target = self.teacher(img)
        feats, side = self.backbone.forward_dense(
            img, mask=mask, return_block=self.side_block)
        pyramid = self.neck(feats)[:3]
        levels = [dense_to_tokens(p, k) for p, k in zip(pyramid, (4, 2, 1))]
        losses = dict(loss_clip=self.head.loss(levels, target))
        if self.side_head is not None:
            B, N, C = side.shape
            losses['loss_clip_side'] = self.side_head.loss(
                [side.view(B, N, 1, 1, C)], target)
        if self.mfm_head is not None:
            B, N, E = target.shape
            tgt = target.view(B, N, 1, 1, E)
            losses.update(
                self.mfm_head.loss(levels, None, [tgt] * len(levels), mask))
        return losses
