"""Official iTPN checkpoints (github.com/sunsmarterjie/iTPN) in mmitpn,
mmdet 3 and mmseg 1 keys, with the architecture they hold.

Kinds, told apart by their keys (weights under ``model``, ``state_dict`` or
``module``; ``module.`` prefixes are stripped):

- **pixel pre-training** (``itpn_pixel``): backbone -> ``backbone.*``,
  pyramid -> ``neck.*``, pixel decoder -> ``head.decoder.*``
  (:class:`ITPNPixelHead`);
- **CLIP pre-training** (``itpn_clip``): backbone, its ``mask_token``, every
  layer-scale gamma (stage-1/2 MLP blocks included) -> ``backbone.*``;
  pyramid -> ``neck.*``; pyramid head (``decoder_embed`` LN + Linear,
  ``norm``, ``lm_head``) -> ``head.decoder.*`` and side head
  (``cls_pt_layers``, ``norm_cls``, ``lm_cls_head``) -> ``side_head.decoder.*``
  (:class:`CLIPDistillHead`);
- **detector** (the official mmdet 2.24 fork: Mask R-CNN, Cascade Mask
  R-CNN): ``backbone.*`` holds backbone + pyramid (-> ``backbone.*`` +
  ``neck.*``); ``rpn_head.*`` and ``roi_head.*`` (cascade stages included)
  are kept for mmdet 3;
- **segmentor** (the official mmseg 0.x fork: UPerNet): as a detector, with
  ``decode_head.*`` and ``auxiliary_head.*`` kept for mmseg 1;
- **backbone**: a bare backbone (+ pyramid) state dict, e.g. the
  ``backbone`` of an official detector; ``task`` (``'det'`` / ``'seg'``)
  says which official code it came from (LayerNorm eps 1e-5, outputs and
  wiring).

The head modules the official configs use (RPNHead, ConvFCBBoxHead,
FCNMaskHead, UPerHead, FCNHead) have the same parameter names in mmdet 3 /
mmseg 1 as in mmdet 2 / mmseg 0.x; renamings would be applied from
:data:`HEAD_RENAMES` and each one is reported.

Widths, depths, fpn_depth, relative-position kind (none / Swin table /
decomposed), layer-scale stages and the pre-training grid are read from the
tensors, never assumed (the released ``itpn_base_pixel`` file has a 512-wide
pyramid where the code says 256). The number of attention heads is stored
only by Swin tables; else the official head count of the width is used, or
the ``num_heads`` argument. LayerNorm eps is not stored: 1e-6 for
pre-training files, 1e-5 (torch's default, which the official det/seg
backbones use) for detectors, segmentors and decomposed-rel-pos backbones;
the ``norm_eps`` argument overrides.

Relative-position tables are kept as they are in the file (made for the
fine-tuning ``img_size`` grid, which ``model_cfg`` records); a table of
another grid is resized when it is loaded (:class:`HiViTBackbone`). The
``absolute_pos_embed`` keeps its grid (official det / seg: 14x14 whatever
``img_size``; ``pos_embed_size`` in ``model_cfg`` when it differs from
``img_size``) and is interpolated to each input's grid at forward the
official way.

The official pyramid and decoder order their levels stride 16, 8, 4
(coarsest first), as mmpretrain's iTPN does; mmitpn orders them finest
first (:func:`reverse_level`, :func:`neck_key`, :func:`level_embed_key`).

:func:`convert_official` is the entry point; the tool
``tools/model_converters/itpn_to_mmitpn.py`` is a thin command over it.
"""
import math
import os
import os.path as osp
import re
from collections import OrderedDict
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import torch

from mmitpn.utils.safe_load import UnsafeCheckpointError, load_checkpoint_file

# Heads of the official architectures, by stage-3 width. Checkpoints do not
# store the head count unless they have Swin relative position tables.
OFFICIAL_HEADS = {384: 6, 512: 8, 768: 12, 1024: 16}
#: Official size names, by stage-3 width.
ARCH_NAMES = {512: 'base', 768: 'large'}
#: Official pyramid modules -> :class:`ITPNPyramid` modules (the output
#: blocks ``fpn_modules`` also reverse their levels, see :func:`neck_key`).
NECK_MODULES = {
    'align_dim_16tofpn': 'align_16',
    'split_16to8': 'split_16to8',
    'align_dim_16to8': 'align_8',
    'block_16to8': 'blocks_8',
    'split_8to4': 'split_8to4',
    'align_dim_8to4': 'align_4',
    'block_8to4': 'blocks_4',
}
#: Buffers the official models store and mmitpn recomputes.
BUFFERS = ('relative_position_index', 'attn_mask')
#: Whole-model heads kept for mmdet 3 / mmseg 1, by kind.
WHOLE_MODEL_HEADS = {
    'detector': ('rpn_head.', 'roi_head.'),
    'segmentor': ('decode_head.', 'auxiliary_head.'),
}
#: (pattern, replacement) renamings of head keys from mmdet 2 / mmseg 0.x
#: to mmdet 3 / mmseg 1. The heads of the official configs need none.
HEAD_RENAMES: List[Tuple[str, str]] = []
#: ``configs/itpn/`` paper configs by (kind, roi, size, supervision).
PAPER_CONFIGS = {
    ('detector', 'mask-rcnn', 'base', 'pixel'): [
        'itpn-base-pixel_mask-rcnn_8xb8-amp-1x_coco.py',
        'itpn-base-pixel_mask-rcnn_8xb8-amp-3x_coco.py'
    ],
    ('detector', 'mask-rcnn', 'base', 'clip'):
    ['itpn-base-clip_mask-rcnn_8xb8-amp-3x_coco.py'],
    ('detector', 'mask-rcnn', 'large', 'clip'):
    ['itpn-large-clip_mask-rcnn_8xb8-amp-1x_coco.py'],
    ('detector', 'cascade', 'base', 'pixel'):
    ['itpn-base-pixel_cascade-mask-rcnn_8xb8-amp-3x_coco.py'],
    ('detector', 'cascade', 'base', 'clip'):
    ['itpn-base-clip_cascade-mask-rcnn_8xb8-amp-3x_coco.py'],
    ('segmentor', 'upernet', 'base', 'pixel'):
    ['itpn-base-pixel_upernet_8xb2-amp-160k_ade20k-512x512.py'],
    ('segmentor', 'upernet', 'base', 'clip'):
    ['itpn-base-clip_upernet_8xb2-amp-160k_ade20k-512x512.py'],
    ('segmentor', 'upernet', 'large', 'pixel'):
    ['itpn-large-pixel_upernet_8xb2-amp-160k_ade20k-512x512.py'],
    ('segmentor', 'upernet', 'large', 'clip'):
    ['itpn-large-clip_upernet_8xb2-amp-160k_ade20k-512x512.py'],
}
_LEVEL_EMBED = re.compile(r'decoder_embed\.(\d)\.([01])\.(.+)$')


