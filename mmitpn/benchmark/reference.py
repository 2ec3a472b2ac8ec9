"""Reference builders: mmpretrain 1.2.0's HiViT / iTPN and mmitpn's models
with the same architecture and the same weights.

mmpretrain's ``arch='base'`` HiViT builds 2 x (2, 2) = (4, 4) MLP blocks in
stages 1-2 (it doubles the stem depths) and 24 attention blocks; the iTPN-B
of the official code has (3, 3, 24), which mmpretrain cannot express.
mmpretrain's iTPN pixel decoder has 6 blocks (official: 8) and its
level-embedding LayerNorms use eps 1e-5. The mmitpn side is configured to
match all of this exactly (:func:`build_ours_mim`), mmpretrain's weights are
copied into it (:func:`copy_weights`) and the outputs are compared
(:func:`check_equal`) before anything is timed.

mmpretrain draws its own masks inside ``iTPNHiViT``; the reference model
built here uses :class:`ITPNHiViTGivenMasks`, a subclass that takes the
masks it is given, so that both sides see the same ``ids_keep`` / ``mask``.
"""
from typing import Dict, Iterable, List, Optional, Sequence

import torch
from mmpretrain.models.selfsup.itpn import iTPNHiViT

from mmitpn.converters.official import level_embed_key, neck_key


#: Presets in mmpretrain's stem depths (mmpretrain doubles them): iTPN-B
#: at 224 (``FULL``) and a tiny architecture for smoke runs (``QUICK``).
#: ``dense`` / ``dense_train``: (H, W, batch) of the detection-sized cases.
FULL = dict(
    embed_dims=512, depths=(2, 2, 24), num_heads=8, fpn_dim=256,
    fpn_depth=2, dec_dims=512, dec_depth=6, dec_heads=16, mfm_dims=256,
    mfm_depth=2, mfm_heads=8, img=224, batch=8,
    dense=((1024, 1024, 1), (800, 1344, 2)), dense_train=(1024, 1024, 1))
QUICK = dict(
    embed_dims=64, depths=(1, 1, 8), num_heads=2, fpn_dim=32, fpn_depth=1,
    dec_dims=32, dec_depth=1, dec_heads=2, mfm_dims=32, mfm_depth=1,
    mfm_heads=2, img=64, batch=2,
    dense=((128, 128, 1), (96, 160, 2)), dense_train=(128, 128, 1))

#: mmpretrain's decoder block names -> mmitpn's
_DECODER_BLOCK = {'ln1': 'norm1', 'ln2': 'norm2', 'attn.qkv': 'attn.qkv',
                  'attn.proj': 'attn.proj', 'ffn.layers.0.0': 'mlp.fc1',
                  'ffn.layers.1': 'mlp.fc2'}
#: mmpretrain's other ``iTPNPretrainDecoder`` keys -> mmitpn's (the pyramid
#: and the level embeddings go through the official converter's maps)
_DECODER = {'mask_token': 'head.decoder.mask_token',
            'decoder_pos_embed': 'head.decoder.pos_embed',
            'ln1': 'head.decoder.norm',
            'decoder_pred': 'head.decoder.pred'}


class OutputsDiffer(RuntimeError):
    """The two implementations disagree: nothing is timed."""


# ------------------------------------------------------------- weights
def hivit_block_names(depths: Sequence[int]) -> List[str]:
    """mmitpn names of mmpretrain's ``blocks.{i}``.

    Args:
        depths (Sequence[int]): mmpretrain's stem depths
            (``arch['depths']``; it builds ``2 * d`` MLP blocks in stages
            1-2).

    Returns:
        list[str]: ``stages.{s}.{j}`` / ``merges.{s}`` for each ``i``.
    """
    names = []
    for s, d in enumerate(depths):
        n = d if s == len(depths) - 1 else 2 * d
        names += [f'stages.{s}.{j}' for j in range(n)]
        if s < len(depths) - 1:
            names.append(f'merges.{s}')
    return names


