"""iTPN integral pre-training: pixel MIM + masked feature modeling."""
from typing import Dict, List, Optional, Tuple

import torch
from mmengine.dist import get_rank
from mmengine.logging import MessageHub
from mmpretrain.models.selfsup import BaseSelfSupervisor
from mmpretrain.structures import DataSample

from mmitpn.registry import MODELS
from ..layers import dense_to_tokens


@MODELS.register_module()
class ITPNMIM(BaseSelfSupervisor):
    """iTPN pre-training of a HiViT backbone **and** its feature pyramid.

    Masked patches are dropped from the encoder; the pyramid of the visible
    tokens feeds (a) the pixel head, which reconstructs normalised pixels of
    the masked patches (the official ``itpn_pixel`` model), and (b) the
    optional MFM head, where each pyramid level reconstructs the feature of
    the same stride that an exponential-moving-average copy of the backbone
    (the *teacher*, updated by :class:`EMATeacherHook`) computes on the
    unmasked image. ``mfm_head=None`` (or all MFM weights 0) is exactly the
    official pixel model, and no teacher is built or run.

    Paper: iTPN (Tian et al., CVPR 2023), arXiv 2211.12735.

    Args:
        backbone (dict): :class:`HiViTBackbone` config (``out_indices``
            (0, 1, 2)).
        neck (dict): :class:`ITPNPyramid` config.
        head (dict): :class:`ITPNPixelHead` config.
        mfm_head (dict, optional): :class:`ITPNFeatureHead` config; None
            disables MFM. Defaults to None.
        teacher (dict): Averaged-model config for the teacher, built with
            ``model=backbone``. Defaults to mmpretrain's ``CosineEMA``
            (momentum of the new weights cosine-annealed from 0.004 to 0,
            i.e. teacher momentum 0.996 -> 1, over the run).
        mask_ratio (float): Fraction of masked patches. Defaults to 0.75.
        mask_seed (int): Seed of the mask stream. During training, masks
            are a function of (mask_seed, iteration, rank), so a resumed run
            draws the masks it would have drawn. Defaults to 0.
        teacher_dtype (str, optional): ``'bf16'`` or ``'fp16'`` runs the
            teacher forward under ``torch.autocast`` of that dtype (it is
            always run without autograd); the MFM head normalises and
            compares the targets in fp32. Much cheaper on GPUs with bf16 /
            fp16 matrix units; slower on CPUs without bf16 instructions
            (e.g. AVX2-only ones). None
            (or ``'fp32'``) keeps the teacher in the model's precision,
            exact. Defaults to None.
        data_preprocessor (dict, optional): Defaults to mmpretrain's
            ``SelfSupDataPreprocessor``.
        init_cfg (dict, optional): Initialisation config. Defaults to None.
    """
    teacher_dtypes = {None: None, 'fp32': None, 'bf16': torch.bfloat16,
                      'fp16': torch.float16}

    def __init__(self,
                 backbone: dict,
                 neck: dict,
                 head: dict,
                 mfm_head: Optional[dict] = None,
                 teacher: dict = dict(
                     type='mmpretrain.CosineEMA',
                     momentum=0.004,
                     end_momentum=0.),
                 mask_ratio: float = 0.75,
                 mask_seed: int = 0,
                 teacher_dtype: Optional[str] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(
            backbone=backbone,
            neck=neck,
            head=head,
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg)
        if not 0 < mask_ratio < 1:
            raise ValueError(f'mask_ratio must be in (0, 1), got '
                             f'{mask_ratio}.')
        self.mask_ratio = mask_ratio
        self.mask_seed = mask_seed
        if teacher_dtype not in self.teacher_dtypes:
            raise ValueError(f'teacher_dtype must be one of '
                             f'{list(self.teacher_dtypes)}, got '
                             f'{teacher_dtype!r}.')
        self.teacher_dtype = self.teacher_dtypes[teacher_dtype]
        self.mfm_head = MODELS.build(mfm_head) if mfm_head else None
        self.teacher = None
        if self.mfm_head is not None and self.mfm_head.active:
            self.teacher = MODELS.build(
                teacher, default_args=dict(model=self.backbone))
            self.teacher.module.eval()

    def train(self, mode: bool = True):
        super().train(mode)
        if self.teacher is not None:
            self.teacher.module.eval()  # no drop path in the teacher
        return self

    # ----------------------------------------------------------- masking
    def _mask_rng(self, device) -> Optional[torch.Generator]:
        it = MessageHub.get_current_instance().get_info('iter')
        if it is None or not self.training:
            return None
        gen = torch.Generator(device=device)
        gen.manual_seed((self.mask_seed * 1000003 + int(it)) * 4099 +
                        get_rank())
        return gen

    def random_masking(self, batch_size: int, num_patches: int,
                       device) -> Tuple[torch.Tensor, ...]:
        """MAE random masking.

        Args:
            batch_size (int): B.
            num_patches (int): N.
            device (torch.device): Where the indices live.

        Returns:
            tuple[torch.Tensor]: ``ids_keep (B, L)``, ``ids_restore (B, N)``
            and ``mask (B, N)`` (1 = masked).
        """
        keep = int(num_patches * (1 - self.mask_ratio))
        noise = torch.rand(
            batch_size, num_patches, device=device,
            generator=self._mask_rng(device))
        ids_shuffle = noise.argsort(dim=1)
        ids_restore = ids_shuffle.argsort(dim=1)
        mask = torch.ones(batch_size, num_patches, device=device)
        mask[:, :keep] = 0
        return ids_shuffle[:, :keep], ids_restore, torch.gather(
            mask, 1, ids_restore)

    @staticmethod
    def ids_from_mask(mask: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """``ids_keep``, ``ids_restore`` and the float mask from a given
        ``(B, N)`` boolean mask (same number of visible patches per image),
        e.g. one made by an mmpretrain mask generator in the pipeline."""
        mask = mask.flatten(1).bool()
        keep = (~mask).sum(1)
        if not torch.all(keep == keep[0]):
            raise ValueError('Every image of a batch needs the same number '
                             f'of visible patches, got {keep.tolist()}.')
        ids_shuffle = mask.to(torch.uint8).argsort(dim=1, stable=True)
        ids_restore = ids_shuffle.argsort(dim=1)
        return ids_shuffle[:, :int(keep[0])], ids_restore, mask.float()

    # ----------------------------------------------------------- forward
    def extract_feat(self, inputs: torch.Tensor) -> Tuple[torch.Tensor]:
        """Dense pyramid of full images (what downstream tasks use)."""
        return self.neck(self.backbone(inputs))

    @torch.no_grad()
    def teacher_targets(self, img: torch.Tensor) -> List[torch.Tensor]:
        """Teacher backbone stages on the unmasked image, token layout
        (run without autograd, under autocast if ``teacher_dtype``)."""
        if self.teacher_dtype is None:
            feats = self.teacher.module(img)
        else:
            with torch.autocast(img.device.type, dtype=self.teacher_dtype):
                feats = self.teacher.module(img)
        return [
            dense_to_tokens(f, k) for f, k in zip(feats, (4, 2, 1))
        ]

    def forward_mim(
        self, img: torch.Tensor, ids_keep: torch.Tensor,
        ids_restore: torch.Tensor, mask: torch.Tensor
    ) -> Dict[str, torch.Tensor]:
        """Losses for given masks (used by :meth:`loss` and by tests)."""
        pyramid = self.neck(self.backbone(img, ids_keep=ids_keep))
        losses = dict(
            loss_pixel=self.head.loss(pyramid, ids_restore, img, mask))
        if self.teacher is not None:
            targets = self.teacher_targets(img)
            losses.update(
                self.mfm_head.loss(pyramid, ids_restore, targets, mask))
        return losses

    def loss(self, inputs, data_samples: List[DataSample],
             **kwargs) -> Dict[str, torch.Tensor]:
        """Masks come from ``data_samples[i].mask`` when the pipeline made
        them, else from :meth:`random_masking`."""
        img = inputs[0] if isinstance(inputs, (list, tuple)) else inputs
        if data_samples and 'mask' in data_samples[0]:
            mask = torch.stack(
                [torch.as_tensor(ds.mask) for ds in data_samples]).to(
                    img.device)
            ids_keep, ids_restore, mask = self.ids_from_mask(mask)
        else:
            grid = (img.shape[-2] // self.backbone.patch_size,
                    img.shape[-1] // self.backbone.patch_size)
            ids_keep, ids_restore, mask = self.random_masking(
                img.shape[0], grid[0] * grid[1], img.device)
        return self.forward_mim(img, ids_keep, ids_restore, mask)