class Conversion(NamedTuple):
    """What :func:`convert_official` returns.

    Attributes:
        state_dict (OrderedDict): The weights under mmitpn / mmdet 3 /
            mmseg 1 names.
        meta (dict): ``model_cfg`` (backbone, neck and the pre-training
            heads, which load ``state_dict`` with no missing or unexpected
            key), ``kind``, ``task``, ``config`` (matching
            ``configs/itpn/`` files), ``tensors`` (``in``, ``out``,
            ``dropped`` keys, ``merged`` keys), ``renamed`` and
            ``unmapped_keys``.
        report (list[str]): The lines a user reads: kind, architecture,
            pyramid, heads, tensor counts, keys not converted, configs.
    """
    state_dict: 'OrderedDict[str, torch.Tensor]'
    meta: dict
    report: List[str]


class _Split(NamedTuple):
    """A checkpoint's tensors split by who maps them."""
    model: 'OrderedDict[str, torch.Tensor]'  # backbone, pyramid, decoders
    heads: 'OrderedDict[str, torch.Tensor]'  # whole-model heads, kept
    source: Dict[str, str]  # key in ``model`` -> key in the file


class _Mapped(NamedTuple):
    """The renamed tensors and the keys that were not renamed."""
    state_dict: 'OrderedDict[str, torch.Tensor]'
    buffers: List[str]  # recomputed by mmitpn, dropped
    merged: List[str]  # q / v biases merged into qkv biases
    unmapped: List[str]  # not part of the backbone, pyramid or heads
    renamed: List[str]  # head renamings, ``'old -> new'``


# ------------------------------------------------------------- key maps
def reverse_level(index: int, num_levels: int = 3) -> int:
    """mmitpn index of a pyramid level given in official order.

    The official iTPN (and mmpretrain's iTPN) pyramid output blocks and
    decoder level embeddings run stride 16, 8, 4 (coarsest first); mmitpn
    runs finest first. The map is its own inverse.

    Args:
        index (int): Level index in one order.
        num_levels (int): Number of levels. Defaults to 3.

    Returns:
        int: The index of the same level in the other order.
    """
    return num_levels - 1 - index


def neck_key(key: str) -> Optional[str]:
    """mmitpn name of an official pyramid key, or None.

    ``align_dim_16tofpn``, ``align_dim_16to8``, ``align_dim_8to4``,
    ``split_16to8``, ``split_8to4``, ``block_16to8``, ``block_8to4`` and
    ``fpn_modules`` (levels reversed) of the official ``iTPN`` models, and
    the same names in mmpretrain's ``iTPNPretrainDecoder``.

    Args:
        key (str): Key relative to the pyramid, e.g.
            ``'fpn_modules.0.mlp.fc1.weight'``.

    Returns:
        str | None: The key under ``neck.`` (e.g.
        ``'neck.out_blocks.2.mlp.fc1.weight'``), or None for a key that is
        not a pyramid key.
    """
    head, *tail = key.split('.')
    if head in NECK_MODULES:
        return '.'.join(['neck', NECK_MODULES[head]] + tail)
    if head == 'fpn_modules':
        idx, *tail = tail
        return '.'.join(['neck', 'out_blocks',
                         str(reverse_level(int(idx)))] + tail)
    return None


def level_embed_key(key: str) -> Optional[str]:
    """mmitpn name of an official decoder level embedding, or None.

    ``decoder_embed.{i}.0`` (LayerNorm) and ``decoder_embed.{i}.1``
    (Linear) of the official pixel decoder, CLIP pyramid head and
    mmpretrain's ``iTPNPretrainDecoder``; levels reversed.

    Args:
        key (str): Key relative to the decoder, e.g.
            ``'decoder_embed.0.1.weight'``.

    Returns:
        str | None: The key relative to the mmitpn decoder, e.g.
        ``'level_embeds.2.proj.weight'``, or None.
    """
    m = _LEVEL_EMBED.match(key)
    if m is None:
        return None
    part = 'norm' if m.group(2) == '0' else 'proj'
    return f'level_embeds.{reverse_level(int(m.group(1)))}.{part}.' \
        f'{m.group(3)}'


def pixel_decoder_key(key: str) -> Optional[str]:
    """mmitpn name (under ``head.decoder.``) of an official pixel-decoder
    key, or None.

    Args:
        key (str): Official key, e.g. ``'decoder_blocks.0.attn.qkv.weight'``.

    Returns:
        str | None: The key relative to ``head.decoder.``, or None for a key
        the official detection backbone also has.
    """
    if key == 'mask_token':
        return 'mask_token'
    if key == 'decoder_pos_embed':
        return 'pos_embed'
    level = level_embed_key(key)
    if level is not None:
        return level
    for src, dst in (('decoder_blocks.', 'blocks.'),
                     ('decoder_norm.', 'norm.'), ('decoder_pred.', 'pred.')):
        if key.startswith(src):
            return dst + key[len(src):]
    return None


def clip_head_key(key: str) -> Optional[str]:
    """mmitpn name of an official CLIP pre-training head key, or None.

    The pyramid head goes under ``head.decoder.``, the side head
    (``cls_pt_layers``, ``norm_cls``, ``lm_cls_head``) under
    ``side_head.decoder.``.

    Args:
        key (str): Official key, e.g. ``'lm_head.weight'``.

    Returns:
        str | None: The full mmitpn key, or None.
    """
    level = level_embed_key(key)
    if level is not None:
        return 'head.decoder.' + level
    m = re.match(r'cls_pt_layers\.(\d+)\.(.+)$', key)
    if m:
        return (f'side_head.decoder.blocks.{m.group(1)}.'
                f'{block_param_key(m.group(2))}')
    for src, dst in (('norm.', 'head.decoder.norm.'),
                     ('lm_head.', 'head.decoder.pred.'),
                     ('norm_cls.', 'side_head.decoder.norm.'),
                     ('lm_cls_head.', 'side_head.decoder.pred.')):
        if key.startswith(src):
            return dst + key[len(src):]
    return None


