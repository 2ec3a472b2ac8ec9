"""iTPN integral pre-training: pixel MIM + masked feature modeling."""
from typing import Dict, List, NamedTuple, Optional, Tuple, Union

import torch
from mmengine.dist import get_rank
from mmengine.logging import MessageHub
from mmpretrain.models.selfsup import BaseSelfSupervisor
from mmpretrain.structures import DataSample

from mmitpn.registry import MODELS
from ..layers import dense_to_tokens


class RandomMasks(NamedTuple):
    """The masks of one batch, as :meth:`ITPNMIM.random_masking` returns.

    Attributes:
        ids_keep (torch.Tensor): ``(B, L)`` indices of the visible patches,
            in the order the encoder sees them.
        ids_restore (torch.Tensor): ``(B, N)`` unshuffle indices: where
            each patch is in ``ids_keep`` followed by the masked patches.
        mask (torch.Tensor): ``(B, N)`` float, 1 for masked patches.
    """
    ids_keep: torch.Tensor
    ids_restore: torch.Tensor
    mask: torch.Tensor


class Reconstruction(NamedTuple):
    """Pictures of :meth:`ITPNMIM.reconstruct`, each ``(B, 3, H, W)`` in
    the normalised image space.

    Attributes:
        masked (torch.Tensor): The input with the masked patches zeroed.
        reconstruction (torch.Tensor): Every patch as predicted.
        pasted (torch.Tensor): The prediction with the visible patches of
            the input pasted back.
    """
    masked: torch.Tensor
    reconstruction: torch.Tensor
    pasted: torch.Tensor


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

    The teacher is a registered submodule without trainable parameters:
    ``.to()`` moves it, DDP does not synchronise it, under FSDP it is an
    ignored module every rank keeps whole
    (:class:`~mmitpn.engine.strategies.ResumableFSDPStrategy`), and it is
    part of the state dict (with its step counter), so that a resumed run
    continues exactly.

    Masks: :meth:`random_masking` (MAE's, with an optional generator;
    during training a function of (``mask_seed``, iteration, rank)) or
    given by the pipeline (:meth:`ids_from_mask`); :meth:`reconstruct`
    gives the pictures of a mask.

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
        """Set the training mode; the teacher stays in eval mode.

        Args:
            mode (bool): Training (True) or evaluation mode.
                Defaults to True.

        Returns:
            ITPNMIM: self.
        """
        super().train(mode)
        if self.teacher is not None:
            self.teacher.module.eval()  # no drop path in the teacher
        return self

    # ----------------------------------------------------------- masking
    def mask_generator(self, device=None) -> Optional[torch.Generator]:
        """The generator of this training iteration's masks.

        During training (``self.training`` and an ``iter`` in the message
        hub) it is seeded with ``(mask_seed * 1000003 + iter) * 4099 +
        rank``, so the masks are a function of (seed, iteration, rank) and
        a resumed run draws the masks it would have drawn.

        Args:
            device (torch.device | str, optional): Device of the generator.
                Defaults to None (CPU).

        Returns:
            torch.Generator | None: The seeded generator, or None outside
            training (the global RNG is used then).
        """
        it = MessageHub.get_current_instance().get_info('iter')
        if it is None or not self.training:
            return None
        gen = torch.Generator(device=device or 'cpu')
        gen.manual_seed((self.mask_seed * 1000003 + int(it)) * 4099 +
                        get_rank())
        return gen

    def random_masking(self,
                       batch_size: int,
                       num_patches: int,
                       device=None,
                       generator: Optional[torch.Generator] = None,
                       mask_ratio: Optional[float] = None) -> RandomMasks:
        """MAE random masking: every image keeps ``max(1, int(N * (1 -
        mask_ratio)))`` patches, those of the smallest uniform noise.

        Args:
            batch_size (int): Number of images B.
            num_patches (int): Patches per image N.
            device (torch.device | str, optional): Where the indices live.
                Defaults to None (CPU).
            generator (torch.Generator, optional): Draws the noise (on the
                generator's device; the result is moved to ``device``).
                Defaults to None: :meth:`mask_generator`, i.e. the
                (seed, iteration, rank) stream in training, else the
                global RNG.
            mask_ratio (float, optional): Fraction of masked patches, in
                (0, 1). Defaults to None (the model's ``mask_ratio``).

        Returns:
            RandomMasks: ``ids_keep (B, L)``, ``ids_restore (B, N)`` and
            ``mask (B, N)`` (float, 1 = masked).
        """
        ratio = self.mask_ratio if mask_ratio is None else mask_ratio
        if not 0 < ratio < 1:
            raise ValueError(f'mask_ratio must be in (0, 1), got {ratio}.')
        if generator is None:
            generator = self.mask_generator(device)
        noise = torch.rand(
            batch_size,
            num_patches,
            device=device if generator is None else generator.device,
            generator=generator)
        if device is not None:
            noise = noise.to(device)
        keep = max(1, int(num_patches * (1 - ratio)))
        ids_shuffle = noise.argsort(dim=1)
        ids_restore = ids_shuffle.argsort(dim=1)
        mask = torch.ones(batch_size, num_patches, device=noise.device)
        mask[:, :keep] = 0
        return RandomMasks(ids_shuffle[:, :keep], ids_restore,
                           torch.gather(mask, 1, ids_restore))

    @staticmethod
    def ids_from_mask(mask: torch.Tensor) -> RandomMasks:
        """The masks of a given boolean mask, e.g. one made by an mmpretrain
        mask generator in the data pipeline.

        Args:
            mask (torch.Tensor): ``(B, N)`` or ``(B, h, w)``, True (1) for
                masked patches; every image must keep the same number of
                patches.

        Returns:
            RandomMasks: ``ids_keep`` (the visible patches in patch order),
            ``ids_restore`` and the float ``(B, N)`` mask.

        Raises:
            ValueError: Images keep different numbers of patches.
        """
        mask = mask.flatten(1).bool()
        keep = (~mask).sum(1)
        if not torch.all(keep == keep[0]):
            raise ValueError('Every image of a batch needs the same number '
                             f'of visible patches, got {keep.tolist()}.')
        ids_shuffle = mask.to(torch.uint8).argsort(dim=1, stable=True)
        ids_restore = ids_shuffle.argsort(dim=1)
        return RandomMasks(ids_shuffle[:, :int(keep[0])], ids_restore,
                           mask.float())

    @torch.no_grad()
    def reconstruct(self, img: torch.Tensor,
                    masks: Union[RandomMasks, torch.Tensor]) -> Reconstruction:
        """Pixel reconstruction of masked images, for pictures.

        The encoder sees the visible patches, the pixel head predicts every
        patch; with a normalised-pixel target each predicted patch is
        de-normalised with the mean and std of the same input patch (as
        MAE's visualisation). Call it on a model in eval mode.

        Args:
            img (torch.Tensor): ``(B, 3, H, W)`` images, normalised by the
                data preprocessor.
            masks (RandomMasks | torch.Tensor): As :meth:`random_masking`
                returns, or a boolean ``(B, N)`` / ``(B, h, w)`` mask
                (True = masked, see :meth:`ids_from_mask`).

        Returns:
            Reconstruction: ``masked`` (the visible patches, masked ones
            zero), ``reconstruction`` (every patch predicted) and
            ``pasted`` (the prediction with the visible patches pasted
            back), each ``(B, 3, H, W)`` in the normalised space of
            ``img``.
        """
        if not isinstance(masks, RandomMasks):
            masks = self.ids_from_mask(masks.to(img.device))
        pyramid = self.neck(self.backbone(img, ids_keep=masks.ids_keep))
        pred = self.head.predict(pyramid, masks.ids_restore)
        patches = self.head.patchify(img)
        if self.head.norm_pix:
            mean = patches.mean(-1, keepdim=True)
            std = (patches.var(-1, keepdim=True) + 1e-6)**.5
            pred = pred * std + mean
        m = masks.mask.unsqueeze(-1).to(patches.dtype)
        unpatchify = self.head.unpatchify
        return Reconstruction(
            masked=unpatchify(patches * (1 - m)),
            reconstruction=unpatchify(pred),
            pasted=unpatchify(patches * (1 - m) + pred * m))

    # ----------------------------------------------------------- forward
    def extract_feat(self, inputs: torch.Tensor) -> Tuple[torch.Tensor]:
        """Dense pyramid of full images (what downstream tasks use).

        Args:
            inputs (torch.Tensor): ``(B, 3, H, W)`` normalised images.

        Returns:
            tuple[torch.Tensor]: The pyramid maps, finest first.
        """
        return self.neck(self.backbone(inputs))

    @torch.no_grad()
    def teacher_targets(self, img: torch.Tensor) -> List[torch.Tensor]:
        """Teacher backbone stages on the unmasked image, token layout
        (run without autograd, under autocast if ``teacher_dtype``).

        Args:
            img (torch.Tensor): ``(B, 3, H, W)`` normalised images.

        Returns:
            list[torch.Tensor]: ``(B, N, k, k, C_s)`` maps of strides 4, 8,
            16 (k = 4, 2, 1).
        """
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
        """Losses for given masks (used by :meth:`loss`, tests and the
        benchmark).

        Args:
            img (torch.Tensor): ``(B, 3, H, W)`` normalised images.
            ids_keep (torch.Tensor): ``(B, L)`` visible patches.
            ids_restore (torch.Tensor): ``(B, N)`` unshuffle indices.
            mask (torch.Tensor): ``(B, N)``, 1 for masked patches.

        Returns:
            dict[str, torch.Tensor]: ``loss_pixel`` (and the MFM losses).
        """
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
        """Pixel (and MFM) losses of a batch.

        Masks come from ``data_samples[i].mask`` when the pipeline made
        them, else from :meth:`random_masking`.

        Args:
            inputs (torch.Tensor | list[torch.Tensor]): Normalised images
                ``(B, 3, H, W)`` (the first view when a list).
            data_samples (list[DataSample]): One per image.

        Returns:
            dict[str, torch.Tensor]: ``loss_pixel`` (and
            ``loss_mfm_s{4,8,16}`` with an active MFM head).
        """
        img = inputs[0] if isinstance(inputs, (list, tuple)) else inputs
        if data_samples and 'mask' in data_samples[0]:
            mask = torch.stack(
                [torch.as_tensor(ds.mask) for ds in data_samples]).to(
                    img.device)
            masks = self.ids_from_mask(mask)
        else:
            grid = (img.shape[-2] // self.backbone.patch_size,
                    img.shape[-1] // self.backbone.patch_size)
            masks = self.random_masking(img.shape[0], grid[0] * grid[1],
                                        img.device)
        return self.forward_mim(img, *masks)