def _neck_key(rest: str) -> str:
    """mmitpn name of an mmpretrain ``iTPNPretrainDecoder`` key (given
    without ``neck.``): its pyramid and level embeddings are named as in
    the official models (:func:`neck_key`, :func:`level_embed_key`: levels
    reversed, mmpretrain runs coarsest first), its decoder blocks as
    mmpretrain's ``TransformerEncoderLayer``."""
    pyramid = neck_key(rest)
    if pyramid is not None:
        return pyramid
    level = level_embed_key(rest)
    if level is not None:
        return 'head.decoder.' + level
    first, _, tail = rest.partition('.')
    if first == 'decoder_blocks':
        i, _, tail = tail.partition('.')
        module, param = tail.rsplit('.', 1)
        return f'head.decoder.blocks.{i}.{_DECODER_BLOCK[module]}.{param}'
    return _DECODER[first] + ('.' + tail if tail else '')


def map_mmpretrain_to_mmitpn(state_dict: Dict[str, torch.Tensor],
                             depths: Sequence[int]
                             ) -> Dict[str, torch.Tensor]:
    """Rename an mmpretrain HiViT, iTPNHiViT or iTPN (pixel) state dict to
    mmitpn's names.

    Backbone keys (bare or under ``backbone.``) map to
    :class:`HiViTBackbone`; ``neck.*`` of ``iTPNPretrainDecoder`` maps to
    :class:`ITPNPyramid` (``neck.*``) and the pixel decoder
    (``head.decoder.*``). mmpretrain orders the pyramid output blocks and
    the decoder level embeddings coarsest first, mmitpn finest first.

    Args:
        state_dict (dict): mmpretrain state dict.
        depths (Sequence[int]): mmpretrain's ``arch['depths']``.

    Returns:
        dict: mmitpn state dict (buffers mmitpn recomputes are dropped).
    """
    blocks = hivit_block_names(depths)
    out = {}
    for key, val in state_dict.items():
        if key.endswith('relative_position_index'):
            continue
        if key.startswith('neck.'):
            out[_neck_key(key[len('neck.'):])] = val
            continue
        prefix, name = '', key
        if key.startswith('backbone.'):
            prefix, name = 'backbone.', key[len('backbone.'):]
        if name.startswith('blocks.'):
            i, _, rest = name[len('blocks.'):].partition('.')
            name = f'{blocks[int(i)]}.{rest}'
        out[prefix + name] = val
    return out


def copy_weights(ref: torch.nn.Module, ours: torch.nn.Module,
                 depths: Sequence[int], prefix: str = '') -> None:
    """Load ``ref``'s weights into ``ours``, strictly: every tensor of
    ``ours`` must come from ``ref``.

    Args:
        ref (torch.nn.Module): The mmpretrain model.
        ours (torch.nn.Module): The mmitpn model (or a part of it).
        depths (Sequence[int]): mmpretrain's ``arch['depths']``.
        prefix (str): Load only the mapped names under this prefix, without
            it (e.g. ``'backbone.'`` into a backbone). Defaults to ''.
    """
    mapped = map_mmpretrain_to_mmitpn(ref.state_dict(), depths)
    if prefix:
        mapped = {k[len(prefix):]: v for k, v in mapped.items()
                  if k.startswith(prefix)}
    ours.load_state_dict(mapped, strict=True)


# -------------------------------------------------------------- models
def ref_arch(a: dict) -> dict:
    """mmpretrain ``arch`` dict of a preset.

    Args:
        a (dict): A preset (:data:`FULL`, :data:`QUICK`).
    """
    return dict(embed_dims=a['embed_dims'], depths=list(a['depths']),
                num_heads=a['num_heads'])


def ours_arch(a: dict) -> dict:
    """mmitpn ``arch`` dict of a preset: stem depths doubled, as mmpretrain
    builds them.

    Args:
        a (dict): A preset (:data:`FULL`, :data:`QUICK`).
    """
    d1, d2, d3 = a['depths']
    return dict(embed_dims=a['embed_dims'], depths=(2 * d1, 2 * d2, d3),
                num_heads=a['num_heads'])