def block_param_key(rest: str) -> str:
    """mmitpn name of a parameter inside an official block (layer-scale
    ``gamma_1`` / ``gamma_2`` become ``gamma1`` / ``gamma2``).

    Args:
        rest (str): Key relative to the block.

    Returns:
        str: Key relative to the mmitpn block.
    """
    return {'gamma_1': 'gamma1', 'gamma_2': 'gamma2'}.get(rest, rest)


def head_key(key: str, renamed: List[str]) -> str:
    """mmdet 3 / mmseg 1 name of an mmdet 2 / mmseg 0.x head key
    (:data:`HEAD_RENAMES`).

    Args:
        key (str): Head key of the file.
        renamed (list[str]): Each renaming is appended here as
            ``'old -> new'``.

    Returns:
        str: The new key (``key`` when no renaming applies).
    """
    for pattern, repl in HEAD_RENAMES:
        new = re.sub(pattern, repl, key)
        if new != key:
            renamed.append(f'{key} -> {new}')
            return new
    return key


# ------------------------------------------------------- reading a file
def unwrap_state_dict(ckpt: dict) -> 'OrderedDict[str, torch.Tensor]':
    """Find the weights in a checkpoint and strip ``module.`` prefixes.

    Args:
        ckpt (dict): A loaded checkpoint or a state dict; weights under
            ``model``, ``state_dict`` or ``module``, or at the top.

    Returns:
        OrderedDict: The tensors (other values are left out).
    """
    if not isinstance(ckpt, dict):
        raise ValueError(f'A checkpoint must be a dict, got {type(ckpt)}.')
    for key in ('model', 'state_dict', 'module'):
        if key in ckpt and isinstance(ckpt[key], dict):
            ckpt = ckpt[key]
            break
    out = OrderedDict()
    for k, v in ckpt.items():
        if not isinstance(v, torch.Tensor):
            continue
        while k.startswith('module.'):
            k = k[len('module.'):]
        out[k] = v
    return out


def detect_kind(state_dict: Dict[str, torch.Tensor]) -> str:
    """The kind of an official checkpoint, from its keys.

    Args:
        state_dict (dict): Unwrapped official state dict.

    Returns:
        str: ``'pixel-pretrain'``, ``'clip-pretrain'``, ``'detector'``,
        ``'segmentor'`` or ``'backbone'`` (see the module docstring).
    """
    sd = state_dict
    if any(k.startswith(('rpn_head.', 'roi_head.')) for k in sd):
        return 'detector'
    if any(k.startswith(('decode_head.', 'auxiliary_head.')) for k in sd):
        return 'segmentor'
    if 'lm_head.weight' in sd or any(
            k.startswith('cls_pt_layers.') for k in sd):
        return 'clip-pretrain'
    if 'decoder_pred.weight' in sd:
        return 'pixel-pretrain'
    return 'backbone'


def check_not_mmitpn(state_dict: Dict[str, torch.Tensor]) -> None:
    """Refuse a file whose keys are already mmitpn's.

    Args:
        state_dict (dict): Unwrapped state dict.

    Raises:
        ValueError: One line naming a key and how to load the file.
    """
    marks = ('backbone.stages.', 'backbone.merges.', 'neck.split_16to8.',
             'stages.0.0.', 'merges.0.')
    hit = next((k for k in state_dict if k.startswith(marks)), None)
    if hit is not None:
        raise ValueError(
            f'This checkpoint is already in mmitpn format (key {hit!r}): no '
            f'conversion needed; load it directly (init_cfg=dict('
            f"type='Pretrained', checkpoint=..., prefix='backbone.'), "
            f'load_from, or tools/test.py).')


def resolve_task(kind: str, task: Optional[str]) -> Optional[str]:
    """The official code a checkpoint comes from: ``task`` checked against
    the heads of a whole detector / segmentor, or read from them.

    Args:
        kind (str): :func:`detect_kind`'s answer.
        task (str, optional): ``'det'``, ``'seg'`` or None.

    Returns:
        str | None: ``'det'``, ``'seg'`` or None (a pre-training or a bare
        backbone of unknown origin).
    """
    implied = {'detector': 'det', 'segmentor': 'seg'}.get(kind)
    if task is not None and implied is not None and task != implied:
        raise ValueError(f'--task {task} contradicts the checkpoint, a '
                         f'{kind} (its heads say task {implied}); drop '
                         f'--task.')
    return implied if task is None else task


def _split_whole_model(src: Dict[str, torch.Tensor], kind: str) -> _Split:
    """Set the whole-model heads apart and strip the ``backbone.`` prefix
    under which official detectors / segmentors nest backbone + pyramid.

    Args:
        src (dict): Unwrapped official state dict.
        kind (str): :func:`detect_kind`'s answer.
    """
    split = _Split(OrderedDict(), OrderedDict(), {})
    whole = WHOLE_MODEL_HEADS.get(kind, ())
    for k, v in src.items():
        if k.startswith(whole):
            split.heads[k] = v
            continue
        name = k[len('backbone.'):] if k.startswith('backbone.') else k
        split.model[name] = v
        split.source[name] = k
    return split


def stage3_width(model: Dict[str, torch.Tensor],
                 src: Dict[str, torch.Tensor]) -> int:
    """Stage-3 width C: 4x the patch embedding's output channels.

    Args:
        model (dict): Backbone + pyramid tensors, ``backbone.`` stripped.
        src (dict): The file's tensors (named when it is not iTPN's).

    Returns:
        int: The width.
    """
    if 'patch_embed.proj.weight' not in model:
        raise ValueError(
            'No patch_embed.proj.weight in the checkpoint: this is not an '
            'official iTPN / HiViT checkpoint (keys start with '
            f'{sorted({k.split(".")[0] for k in src})[:8]}); pass an '
            f'official iTPN pre-training, detection or segmentation file.')
    return model['patch_embed.proj.weight'].shape[0] * 4


