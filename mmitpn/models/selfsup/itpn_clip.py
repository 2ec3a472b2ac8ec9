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

    The teacher is a registered, frozen submodule (``requires_grad=False``):
    ``.to()`` moves it, DDP does not synchronise it, and under FSDP it is an
    ignored module that every rank keeps whole
    (:class:`~mmitpn.engine.strategies.ResumableFSDPStrategy`). It stays
    out of the model's state dict (:class:`CLIPTeacher` drops its keys):
    each run rebuilds it from its local file.

    Paper: iTPN (Tian et al., CVPR 2023), arXiv 2211.12735; official code
    github.com/sunsmarterjie/iTPN (``itpn_clip``).

    Args:
        backbone (dict): :class:`HiViTBackbone` config with
            ``use_mask_token=True`` (and, officially, ``rpe_type='swin'``,
            ``layer_scale_init_value=0.1``, ``layer_scale_stages=(0, 1,
            2)``, ``pos_embed_type='learnable'``,
            ``pos_embed_init='trunc_normal'``).
        neck (dict): :class:`ITPNPyramid` config.
        head (dict): :class:`CLIPDistillHead` on the pyramid.
        teacher (dict): :class:`CLIPTeacher` config (local weight file).
        side_head (dict, optional): :class:`CLIPDistillHead` on stage 3.
            Defaults to None.
        side_block (int, optional): Stage-3 block feeding the side head;
            defaults to ``int(0.75 * depth)`` as officially.
        mfm_head (dict, optional): :class:`ITPNFeatureHead` with
            ``target_sizes=(1, 1, 1)`` and the CLIP width as every target
            width; its decoders' own mask tokens are frozen (unused, since
            every patch is present). Defaults to None.
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
        self.teacher = MODELS.build(teacher)
        if any(p.requires_grad for p in self.teacher.parameters()):
            raise ValueError(f'The teacher {type(self.teacher).__name__} '
                             f'has trainable parameters; ITPNCLIP needs a '
                             f'frozen teacher such as CLIPTeacher.')
        self.side_head = MODELS.build(side_head) if side_head else None
        depth = self.backbone.depths[-1]
        self.side_block = int(0.75 * depth) if side_block is None else \
            side_block
        if not 0 <= self.side_block < depth:
            raise ValueError(f'side_block {self.side_block} is not a stage-3 '
                             f'block (0..{depth - 1}).')
        self.mfm_head = MODELS.build(mfm_head) if mfm_head else None
        if self.mfm_head is not None:
            # Every patch reaches the MFM decoders (masked ones carry the
            # backbone's mask token), so their own mask tokens are never
            # used; frozen, DDP needs no find_unused_parameters for them.
            for name, p in self.mfm_head.named_parameters():
                if name.split('.')[-1] == 'mask_token':
                    p.requires_grad_(False)
        self._check_target_dims()

    def _check_target_dims(self) -> None:
        """Fail at build time when a head does not predict the teacher's
        width (ViT-B/16 gives 512-d tokens, ViT-L/14 768-d)."""
        E = self.teacher.embed_dims
        hint = (f'the CLIP teacher gives {E}-d tokens (512 for ViT-B/16, '
                f'768 for ViT-L/14)')
        for name in ('head', 'side_head'):
            head = getattr(self, name)
            if head is not None and head.target_dims != E:
                raise ValueError(f'{name}.target_dims is {head.target_dims} '
                                 f'but {hint}; set target_dims={E}.')
        if self.mfm_head is not None and (
                any(c != E for c in self.mfm_head.target_channels)
                or any(k != 1 for k in self.mfm_head.target_sizes)):
            raise ValueError(
                f'mfm_head predicts target_channels='
                f'{self.mfm_head.target_channels}, target_sizes='
                f'{self.mfm_head.target_sizes}, but {hint}, one per patch; '
                f'set target_channels=({E}, {E}, {E}), '
                f'target_sizes=(1, 1, 1).')

    def extract_feat(self, inputs: torch.Tensor):
        """Dense pyramid of full images.

        Args:
            inputs (torch.Tensor): ``(B, 3, H, W)`` normalised images.

        Returns:
            tuple[torch.Tensor]: The pyramid maps, finest first.
        """
        return self.neck(self.backbone(inputs))

    def loss(self, inputs, data_samples: List[DataSample],
             **kwargs) -> Dict[str, torch.Tensor]:
        """Distillation (and MFM) losses of a batch.

        Args:
            inputs (torch.Tensor | list[torch.Tensor]): Normalised images
                ``(B, 3, H, W)`` (the first view when a list).
            data_samples (list[DataSample]): One per image, each with a
                ``mask`` of ``(H/16, W/16)`` (1 = masked) as packed by
                ``PackInputs`` after ``BEiTMaskGenerator``.

        Returns:
            dict[str, torch.Tensor]: ``loss_clip``, ``loss_clip_side``
            (with a side head) and ``loss_mfm_s{4,8,16}`` (with an MFM
            head).
        """
        img = inputs[0] if isinstance(inputs, (list, tuple)) else inputs
        if not data_samples or 'mask' not in data_samples[0]:
            raise ValueError(
                'ITPNCLIP needs block masks from the pipeline: add '
                "dict(type='BEiTMaskGenerator', input_size=14, "
                'num_masking_patches=75, min_num_patches=16) before '
                "PackInputs (which packs 'mask' by itself).")
        # PackInputs(algorithm_keys=['mask']) leaves the numpy array
        mask = torch.stack([torch.as_tensor(ds.mask) for ds in data_samples])
        mask = mask.to(img.device).flatten(1).float()
        grid = (img.shape[-2] // self.backbone.patch_size,
                img.shape[-1] // self.backbone.patch_size)
        if mask.shape[1] != grid[0] * grid[1]:
            raise ValueError(
                f'Masks have {mask.shape[1]} entries per image but '
                f'{tuple(img.shape[-2:])} images have {grid[0]}x{grid[1]} '
                f'patches; set BEiTMaskGenerator(input_size={grid[0]}).')
        target = self.teacher(img)
        if target.shape[1] != mask.shape[1]:
            raise ValueError(
                f'The CLIP teacher gives {target.shape[1]} tokens per image '
                f'but the student has {mask.shape[1]} patches: its input '
                f'resolution {self.teacher.input_resolution} must give the '
                f'same grid; set the teacher\'s img_size (e.g. '
                f'img_size=196 for ViT-L/14 with a 224 student, as the '
                f'official itpn_clip).')
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