class ITPNHiViTGivenMasks(iTPNHiViT):
    """mmpretrain's ``iTPNHiViT`` taking the masks it is given
    (:meth:`set_masks`) instead of drawing its own; without given masks it
    draws them as mmpretrain does. Same arguments as ``iTPNHiViT``.
    """
    given_masks = None

    def set_masks(self, ids_keep: torch.Tensor, ids_restore: torch.Tensor,
                  mask: torch.Tensor) -> None:
        """Use these masks in every following forward.

        Args:
            ids_keep (torch.Tensor): ``(B, L)`` kept patch indices.
            ids_restore (torch.Tensor): ``(B, N)`` inverse permutation.
            mask (torch.Tensor): ``(B, N)``, 1 = masked.
        """
        self.given_masks = (ids_keep, ids_restore, mask)

    def masking_id(self, batch_size: int, mask_ratio: float):
        """The given masks, else mmpretrain's random ones.

        Args:
            batch_size (int): B.
            mask_ratio (float): Fraction of masked patches.
        """
        if self.given_masks is None:
            return super().masking_id(batch_size, mask_ratio)
        return self.given_masks


def build_ref_hivit(a: dict) -> torch.nn.Module:
    """mmpretrain ``HiViT`` (the dense classification backbone), without
    absolute position embedding: at its pre-training size it adds the table
    as is while mmitpn (like the official code and mmpretrain's own iTPN
    path) resamples it, which would make the outputs differ for a cost
    that is negligible either way.

    Args:
        a (dict): A preset (:data:`FULL`, :data:`QUICK`).
    """
    from mmpretrain.models.backbones import HiViT
    return HiViT(arch=ref_arch(a), img_size=a['img'], ape=False,
                 norm_cfg=dict(type='LN', eps=1e-6), out_indices=[-1])


def build_ref_itpn(a: dict) -> torch.nn.Module:
    """mmpretrain ``iTPN`` pixel model (``iTPNHiViT`` +
    ``iTPNPretrainDecoder`` + ``MAEPretrainHead``) with the values of its
    config; its backbone is :class:`ITPNHiViTGivenMasks`.

    Args:
        a (dict): A preset (:data:`FULL`, :data:`QUICK`).
    """
    from mmpretrain.models.selfsup import iTPN
    grid = a['img'] // 16
    model = iTPN(
        backbone=ITPNHiViTGivenMasks(
            arch=ref_arch(a), img_size=a['img'], reconstruction_type='pixel',
            mask_ratio=0.75),
        neck=dict(type='iTPNPretrainDecoder', num_patches=grid * grid,
                  patch_size=16, in_chans=3, embed_dim=a['embed_dims'],
                  decoder_embed_dim=a['dec_dims'],
                  decoder_depth=a['dec_depth'],
                  decoder_num_heads=a['dec_heads'], mlp_ratio=4.,
                  reconstruction_type='pixel', fpn_dim=a['fpn_dim'],
                  fpn_depth=a['fpn_depth'], num_outs=3),
        head=dict(type='MAEPretrainHead', norm_pix=True, patch_size=16,
                  loss=dict(type='PixelReconstructionLoss',
                            criterion='L2')))
    model.init_weights()
    return model


def build_ours_backbone(a: dict, **kwargs) -> torch.nn.Module:
    """mmitpn ``HiViTBackbone`` matching the preset.

    Args:
        a (dict): A preset (:data:`FULL`, :data:`QUICK`).
        **kwargs: More ``HiViTBackbone`` arguments.
    """
    from mmitpn.models import HiViTBackbone
    return HiViTBackbone(arch=ours_arch(a), img_size=a['img'],
                         norm_eps=1e-6, **kwargs)