def check_head_args(width: int, num_heads: Optional[int],
                    dec_num_heads: Optional[int]) -> None:
    """Refuse head counts that cannot build the model of a checkpoint.

    Args:
        width (int): Stage-3 width read from the checkpoint.
        num_heads (int, optional): Stage-3 heads asked for.
        dec_num_heads (int, optional): Pixel-decoder heads asked for.
    """
    if num_heads is not None and (num_heads < 1 or width % num_heads):
        raise ValueError(
            f'--num-heads {num_heads} does not divide the stage-3 width '
            f'{width} read from the checkpoint; pass a divisor of {width} '
            f'(official: {OFFICIAL_HEADS.get(width, "none for this width")}'
            f').')
    if dec_num_heads is not None and dec_num_heads < 1:
        raise ValueError(f'--dec-num-heads must be >= 1, got '
                         f'{dec_num_heads}.')


def block_layout(model: Dict[str, torch.Tensor]) -> Tuple[dict, List[int]]:
    """Place the official flat ``blocks.*`` list (stage-1 blocks, merge,
    stage-2 blocks, merge, stage-3 blocks) in mmitpn's stages.

    Args:
        model (dict): Backbone + pyramid tensors, ``backbone.`` stripped.

    Returns:
        tuple: ``(place, depths)``: ``place[i]`` is ``('stages', s, j)`` or
        ``('merges', s, None)``; ``depths`` the blocks of each stage.
    """
    block_ids = sorted({int(m.group(1)) for k in model
                        for m in [re.match(r'blocks\.(\d+)\.', k)] if m})
    merges = [i for i in block_ids if f'blocks.{i}.reduction.weight' in model]
    if len(merges) != 2:
        raise ValueError(f'Expected 2 patch merges among blocks.*, found '
                         f'{len(merges)}: not a HiViT checkpoint.')
    place = {}
    stage, j = 0, 0
    for i in block_ids:
        if i in merges:
            place[i] = ('merges', stage, None)
            stage, j = stage + 1, 0
        else:
            place[i] = ('stages', stage, j)
            j += 1
    depths = [
        sum(1 for p in place.values() if p[0] == 'stages' and p[1] == s)
        for s in range(3)
    ]
    return place, depths


def model_key(key: str, place: dict, is_clip: bool) -> Optional[str]:
    """mmitpn name of an official backbone, pyramid or pre-training head
    key (``backbone.`` prefix of whole models already stripped), or None.

    Args:
        key (str): Official key.
        place (dict): :func:`block_layout`'s block placement.
        is_clip (bool): The file is a CLIP pre-training (its ``norm``,
            ``mask_token`` and ``decoder_embed`` belong to other modules
            than a pixel pre-training's).

    Returns:
        str | None: The full mmitpn key, or None (not converted).
    """
    m = re.match(r'blocks\.(\d+)\.(.+)$', key)
    if key.startswith('patch_embed.'):
        return 'backbone.' + key
    if key in ('absolute_pos_embed', 'pos_embed'):
        return 'backbone.pos_embed'
    if m:
        kind, s, j = place[int(m.group(1))]
        if kind == 'merges':
            return f'backbone.merges.{s}.{m.group(2)}'
        return f'backbone.stages.{s}.{j}.{block_param_key(m.group(2))}'
    neck = neck_key(key)
    if neck is not None:
        return neck
    if is_clip and key == 'mask_token':
        return 'backbone.mask_token'
    if is_clip and clip_head_key(key) is not None:
        return clip_head_key(key)
    if key in ('norm.weight', 'norm.bias'):
        return 'backbone.' + key
    if not is_clip and pixel_decoder_key(key) is not None:
        return 'head.decoder.' + pixel_decoder_key(key)
    return None


def _map_keys(split: _Split, place: dict, kind: str) -> _Mapped:
    """Rename every tensor of a checkpoint; whole-model heads follow the
    backbone, merged qkv biases come last.

    Args:
        split (_Split): :func:`_split_whole_model`'s answer.
        place (dict): :func:`block_layout`'s block placement.
        kind (str): :func:`detect_kind`'s answer.
    """
    mapped = _Mapped(OrderedDict(), [], [], [], [])
    out = mapped.state_dict
    is_clip = kind == 'clip-pretrain'
    for k, v in split.model.items():
        if k.endswith(BUFFERS):
            mapped.buffers.append(split.source[k])
        elif re.match(r'blocks\.\d+\.attn\.[qv]_bias$', k):
            mapped.merged.append(split.source[k])
        else:
            new = model_key(k, place, is_clip)
            if new is None:
                mapped.unmapped.append(split.source[k])
            else:
                out[new] = v
    for k, v in split.heads.items():
        out[head_key(k, mapped.renamed)] = v
    merge_qv_biases(split.model, place, out)
    return mapped


def merge_qv_biases(model: Dict[str, torch.Tensor], place: dict,
                    out: Dict[str, torch.Tensor]) -> None:
    """BEiT-style separate q / v biases -> one qkv bias with a zero k bias.

    Args:
        model (dict): Backbone tensors, official names.
        place (dict): :func:`block_layout`'s block placement.
        out (dict): Converted state dict; the qkv biases are added to it.
    """
    for i, (_, s, j) in place.items():
        qb = model.get(f'blocks.{i}.attn.q_bias')
        if qb is not None:
            vb = model[f'blocks.{i}.attn.v_bias']
            out[f'backbone.stages.{s}.{j}.attn.qkv.bias'] = torch.cat(
                [qb, torch.zeros_like(qb), vb])


# ------------------------------------------------ reading the architecture
def read_rel_pos(
        state_dict: Dict[str, torch.Tensor]
) -> Tuple[Optional[str], Optional[torch.Tensor]]:
    """The backbone's relative positions.

    Args:
        state_dict (dict): Converted state dict.

    Returns:
        tuple: ``(None, None)``, ``('swin', first table)`` or
        ``('decomposed', first rel_pos_h)``.
    """
    swin = [v for k, v in state_dict.items() if k.startswith('backbone.')
            and k.endswith('relative_position_bias_table')]
    decomposed = [v for k, v in state_dict.items()
                  if k.startswith('backbone.') and k.endswith(
                      'attn.rel_pos_h')]
    if swin and decomposed:
        raise ValueError('The checkpoint has both Swin relative position '
                         'tables and decomposed rel_pos_h/w: not an official '
                         'iTPN checkpoint.')
    if swin:
        return 'swin', swin[0]
    if decomposed:
        return 'decomposed', decomposed[0]
    return None, None