def build_ours_neck(a: dict, **kwargs) -> torch.nn.Module:
    """mmitpn ``ITPNPyramid`` matching the preset (3 outputs).

    Args:
        a (dict): A preset (:data:`FULL`, :data:`QUICK`).
        **kwargs: More ``ITPNPyramid`` arguments.
    """
    from mmitpn.models import ITPNPyramid
    C = a['embed_dims']
    return ITPNPyramid(in_channels=(C // 4, C // 2, C),
                       out_channels=a['fpn_dim'], fpn_depth=a['fpn_depth'],
                       num_outs=3, **kwargs)


def build_ours_mim(a: dict, mfm: bool,
                   teacher_dtype: Optional[str] = None) -> torch.nn.Module:
    """mmitpn ``ITPNMIM`` matching :func:`build_ref_itpn`.

    Args:
        a (dict): A preset (:data:`FULL`, :data:`QUICK`).
        mfm (bool): Add the MFM head of the iTPN-B config (scaled like the
            preset) and its EMA teacher.
        teacher_dtype (str, optional): The teacher's ``teacher_dtype``.
            Defaults to None.
    """
    from mmitpn.registry import MODELS
    C = a['embed_dims']
    cfg = dict(
        type='mmitpn.ITPNMIM',
        backbone=dict(type='mmitpn.HiViTBackbone', arch=ours_arch(a),
                      img_size=a['img'], norm_eps=1e-6),
        neck=dict(type='mmitpn.ITPNPyramid', in_channels=(C // 4, C // 2, C),
                  out_channels=a['fpn_dim'], fpn_depth=a['fpn_depth'],
                  num_outs=3),
        head=dict(type='mmitpn.ITPNPixelHead', fpn_channels=a['fpn_dim'],
                  embed_dims=a['dec_dims'], depth=a['dec_depth'],
                  num_heads=a['dec_heads'], img_size=a['img'],
                  norm_pix=True),
        mask_ratio=0.75, teacher_dtype=teacher_dtype)
    if mfm:
        cfg['mfm_head'] = dict(
            type='mmitpn.ITPNFeatureHead', fpn_channels=a['fpn_dim'],
            target_channels=(C // 4, C // 2, C), embed_dims=a['mfm_dims'],
            depth=a['mfm_depth'], num_heads=a['mfm_heads'],
            img_size=a['img'])
    model = MODELS.build(cfg)
    # mmpretrain's decoder level embeddings use nn.LayerNorm's default eps
    for emb in model.head.decoder.level_embeds:
        emb.norm.eps = 1e-5
    return model


# ------------------------------------------------------------- helpers
def seeded_masks(model: torch.nn.Module, batch: int, num_patches: int,
                 dev: torch.device, seed: int = 0) -> tuple:
    """The same masks for both sides: mmitpn's masking
    (``ITPNMIM.random_masking``) drawn from a CPU generator of a fixed
    seed.

    Args:
        model (ITPNMIM): The mmitpn model (its ``mask_ratio``).
        batch (int): B.
        num_patches (int): N.
        dev (torch.device): Where the masks go.
        seed (int): Seed of the generator. Defaults to 0.

    Returns:
        RandomMasks: ``ids_keep``, ``ids_restore``, ``mask``.
    """
    return model.random_masking(
        batch, num_patches, dev,
        generator=torch.Generator().manual_seed(seed))


def ref_pyramid_dense(backbone: ITPNHiViTGivenMasks, neck: torch.nn.Module,
                      img: torch.Tensor) -> List[torch.Tensor]:
    """mmpretrain's own path to the three pyramid maps of a full image:
    ``iTPNHiViT.forward_pixel`` keeping every token, the pyramid part of
    ``iTPNPretrainDecoder.forward`` (token layout) and its token -> NCHW
    rearrange.

    Args:
        backbone (ITPNHiViTGivenMasks): The reference backbone.
        neck (torch.nn.Module): The reference ``iTPNPretrainDecoder``.
        img (torch.Tensor): ``(B, 3, H, W)`` images.

    Returns:
        list[torch.Tensor]: NCHW maps, finest first.
    """
    B, _, H, W = img.shape
    hp, wp = H // 16, W // 16
    n = hp * wp
    ids = torch.arange(n, device=img.device).expand(B, n)
    backbone.set_masks(ids, ids, torch.zeros(B, n, device=img.device))
    feats, _, _ = backbone(img)
    x = feats[-1][..., None, None, :]
    outs = [x if neck.align_dim_16tofpn is None else
            neck.align_dim_16tofpn(x)]
    x = neck.block_16to8(neck.split_16to8(x) + neck.align_dim_16to8(feats[1]))
    outs.append(x)
    x = neck.block_8to4(neck.split_8to4(x) + neck.align_dim_8to4(feats[0]))
    outs.append(x)
    outs = [blk(o) for blk, o in zip(neck.fpn_modules, outs)]
    outs = [
        o.reshape(B, hp, wp, *o.shape[-3:]).permute(0, 5, 1, 3, 2, 4)
        .reshape(B, -1, hp * o.shape[-3], wp * o.shape[-2]).contiguous()
        for o in outs
    ]
    return outs[::-1]


def max_diff(xs: Iterable[torch.Tensor], ys: Iterable[torch.Tensor]) -> float:
    """Largest absolute difference over pairs of tensors.

    Args:
        xs (Iterable[torch.Tensor]): First tensors.
        ys (Iterable[torch.Tensor]): Second tensors, same shapes.
    """
    return max(float((x.float() - y.float()).abs().max())
               for x, y in zip(xs, ys))


def check_equal(diff: float, what: str, notes: List[str],
                tol: float = 1e-4) -> None:
    """Record a comparison in ``notes``; stop if the two sides disagree.

    Args:
        diff (float): The measured difference.
        what (str): What was compared.
        notes (list[str]): Notes of the run, appended to.
        tol (float): Largest accepted difference. Defaults to 1e-4.

    Raises:
        OutputsDiffer: ``diff`` is not below ``tol`` (or is NaN).
    """
    notes.append(f'{what}: max diff {diff:.2e} (tol {tol:.0e})')
    if not diff < tol:
        raise OutputsDiffer(f'Outputs differ ({what}): {diff:.3e} >= {tol}; '
                            'not timing unequal models.')


def pixel_models(a: dict, dev: torch.device, teacher_dtype: Optional[str],
                 notes: List[str], check_batch: Optional[int] = None,
                 with_mfm: bool = True) -> dict:
    """mmpretrain's iTPN pixel model and mmitpn's pixel (and pixel + MFM)
    ``ITPNMIM`` with the same weights, their predictions and losses checked
    equal on the same images and masks (in fp32, no autocast).

    Args:
        a (dict): A preset (:data:`FULL`, :data:`QUICK`).
        dev (torch.device): Where the models run.
        teacher_dtype (str, optional): The MFM model's ``teacher_dtype``.
        notes (list[str]): Notes of the run; the comparisons are appended.
        check_batch (int, optional): Batch of the check. Defaults to
            ``a['batch']``.
        with_mfm (bool): Also build the pixel + MFM model. Defaults to True.

    Returns:
        dict: ``ref``, ``pix``, ``mfm`` (None without ``with_mfm``) and the
        check's inputs ``img``, ``masks`` (``ids_keep``, ``ids_restore``,
        ``mask``).
    """
    from mmengine.logging import MessageHub
    B = check_batch or a['batch']
    n = (a['img'] // 16)**2
    torch.manual_seed(0)
    ref = build_ref_itpn(a).to(dev)
    pix = build_ours_mim(a, mfm=False).to(dev)
    copy_weights(ref, pix, a['depths'])
    mfm = None
    if with_mfm:
        mfm = build_ours_mim(a, mfm=True, teacher_dtype=teacher_dtype).to(dev)
        for part in ('backbone', 'neck', 'head'):
            copy_weights(ref, getattr(mfm, part), a['depths'], part + '.')
        # CosineEMA anneals over the run's length, read from the message hub
        MessageHub.get_current_instance().update_info('max_iters', 100000)
        mfm.teacher.update_parameters(mfm.backbone)  # EMA step 0: a copy
    img = torch.randn(B, 3, a['img'], a['img'], device=dev)
    masks = seeded_masks(pix, B, n, dev)
    ref.backbone.set_masks(*masks)
    with _exact_matmuls(dev), torch.no_grad():
        latent, _, _ = ref.backbone(img)
        ref_pred = ref.neck(latent, masks[1])
        ref_loss = ref.head.loss(ref_pred, img, masks[2])
        pyr = pix.neck(pix.backbone(img, ids_keep=masks[0]))
        pred = pix.head.predict(pyr, masks[1])
        losses = [pix.head.loss(pyr, masks[1], img, masks[2])]
        if mfm is not None:
            losses.append(mfm.forward_mim(img, *masks)['loss_pixel'])
    check_equal(max_diff([ref_pred], [pred]), 'b: pixel predictions', notes)
    rel = max(abs(float(x - ref_loss)) / abs(float(ref_loss))
              for x in losses)
    check_equal(rel, 'b: pixel loss (relative)', notes, tol=1e-5)
    return dict(ref=ref, pix=pix, mfm=mfm, img=img, masks=masks)


def _exact_matmuls(dev: torch.device):
    """No TF32 in cuDNN convolutions during an equality check on CUDA
    (``torch.backends.cudnn.flags``, restored on exit; matrix products
    are fp32 by default); nothing on a CPU."""
    from contextlib import nullcontext
    if dev.type != 'cuda':
        return nullcontext()
    return torch.backends.cudnn.flags(
        enabled=True, benchmark=False, deterministic=False, allow_tf32=False)