def infer_num_heads(width: int, num_heads: Optional[int],
                    rpe_type: Optional[str],
                    table: Optional[torch.Tensor]) -> Tuple[int, str]:
    """Stage-3 heads: from Swin tables, the argument, decomposed tables
    (non-official widths) or the official architecture of the width.

    Args:
        width (int): Stage-3 width C.
        num_heads (int, optional): Heads asked for.
        rpe_type (str, optional): :func:`read_rel_pos`'s kind.
        table (Tensor, optional): :func:`read_rel_pos`'s table.

    Returns:
        tuple: ``(num_heads, source)``, source one of ``'table'``,
        ``'argument'``, ``'head_dim'``, ``'official'``.
    """
    if rpe_type == 'swin':
        inferred = table.shape[1]
        if num_heads is not None and num_heads != inferred:
            raise ValueError(f'--num-heads {num_heads} contradicts the '
                             f'relative position tables ({inferred} heads).')
        return inferred, 'table'
    source = 'argument'
    if rpe_type == 'decomposed' and num_heads is None \
            and width not in OFFICIAL_HEADS:
        # rel_pos_h is (2 * grid - 1, head_dim)
        num_heads, source = width // table.shape[1], 'head_dim'
    elif num_heads is None:
        if width not in OFFICIAL_HEADS:
            raise ValueError(
                f'Stage-3 width {width} is not an official iTPN width and '
                f'the checkpoint has no relative position tables, so the '
                f'number of attention heads cannot be read from it; pass '
                f'--num-heads.')
        num_heads, source = OFFICIAL_HEADS[width], 'official'
    if rpe_type == 'decomposed' and table.shape[1] * num_heads != width:
        raise ValueError(f'rel_pos_h has head_dim {table.shape[1]}, '
                         f'which is not width {width} / {num_heads} heads; '
                         f'pass --num-heads {width // table.shape[1]}.')
    return num_heads, source


def default_norm_eps(norm_eps: Optional[float], task: Optional[str],
                     rpe_type: Optional[str]) -> float:
    """LayerNorm eps (not stored): the argument, else 1e-5 for the official
    det / seg code (decomposed rel-pos is det only), else 1e-6.

    Args:
        norm_eps (float, optional): Eps asked for.
        task (str, optional): :func:`resolve_task`'s answer.
        rpe_type (str, optional): :func:`read_rel_pos`'s kind.

    Returns:
        float: The eps.
    """
    if norm_eps is not None:
        return norm_eps
    return 1e-5 if (task is not None or rpe_type == 'decomposed') else 1e-6


def _square_side(n: int, what: str) -> int:
    s = int(round(math.sqrt(n)))
    if s * s != n:
        raise ValueError(f'{what} has {n} entries, not a square grid.')
    return s


def rel_pos_grid(rpe_type: Optional[str],
                 table: Optional[torch.Tensor]) -> Optional[int]:
    """The grid side the relative positions were made for (the fine-tuning
    ``img_size`` / 16), or None without relative positions.

    Args:
        rpe_type (str, optional): :func:`read_rel_pos`'s kind.
        table (Tensor, optional): :func:`read_rel_pos`'s table.

    Returns:
        int | None: The grid side.
    """
    if rpe_type == 'swin':
        return (_square_side(table.shape[0], 'A relative position table') +
                1) // 2
    if rpe_type == 'decomposed':
        return (table.shape[0] + 1) // 2
    return None


def backbone_cfg(out: Dict[str, torch.Tensor], width: int,
                 depths: Sequence[int], num_heads: int,
                 rpe_type: Optional[str], norm_eps: float,
                 grid: Optional[int], is_clip: bool) -> dict:
    """:class:`HiViTBackbone` config of the converted tensors.

    Args:
        out (dict): Converted state dict.
        width (int): Stage-3 width C.
        depths (Sequence[int]): Blocks of each stage.
        num_heads (int): Stage-3 heads.
        rpe_type (str, optional): ``None``, ``'swin'`` or ``'decomposed'``.
        norm_eps (float): LayerNorm eps.
        grid (int, optional): Relative-position grid side.
        is_clip (bool): A CLIP pre-training (position embedding init,
            mask token).

    Returns:
        dict: The config.
    """
    last = f'backbone.stages.2.{depths[2] - 1}.'
    stem_key = 'backbone.stages.0.0.mlp.fc1.weight'
    cfg = dict(
        type='mmitpn.HiViTBackbone',
        arch=dict(embed_dims=width, depths=depths, num_heads=num_heads),
        stem_mlp_ratio=out[stem_key].shape[0] / (width // 4)
        if stem_key in out else 3.,
        mlp_ratio=out[last + 'mlp.fc1.weight'].shape[0] / width,
        qkv_bias=last + 'attn.qkv.bias' in out,
        rpe_type=rpe_type,
        norm_eps=norm_eps,
        final_norm='backbone.norm.weight' in out,
        out_indices=(0, 1, 2))
    ls_stages = layer_scale_stages(out)
    if ls_stages:
        cfg['layer_scale_init_value'] = 0.1
        cfg['layer_scale_stages'] = ls_stages
    cfg.update(position_cfg(out, grid, is_clip))
    if is_clip:
        cfg['use_mask_token'] = 'backbone.mask_token' in out
    return cfg


def layer_scale_stages(out: Dict[str, torch.Tensor]) -> Tuple[int, ...]:
    """Stages whose first block has a layer-scale gamma.

    Args:
        out (dict): Converted state dict.

    Returns:
        tuple[int]: The stages.
    """
    return tuple(s for s in range(3)
                 if f'backbone.stages.{s}.0.gamma2' in out)


def position_cfg(out: Dict[str, torch.Tensor], grid: Optional[int],
                 is_clip: bool) -> dict:
    """``img_size`` and the position embedding's settings.

    The relative positions' grid is the fine-tuning ``img_size``; the
    position embedding keeps its own grid (official det / seg: 14x14 at any
    ``img_size``, interpolated at every forward), recorded as
    ``pos_embed_size`` when it differs.

    Args:
        out (dict): Converted state dict.
        grid (int, optional): :func:`rel_pos_grid`'s answer.
        is_clip (bool): A CLIP pre-training (truncated-normal init).

    Returns:
        dict: Backbone config entries.
    """
    cfg = dict()
    if 'backbone.pos_embed' in out:
        pos_grid = _square_side(out['backbone.pos_embed'].shape[1],
                                'The position embedding')
        cfg['img_size'] = (grid or pos_grid) * 16
        if grid and grid != pos_grid:
            cfg['pos_embed_size'] = pos_grid * 16
        cfg['pos_embed_type'] = 'learnable'
        cfg['pos_embed_init'] = 'trunc_normal' if is_clip else 'sincos'
    else:
        cfg['pos_embed_type'] = None
        if grid:
            cfg['img_size'] = grid * 16
    return cfg


def neck_cfg(out: Dict[str, torch.Tensor], width: int, norm_eps: float,
             kind: str, task: Optional[str]) -> Optional[dict]:
    """:class:`ITPNPyramid` config of the converted tensors (None without
    pyramid weights): 3 outputs for pre-training, 5 for detection, 4
    concatenated and max-pooled for the official UPerNet.

    Args:
        out (dict): Converted state dict.
        width (int): Stage-3 width C.
        norm_eps (float): LayerNorm eps.
        kind (str): :func:`detect_kind`'s answer.
        task (str, optional): :func:`resolve_task`'s answer.
    """
    if 'neck.split_16to8.reduction.weight' not in out:
        return None
    fpn = out['neck.split_16to8.reduction.weight'].shape[0] // 4
    cfg = dict(
        type='mmitpn.ITPNPyramid',
        in_channels=(width // 4, width // 2, width),
        out_channels=fpn,
        fpn_depth=len({k.split('.')[2] for k in out
                       if k.startswith('neck.blocks_8.')}),
        mlp_ratio=out['neck.out_blocks.0.mlp.fc1.weight'].shape[0] / fpn,
        norm_eps=norm_eps,
        num_outs=3 if kind.endswith('pretrain') else 5)
    if task == 'seg':
        # official UPerNet backbone: each output concatenated with the
        # backbone map of its stride, 4th level max-pooled
        cfg.update(num_outs=4, concat_inputs=True, extra_pool='max')
    return cfg


def pixel_head_cfg(out: Dict[str, torch.Tensor], norm_eps: float,
                   dec_num_heads: Optional[int]) -> Optional[dict]:
    """:class:`ITPNPixelHead` config of the converted decoder tensors
    (None without a decoder); the heads are not stored: ``dec_num_heads``
    or width / 32 (the official 512-wide, 16-head decoder).

    Args:
        out (dict): Converted state dict.
        norm_eps (float): LayerNorm eps.
        dec_num_heads (int, optional): Decoder heads asked for.
    """
    if 'head.decoder.pred.weight' not in out:
        return None
    pred = out['head.decoder.pred.weight']
    dims = pred.shape[1]
    patch = int(round(math.sqrt(pred.shape[0] / 3)))
    heads = dec_num_heads or dims // 32
    if dims % heads:
        raise ValueError(f'--dec-num-heads {heads} does not divide the '
                         f'decoder width {dims}.')
    return dict(
        type='mmitpn.ITPNPixelHead',
        fpn_channels=out['head.decoder.level_embeds.2.proj.weight'].shape[1],
        embed_dims=dims,
        depth=len({k.split('.')[3] for k in out
                   if k.startswith('head.decoder.blocks.')}),
        num_heads=heads,
        img_size=int(round(math.sqrt(out['head.decoder.pos_embed'].shape[1])))
        * patch,
        patch_size=patch,
        norm_eps=norm_eps)


def clip_heads_cfg(out: Dict[str, torch.Tensor], width: int, num_heads: int,
                   fpn_width: Optional[int]) -> dict:
    """Configs of the CLIP pre-training heads read from their tensors.

    Args:
        out (dict): Converted state dict.
        width (int): Stage-3 width C.
        num_heads (int): Stage-3 heads (the side head's).
        fpn_width (int, optional): Pyramid width (None: no pyramid).

    Returns:
        dict: ``head`` (:class:`CLIPDistillHead` on the pyramid) and
        ``side_head`` (on a stage-3 block), those present.
    """
    cfg = dict()
    if 'head.decoder.pred.weight' in out:
        levels = sorted({int(k.split('.')[3]) for k in out
                         if k.startswith('head.decoder.level_embeds.')})
        cfg['head'] = dict(
            type='mmitpn.CLIPDistillHead',
            in_channels=fpn_width if fpn_width is not None else width,
            level_sizes=(4, 2, 1)[3 - len(levels):],
            embed_dims=out['head.decoder.pred.weight'].shape[1],
            target_dims=out['head.decoder.pred.weight'].shape[0])
    if 'side_head.decoder.pred.weight' in out:
        block_cfg = dict(norm_eps=1e-5)  # torch's default, officially
        if 'side_head.decoder.blocks.0.gamma1' in out:
            block_cfg['layer_scale_init_value'] = 0.1
        table = out.get(
            'side_head.decoder.blocks.0.attn.relative_position_bias_table')
        if table is not None:
            g = (_square_side(table.shape[0], 'A side-head table') + 1) // 2
            block_cfg['rpe_size'] = (g, g)
        cfg['side_head'] = dict(
            type='mmitpn.CLIPDistillHead',
            in_channels=width,
            level_sizes=(1, ),
            embed_dims=width,
            target_dims=out['side_head.decoder.pred.weight'].shape[0],
            depth=len({k.split('.')[3] for k in out
                       if k.startswith('side_head.decoder.blocks.')}),
            num_heads=num_heads,
            embed_inputs=False,
            block_cfg=block_cfg)
    return cfg


def infer_model_cfg(out: Dict[str, torch.Tensor],
                    kind: str,
                    task: Optional[str],
                    width: int,
                    depths: Sequence[int],
                    num_heads: Optional[int] = None,
                    norm_eps: Optional[float] = None,
                    dec_num_heads: Optional[int] = None) -> Tuple[dict, str]:
    """``model_cfg``: the modules that load the converted tensors, read
    from them.

    Args:
        out (dict): Converted state dict.
        kind (str): :func:`detect_kind`'s answer.
        task (str, optional): :func:`resolve_task`'s answer.
        width (int): Stage-3 width C.
        depths (Sequence[int]): Blocks of each stage.
        num_heads (int, optional): Stage-3 heads asked for.
        norm_eps (float, optional): LayerNorm eps asked for.
        dec_num_heads (int, optional): Pixel-decoder heads asked for.

    Returns:
        tuple: ``(model_cfg, heads_source)``: ``backbone`` and, those
        present, ``neck``, ``head``, ``side_head``; and where the stage-3
        head count came from (:func:`infer_num_heads`).
    """
    is_clip = kind == 'clip-pretrain'
    rpe_type, table = read_rel_pos(out)
    num_heads, heads_source = infer_num_heads(width, num_heads, rpe_type,
                                              table)
    norm_eps = default_norm_eps(norm_eps, task, rpe_type)
    model_cfg = dict(backbone=backbone_cfg(
        out, width, depths, num_heads, rpe_type, norm_eps,
        rel_pos_grid(rpe_type, table), is_clip))
    neck = neck_cfg(out, width, norm_eps, kind, task)
    if neck is not None:
        model_cfg['neck'] = neck
    if is_clip:
        model_cfg.update(clip_heads_cfg(
            out, width, num_heads, neck and neck['out_channels']))
    else:
        head = pixel_head_cfg(out, norm_eps, dec_num_heads)
        if head is not None:
            model_cfg['head'] = head
    return model_cfg, heads_source


# --------------------------------------------------------------- report
def matching_configs(query: dict) -> List[str]:
    """``configs/itpn/`` configs of the architecture a conversion found:
    the paper config of a fine-tuned model, or the fine-tuning configs of a
    pre-training of that size and supervision.

    Args:
        query (dict): ``kind``, ``roi`` (``'mask-rcnn'``, ``'cascade'``,
            ``'upernet'`` or None), ``arch_name`` (``'base'``, ``'large'``
            or None) and ``supervision`` (``'pixel'`` or ``'clip'``).

    Returns:
        list[str]: File names under ``configs/itpn/``.
    """
    arch, sup = query.get('arch_name'), query.get('supervision')
    if query['kind'] in ('detector', 'segmentor'):
        return PAPER_CONFIGS.get((query['kind'], query['roi'], arch, sup),
                                 [])
    if arch is None or query['kind'] == 'backbone':
        return []
    return [
        n for key, names in PAPER_CONFIGS.items()
        if key[2] == arch and key[3] == sup for n in names
    ]


def config_query(kind: str, model_cfg: dict,
                 heads: Dict[str, torch.Tensor]) -> dict:
    """:func:`matching_configs`'s query of a conversion: size by width,
    supervision by layer scale (CLIP models have it), RoI head by the
    cascade stages.

    Args:
        kind (str): :func:`detect_kind`'s answer.
        model_cfg (dict): :func:`infer_model_cfg`'s config.
        heads (dict): The whole-model head tensors.
    """
    backbone = model_cfg['backbone']
    roi = None
    if kind == 'detector':
        roi = 'cascade' if any(k.startswith('roi_head.bbox_head.0.')
                               for k in heads) else 'mask-rcnn'
    elif kind == 'segmentor':
        roi = 'upernet'
    return dict(
        kind=kind,
        roi=roi,
        arch_name=ARCH_NAMES.get(backbone['arch']['embed_dims']),
        supervision='clip' if backbone.get('layer_scale_stages') else
        'pixel')


def _summarise(keys: List[str]) -> str:
    """``'a.*.relative_position_index x 3, ...'``: keys grouped by their
    pattern with numbers replaced."""
    groups = OrderedDict()
    for k in keys:
        pat = re.sub(r'\.\d+\.', '.*.', k)
        groups[pat] = groups.get(pat, 0) + 1
    return ', '.join(p if n == 1 else f'{p} x {n}' for p, n in groups.items())


def architecture_lines(meta: dict, heads_source: str,
                       dec_num_heads: Optional[int]) -> List[str]:
    """Report lines of the kind and the architecture read.

    Args:
        meta (dict): :attr:`Conversion.meta`.
        heads_source (str): :func:`infer_num_heads`'s source.
        dec_num_heads (int, optional): Pixel-decoder heads asked for.

    Returns:
        list[str]: Kind, backbone, [stage-3 heads], pyramid, [heads].
    """
    cfg, task = meta['model_cfg'], meta['task']
    b = cfg['backbone']
    width, num_heads = b['arch']['embed_dims'], b['arch']['num_heads']
    grid = b['img_size'] // 16 if b['rpe_type'] else None
    rpe_name = {None: 'none', 'swin': 'Swin table',
                'decomposed': 'decomposed (ViTDet)'}[b['rpe_type']]
    lines = [
        f'kind: {meta["kind"]}' + (f' (task {task})' if task else ''),
        f'backbone: width {width}, depths {tuple(b["arch"]["depths"])}, '
        f'heads {num_heads}, rpe {rpe_name}' +
        (f' for a {grid}x{grid} grid' if grid else '') +
        f', layer scale on stages {b.get("layer_scale_stages") or "none"}, '
        f'LayerNorm eps {b["norm_eps"]:g}'
    ]
    if heads_source == 'official':
        lines.append(f'num_heads={num_heads} taken from the official '
                     f'architecture of width {width} (not stored in the '
                     f'file)')
    neck = cfg.get('neck')
    if neck is not None:
        lines.append(f'pyramid: width {neck["out_channels"]}, fpn_depth '
                     f'{neck["fpn_depth"]}' +
                     (', concatenated with the backbone maps, 4th level '
                      'max-pooled' if task == 'seg' else ''))
    else:
        lines.append('no pyramid weights found (a HiViT-only checkpoint)')
    head = cfg.get('head')
    if head is not None and head['type'] == 'mmitpn.ITPNPixelHead':
        lines.append(f'pixel decoder: width {head["embed_dims"]}, depth '
                     f'{head["depth"]}, heads {head["num_heads"]}' +
                     ('' if dec_num_heads else
                      ' (assumed: width / 32; not stored)'))
    if meta['kind'] == 'clip-pretrain':
        lines.append(f'CLIP heads: target width {cfg["head"]["target_dims"]}'
                     f', side head of '
                     f'{cfg.get("side_head", {}).get("depth", 0)} blocks')
    return lines


def _tensor_lines(meta: dict, mapped: _Mapped,
                  num_heads_kept: int) -> List[str]:
    """Report lines of the tensor counts: heads kept, in / out / dropped
    (each dropped key named), merged biases, keys not converted, and the
    matching configs.

    Args:
        meta (dict): :attr:`Conversion.meta`.
        mapped (_Mapped): The key mapping's result.
        num_heads_kept (int): Whole-model head tensors kept.

    Returns:
        list[str]: The lines.
    """
    lines = []
    if num_heads_kept:
        whole = WHOLE_MODEL_HEADS[meta['kind']]
        lines.append(
            f'{num_heads_kept} head tensors kept ('
            f'{", ".join(p.rstrip(".") for p in whole)}); renamed: ' +
            ('; '.join(mapped.renamed) if mapped.renamed else
             'none (same names in mmdet 3 / mmseg 1)'))
    t, buffers, merged = meta['tensors'], mapped.buffers, mapped.merged
    lines.append(
        f'tensors: in {t["in"]}, out {t["out"]}, dropped '
        f'{len(t["dropped"])}' +
        (f' ({len(buffers)} recomputed buffers: '
         f'{_summarise(buffers)})' if buffers else '') +
        (f', {len(merged)} q/v biases merged into '
         f'{len(merged) // 2} qkv biases' if merged else ''))
    unmapped = meta['unmapped_keys']
    if unmapped:
        lines.append(f'{len(unmapped)} keys not converted (not part of the '
                     f'backbone, pyramid or heads): {", ".join(unmapped)}')
    lines.append('config: ' + (', '.join(meta['config']) if meta['config']
                               else 'no configs/itpn/ config for this '
                               'architecture'))
    return lines


# ---------------------------------------------------------- entry point
def convert_official(checkpoint: dict,
                     num_heads: Optional[int] = None,
                     norm_eps: Optional[float] = None,
                     dec_num_heads: Optional[int] = None,
                     task: Optional[str] = None) -> Conversion:
    """Convert an official iTPN checkpoint to mmitpn (mmdet 3 / mmseg 1)
    keys and read its architecture.

    Args:
        checkpoint (dict): A loaded official file or its state dict
            (weights under ``model``, ``state_dict``, ``module`` or at the
            top; ``module.`` prefixes are stripped).
        num_heads (int, optional): Stage-3 heads; read from the Swin
            relative position tables if present, else from the official
            table by width, else this argument is required.
        norm_eps (float, optional): LayerNorm epsilon to record. Defaults
            to None: 1e-6 for pre-training files, 1e-5 for detectors,
            segmentors, decomposed-rel-pos backbones and ``task`` det / seg.
        dec_num_heads (int, optional): Heads of the pixel decoder (not
            stored in the file); defaults to width / 32, the official
            512-wide, 16-head decoder.
        task (str, optional): ``'det'`` or ``'seg'``: the official code a
            bare backbone state dict comes from (outputs, wiring, eps).
            Detected for whole detectors / segmentors. Defaults to None.

    Returns:
        Conversion: ``(state_dict, meta, report)``.

    Raises:
        ValueError: One line naming what is wrong with the file or the
            arguments and the fix.
    """
    src = unwrap_state_dict(checkpoint)
    if task not in (None, 'det', 'seg'):
        raise ValueError(f"task must be 'det', 'seg' or None, got {task!r}.")
    check_not_mmitpn(src)
    kind = detect_kind(src)
    task = resolve_task(kind, task)
    split = _split_whole_model(src, kind)
    width = stage3_width(split.model, src)
    check_head_args(width, num_heads, dec_num_heads)
    place, depths = block_layout(split.model)
    mapped = _map_keys(split, place, kind)
    out = mapped.state_dict
    model_cfg, heads_source = infer_model_cfg(out, kind, task, width, depths,
                                              num_heads, norm_eps,
                                              dec_num_heads)
    configs = matching_configs(config_query(kind, model_cfg, split.heads))
    meta = dict(
        model_cfg=model_cfg,
        kind=kind,
        task=task,
        config=[f'configs/itpn/{c}' for c in configs],
        tensors={'in': len(src), 'out': len(out),
                 'dropped': mapped.buffers + mapped.unmapped,
                 'merged': mapped.merged},
        renamed=mapped.renamed,
        unmapped_keys=mapped.unmapped)
    report = (architecture_lines(meta, heads_source, dec_num_heads) +
              _tensor_lines(meta, mapped, len(split.heads)))
    return Conversion(out, meta, report)


def load_official(filename: str, allow_unsafe: bool = False) -> dict:
    """Read an official file without running code from it
    (:func:`mmitpn.utils.safe_load.load_checkpoint_file`).

    Args:
        filename (str): The official checkpoint.
        allow_unsafe (bool): The file is trusted: let its pickle create
            objects other than tensors and the allow-listed types (logged
            at WARNING). Defaults to False.

    Returns:
        dict: The loaded file.

    Raises:
        UnsafeCheckpointError: The file asks for another global (named,
            with the opt-in) and not ``allow_unsafe``.
        ValueError: The file cannot be read (truncated download, not a
            checkpoint), in one line.
    """
    try:
        return load_checkpoint_file(
            filename, map_location='cpu', allow_unsafe=allow_unsafe)
    except UnsafeCheckpointError:
        raise
    except Exception as e:  # noqa: BLE001 -- any reader failure, one line
        # what broke in the reader (safe_load's own message is about
        # resuming training; a download is fetched again)
        inner = e.__cause__ or (None if isinstance(e, ValueError) else e)
        cause = '' if inner is None else ': ' + ' '.join(
            f'{type(inner).__name__}: {inner}'.split()).rstrip('.')
        size = osp.getsize(filename) if osp.isfile(filename) else 0
        raise ValueError(f'Cannot read {filename} ({size} bytes){cause}. Is '
                         f'it a complete PyTorch checkpoint (not truncated)? '
                         f'Download it again.') from e


def check_paths(src: str, dst: str) -> None:
    """Refuse the paths of a conversion before reading anything.

    Args:
        src (str): The official file.
        dst (str): Where the conversion goes.

    Raises:
        FileNotFoundError: ``src`` is not a file, or the folder of ``dst``
            does not exist.
        ValueError: ``dst`` is ``src``.
        PermissionError: The folder of ``dst`` is not writable.
    """
    if not osp.isfile(src):
        raise FileNotFoundError(f'{src} is not a file; pass the official '
                                f'checkpoint (.pth).')
    if osp.abspath(src) == osp.abspath(dst) or (
            osp.exists(dst) and osp.samefile(src, dst)):
        raise ValueError(f'DST {dst} is SRC: the official file would be '
                         f'overwritten; write the conversion elsewhere.')
    folder = osp.dirname(osp.abspath(dst))
    if not osp.isdir(folder):
        raise FileNotFoundError(
            f'Output folder {folder} does not exist; create it (mkdir -p '
            f'{folder}) or choose another DST.')
    if not os.access(folder, os.W_OK):
        raise PermissionError(f'Output folder {folder} is not writable.')
