#!/usr/bin/env python
"""Convert an official iTPN checkpoint (github.com/sunsmarterjie/iTPN) to
mmitpn, mmdet 3 or mmseg 1 keys.

    python tools/model_converters/itpn_to_mmitpn.py SRC DST \\
        [--num-heads N] [--norm-eps EPS] [--dec-num-heads N] [--task det|seg]

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
  ``backbone`` of an official detector; ``--task det|seg`` says which
  official code it came from (LayerNorm eps 1e-5, outputs and wiring).

The head modules the official configs use (RPNHead, ConvFCBBoxHead,
FCNMaskHead, UPerHead, FCNHead) have the same parameter names in mmdet 3 /
mmseg 1 as in mmdet 2 / mmseg 0.x; renamings would be applied from
``HEAD_RENAMES`` and each one is printed.

Widths, depths, fpn_depth, relative-position kind (none / Swin table /
decomposed), layer-scale stages and the pre-training grid are read from the
tensors, never assumed (the released ``itpn_base_pixel`` file has a 512-wide
pyramid where the code says 256). The number of attention heads is stored
only by Swin tables; else the official head count of the width is used, or
``--num-heads``. LayerNorm eps is not stored: 1e-6 for pre-training files,
1e-5 (torch's default, which the official det/seg backbones use) for
detectors, segmentors and decomposed-rel-pos backbones; ``--norm-eps``
overrides.

Relative-position tables are written as they are in the file (made for the
fine-tuning ``img_size`` grid, which ``meta.model_cfg`` records). A table
of another grid than the model's is resized when it is loaded
(:class:`HiViTBackbone`: Swin tables bicubic, as the official
``mmcv_custom`` loaders; decomposed ``rel_pos_h/w`` linearly) and, like the
official code, decomposed tables are resized to each input's grid at
forward. The ``absolute_pos_embed`` keeps its grid (official det / seg:
14x14 whatever ``img_size``; ``pos_embed_size`` in ``meta.model_cfg`` when
it differs from ``img_size``) and is interpolated to each input's grid at
forward the official way (bicubic, scale factor ``(g + 0.1) / 14``).

Writes ``{'state_dict': ..., 'meta': {'model_cfg': ..., 'kind': ...,
'config': ..., 'tensors': ..., 'source': ...}}``. ``model_cfg`` (backbone,
neck and the pre-training heads) builds modules that load the converted
weights with no missing or unexpected key. The tool prints the architecture
it read, the tensor counts (in, out, dropped, with every dropped key named)
and the matching config under ``configs/itpn/``.
"""
import argparse
import math
import os
import os.path as osp
import re
from collections import OrderedDict
from typing import Dict, List, Optional, Tuple

import torch

# Heads of the official architectures, by stage-3 width. Checkpoints do not
# store the head count unless they have Swin relative position tables.
OFFICIAL_HEADS = {384: 6, 512: 8, 768: 12, 1024: 16}
ARCH_NAMES = {512: 'base', 768: 'large'}
_NECK_MAP = {
    'align_dim_16tofpn': 'align_16',
    'split_16to8': 'split_16to8',
    'align_dim_16to8': 'align_8',
    'block_16to8': 'blocks_8',
    'split_8to4': 'split_8to4',
    'align_dim_8to4': 'align_4',
    'block_8to4': 'blocks_4',
}
# buffers the official models store and mmitpn recomputes
_BUFFERS = ('relative_position_index', 'attn_mask')
# Whole-model heads kept for mmdet 3 / mmseg 1.
WHOLE_MODEL_HEADS = {
    'detector': ('rpn_head.', 'roi_head.'),
    'segmentor': ('decode_head.', 'auxiliary_head.'),
}
# (pattern, replacement) renamings of head keys from mmdet 2 / mmseg 0.x to
# mmdet 3 / mmseg 1. The heads of the official configs need none.
HEAD_RENAMES: List[Tuple[str, str]] = []
_PAPER_CONFIGS = {
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


def unwrap_state_dict(ckpt: dict) -> Dict[str, torch.Tensor]:
    """Find the weights in a checkpoint and strip ``module.`` prefixes."""
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


def detect_kind(sd: Dict[str, torch.Tensor]) -> str:
    """``'pixel-pretrain'``, ``'clip-pretrain'``, ``'detector'``,
    ``'segmentor'`` or ``'backbone'`` (see the module docstring)."""
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


def check_not_mmitpn(sd: Dict[str, torch.Tensor]) -> None:
    """Refuse a file whose keys are already mmitpn's."""
    marks = ('backbone.stages.', 'backbone.merges.', 'neck.split_16to8.',
             'stages.0.0.', 'merges.0.')
    hit = next((k for k in sd if k.startswith(marks)), None)
    if hit is not None:
        raise ValueError(
            f'This checkpoint is already in mmitpn format (key {hit!r}): no '
            f'conversion needed; load it directly (init_cfg=dict('
            f"type='Pretrained', checkpoint=..., prefix='backbone.'), "
            f'load_from, or tools/test.py).')


def _decoder_key(k: str) -> Optional[str]:
    """mmitpn name (under ``head.decoder.``) of an official pixel-decoder
    key, or None."""
    if k == 'mask_token':
        return 'mask_token'
    if k == 'decoder_pos_embed':
        return 'pos_embed'
    m = re.match(r'decoder_embed\.(\d)\.([01])\.(.+)$', k)
    if m:
        # official order is stride 16, 8, 4; mmitpn is finest first
        part = 'norm' if m.group(2) == '0' else 'proj'
        return f'level_embeds.{2 - int(m.group(1))}.{part}.{m.group(3)}'
    for src, dst in (('decoder_blocks.', 'blocks.'),
                     ('decoder_norm.', 'norm.'), ('decoder_pred.', 'pred.')):
        if k.startswith(src):
            return dst + k[len(src):]
    return None


def _clip_head_key(k: str) -> Optional[str]:
    """mmitpn name of an official CLIP pre-training head key (pyramid head
    under ``head.decoder.``, side head under ``side_head.decoder.``), or
    None."""
    m = re.match(r'decoder_embed\.(\d)\.([01])\.(.+)$', k)
    if m:
        part = 'norm' if m.group(2) == '0' else 'proj'
        return (f'head.decoder.level_embeds.{2 - int(m.group(1))}.{part}.'
                f'{m.group(3)}')
    m = re.match(r'cls_pt_layers\.(\d+)\.(.+)$', k)
    if m:
        return (f'side_head.decoder.blocks.{m.group(1)}.'
                f'{_rename_block_param(m.group(2))}')
    for src, dst in (('norm.', 'head.decoder.norm.'),
                     ('lm_head.', 'head.decoder.pred.'),
                     ('norm_cls.', 'side_head.decoder.norm.'),
                     ('lm_cls_head.', 'side_head.decoder.pred.')):
        if k.startswith(src):
            return dst + k[len(src):]
    return None


def _rename_block_param(rest: str) -> str:
    return {'gamma_1': 'gamma1', 'gamma_2': 'gamma2'}.get(rest, rest)


def _rename_head_key(k: str, renamed: List[str]) -> str:
    for pattern, repl in HEAD_RENAMES:
        new = re.sub(pattern, repl, k)
        if new != k:
            renamed.append(f'{k} -> {new}')
            return new
    return k


def _square_side(n: int, what: str) -> int:
    s = int(round(math.sqrt(n)))
    if s * s != n:
        raise ValueError(f'{what} has {n} entries, not a square grid.')
    return s


def convert_official(
    src: Dict[str, torch.Tensor],
    num_heads: Optional[int] = None,
    norm_eps: Optional[float] = None,
    dec_num_heads: Optional[int] = None,
    task: Optional[str] = None,
) -> Tuple[Dict[str, torch.Tensor], dict, List[str], List[str]]:
    """Map official iTPN keys to mmitpn (mmdet 3 / mmseg 1) keys.

    Args:
        src (dict): Official state dict (already unwrapped).
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
        tuple: ``(state_dict, model_cfg, unmapped_keys, notes)``; the notes
        start with the kind and the architecture and end with the tensor
        counts. ``model_cfg['_meta']`` holds the kind, counts, dropped keys
        and renamings (popped by :func:`convert_checkpoint`).
    """
    if task not in (None, 'det', 'seg'):
        raise ValueError(f"task must be 'det', 'seg' or None, got {task!r}.")
    check_not_mmitpn(src)
    kind = detect_kind(src)
    implied = {'detector': 'det', 'segmentor': 'seg'}.get(kind)
    if task is not None and implied is not None and task != implied:
        raise ValueError(f'--task {task} contradicts the checkpoint, a '
                         f'{kind} (its heads say task {implied}); drop '
                         f'--task.')
    if task is None:
        task = {'detector': 'det', 'segmentor': 'seg'}.get(kind)
    sd = OrderedDict()
    heads_sd = OrderedDict()
    source_name = {}  # key in sd -> key in the file
    whole = WHOLE_MODEL_HEADS.get(kind, ())
    for k, v in src.items():
        if k.startswith(whole):
            heads_sd[k] = v
        # detection / segmentation checkpoints nest the backbone
        elif k.startswith('backbone.'):
            sd[k[len('backbone.'):]] = v
            source_name[k[len('backbone.'):]] = k
        else:
            sd[k] = v
            source_name[k] = k
    if 'patch_embed.proj.weight' not in sd:
        raise ValueError(
            'No patch_embed.proj.weight in the checkpoint: this is not an '
            'official iTPN / HiViT checkpoint (keys start with '
            f'{sorted({k.split(".")[0] for k in src})[:8]}); pass an '
            f'official iTPN pre-training, detection or segmentation file.')
    C = sd['patch_embed.proj.weight'].shape[0] * 4
    if num_heads is not None and (num_heads < 1 or C % num_heads):
        raise ValueError(f'--num-heads {num_heads} does not divide the '
                         f'stage-3 width {C} read from the checkpoint; pass '
                         f'a divisor of {C} (official: '
                         f'{OFFICIAL_HEADS.get(C, "none for this width")}).')
    if dec_num_heads is not None and dec_num_heads < 1:
        raise ValueError(f'--dec-num-heads must be >= 1, got '
                         f'{dec_num_heads}.')
    notes = []
    out = OrderedDict()
    unmapped, dropped, merged, renamed = [], [], [], []

    # backbone blocks: a flat list of stage-1 blocks, merge, stage-2
    # blocks, merge, stage-3 blocks
    block_ids = sorted({int(m.group(1)) for k in sd
                        for m in [re.match(r'blocks\.(\d+)\.', k)] if m})
    merges = [i for i in block_ids if f'blocks.{i}.reduction.weight' in sd]
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

    is_clip = kind == 'clip-pretrain'
    for k, v in sd.items():
        m = re.match(r'blocks\.(\d+)\.(.+)$', k)
        if k.endswith(_BUFFERS):
            dropped.append(source_name[k])  # recomputed by mmitpn
        elif k.startswith('patch_embed.'):
            out['backbone.' + k] = v
        elif k in ('absolute_pos_embed', 'pos_embed'):
            out['backbone.pos_embed'] = v
        elif m:
            kind_, s, jj = place[int(m.group(1))]
            rest = m.group(2)
            if rest in ('attn.q_bias', 'attn.v_bias'):
                merged.append(source_name[k])  # into attn.qkv.bias below
            elif kind_ == 'merges':
                out[f'backbone.merges.{s}.{rest}'] = v
            else:
                out[f'backbone.stages.{s}.{jj}.'
                    f'{_rename_block_param(rest)}'] = v
        elif k.split('.')[0] in _NECK_MAP:
            head, *tail = k.split('.')
            out['.'.join(['neck', _NECK_MAP[head]] + tail)] = v
        elif k.startswith('fpn_modules.'):
            _, idx, *tail = k.split('.')
            # official order is stride 16, 8, 4; mmitpn is finest first
            out['.'.join(['neck', 'out_blocks', str(2 - int(idx))] +
                         tail)] = v
        elif is_clip and k == 'mask_token':
            out['backbone.mask_token'] = v
        elif is_clip and _clip_head_key(k) is not None:
            out[_clip_head_key(k)] = v
        elif k in ('norm.weight', 'norm.bias'):
            out['backbone.' + k] = v
        elif not is_clip and _decoder_key(k) is not None:
            out['head.decoder.' + _decoder_key(k)] = v
        else:
            unmapped.append(source_name[k])
    for k, v in heads_sd.items():
        out[_rename_head_key(k, renamed)] = v

    # BEiT-style separate q / v biases -> one qkv bias with zero k bias
    for i, (kind_, s, jj) in place.items():
        qb = sd.get(f'blocks.{i}.attn.q_bias')
        if qb is not None:
            vb = sd[f'blocks.{i}.attn.v_bias']
            out[f'backbone.stages.{s}.{jj}.attn.qkv.bias'] = torch.cat(
                [qb, torch.zeros_like(qb), vb])

    # ---- infer the architecture from the tensors
    last = f'backbone.stages.2.{depths[2] - 1}.'
    swin = [v for k, v in out.items() if k.startswith('backbone.')
            and k.endswith('relative_position_bias_table')]
    decomposed = [v for k, v in out.items() if k.startswith('backbone.')
                  and k.endswith('attn.rel_pos_h')]
    if swin and decomposed:
        raise ValueError('The checkpoint has both Swin relative position '
                         'tables and decomposed rel_pos_h/w: not an official '
                         'iTPN checkpoint.')
    rpe_type = 'swin' if swin else 'decomposed' if decomposed else None
    if swin:
        inferred = swin[0].shape[1]
        if num_heads is not None and num_heads != inferred:
            raise ValueError(f'--num-heads {num_heads} contradicts the '
                             f'relative position tables ({inferred} heads).')
        num_heads = inferred
    elif decomposed and num_heads is None and C not in OFFICIAL_HEADS:
        # rel_pos_h is (2 * grid - 1, head_dim)
        num_heads = C // decomposed[0].shape[1]
    elif num_heads is None:
        if C not in OFFICIAL_HEADS:
            raise ValueError(
                f'Stage-3 width {C} is not an official iTPN width and the '
                f'checkpoint has no relative position tables, so the number '
                f'of attention heads cannot be read from it; pass '
                f'--num-heads.')
        num_heads = OFFICIAL_HEADS[C]
        notes.append(f'num_heads={num_heads} taken from the official '
                     f'architecture of width {C} (not stored in the file)')
    if decomposed and decomposed[0].shape[1] * num_heads != C:
        raise ValueError(f'rel_pos_h has head_dim {decomposed[0].shape[1]}, '
                         f'which is not width {C} / {num_heads} heads; pass '
                         f'--num-heads {C // decomposed[0].shape[1]}.')
    if norm_eps is None:
        norm_eps = 1e-5 if (task is not None or rpe_type == 'decomposed') \
            else 1e-6
    qkv_bias = last + 'attn.qkv.bias' in out
    ls_stages = tuple(
        s for s in range(3)
        if f'backbone.stages.{s}.0.gamma2' in out)
    mlp_ratio = out[last + 'mlp.fc1.weight'].shape[0] / C
    stem_key = 'backbone.stages.0.0.mlp.fc1.weight'
    stem_mlp_ratio = out[stem_key].shape[0] / (C // 4) \
        if stem_key in out else 3.
    backbone = dict(
        type='mmitpn.HiViTBackbone',
        arch=dict(embed_dims=C, depths=depths, num_heads=num_heads),
        stem_mlp_ratio=stem_mlp_ratio,
        mlp_ratio=mlp_ratio,
        qkv_bias=qkv_bias,
        rpe_type=rpe_type,
        norm_eps=norm_eps,
        final_norm='backbone.norm.weight' in out,
        out_indices=(0, 1, 2))
    if ls_stages:
        backbone['layer_scale_init_value'] = 0.1
        backbone['layer_scale_stages'] = ls_stages
    # the grid the relative positions were made for is the fine-tuning
    # img_size; the position embedding keeps its own grid (official det /
    # seg: 14x14 at any img_size, interpolated at every forward)
    grid = None
    if swin:
        grid = (_square_side(swin[0].shape[0], 'A relative position table') +
                1) // 2
    elif decomposed:
        grid = (decomposed[0].shape[0] + 1) // 2
    if 'backbone.pos_embed' in out:
        n0 = out['backbone.pos_embed'].shape[1]
        pos_grid = _square_side(n0, 'The position embedding')
        backbone['img_size'] = (grid or pos_grid) * 16
        if grid and grid != pos_grid:
            backbone['pos_embed_size'] = pos_grid * 16
        backbone['pos_embed_type'] = 'learnable'
        backbone['pos_embed_init'] = 'trunc_normal' if is_clip else 'sincos'
    else:
        backbone['pos_embed_type'] = None
        if grid:
            backbone['img_size'] = grid * 16
    if is_clip:
        backbone['use_mask_token'] = 'backbone.mask_token' in out
    model_cfg = dict(backbone=backbone)

    F_ = None
    if 'neck.split_16to8.reduction.weight' in out:
        F_ = out['neck.split_16to8.reduction.weight'].shape[0] // 4
        fpn_depth = len({k.split('.')[2] for k in out
                         if k.startswith('neck.blocks_8.')})
        neck_ratio = out['neck.out_blocks.0.mlp.fc1.weight'].shape[0] / F_
        neck = dict(
            type='mmitpn.ITPNPyramid',
            in_channels=(C // 4, C // 2, C),
            out_channels=F_,
            fpn_depth=fpn_depth,
            mlp_ratio=neck_ratio,
            norm_eps=norm_eps,
            num_outs=3 if kind.endswith('pretrain') else 5)
        if task == 'seg':
            # official UPerNet backbone: each output concatenated with the
            # backbone map of its stride, 4th level max-pooled
            neck.update(num_outs=4, concat_inputs=True, extra_pool='max')
        model_cfg['neck'] = neck
        notes.append(f'pyramid: width {F_}, fpn_depth {fpn_depth}' +
                     (', concatenated with the backbone maps, 4th level '
                      'max-pooled' if task == 'seg' else ''))
    else:
        notes.append('no pyramid weights found (a HiViT-only checkpoint)')
    if 'head.decoder.pred.weight' in out and not is_clip:
        D = out['head.decoder.pred.weight'].shape[1]
        patch = int(round(math.sqrt(out['head.decoder.pred.weight'].shape[0]
                                    / 3)))
        dec_depth = len({k.split('.')[3] for k in out
                         if k.startswith('head.decoder.blocks.')})
        heads = dec_num_heads or D // 32
        if D % heads:
            raise ValueError(f'--dec-num-heads {heads} does not divide the '
                             f'decoder width {D}.')
        dec_grid = out['head.decoder.pos_embed'].shape[1]
        model_cfg['head'] = dict(
            type='mmitpn.ITPNPixelHead',
            fpn_channels=out['head.decoder.level_embeds.2.proj.weight'].shape[
                1],
            embed_dims=D,
            depth=dec_depth,
            num_heads=heads,
            img_size=int(round(math.sqrt(dec_grid))) * patch,
            patch_size=patch,
            norm_eps=norm_eps)
        notes.append(f'pixel decoder: width {D}, depth {dec_depth}, heads '
                     f'{heads}' + ('' if dec_num_heads else
                                   ' (assumed: width / 32; not stored)'))
    if is_clip:
        model_cfg.update(_clip_heads_cfg(out, C, num_heads, F_))
        notes.append(f'CLIP heads: target width '
                     f'{model_cfg["head"]["target_dims"]}, side head of '
                     f'{model_cfg.get("side_head", {}).get("depth", 0)} '
                     f'blocks')
    rpe_name = {None: 'none', 'swin': 'Swin table',
                'decomposed': 'decomposed (ViTDet)'}[rpe_type]
    notes.insert(0, f'kind: {kind}' + (f' (task {task})' if task else ''))
    notes.insert(1, f'backbone: width {C}, depths {tuple(depths)}, heads '
                 f'{num_heads}, rpe {rpe_name}' +
                 (f' for a {grid}x{grid} grid' if grid else '') +
                 f', layer scale on stages {ls_stages or "none"}, '
                 f'LayerNorm eps {norm_eps:g}')
    if heads_sd:
        notes.append(
            f'{len(heads_sd)} head tensors kept ('
            f'{", ".join(p.rstrip(".") for p in whole)}); renamed: ' +
            ('; '.join(renamed) if renamed else
             'none (same names in mmdet 3 / mmseg 1)'))
    dropped_all = dropped + unmapped
    notes.append(
        f'tensors: in {len(src)}, out {len(out)}, dropped '
        f'{len(dropped_all)}' +
        (f' ({len(dropped)} recomputed buffers: '
         f'{_summarise(dropped)})' if dropped else '') +
        (f', {len(merged)} q/v biases merged into '
         f'{len(merged) // 2} qkv biases' if merged else ''))
    model_cfg['_meta'] = dict(
        kind=kind, task=task,
        tensors={'in': len(src), 'out': len(out),
                 'dropped': dropped_all, 'merged': merged},
        renamed=renamed,
        arch_name=ARCH_NAMES.get(C),
        supervision='clip' if ls_stages else 'pixel',
        roi=('cascade' if any(k.startswith('roi_head.bbox_head.0.')
                              for k in heads_sd) else 'mask-rcnn')
        if kind == 'detector' else 'upernet' if kind == 'segmentor'
        else None)
    return out, model_cfg, unmapped, notes


def _clip_heads_cfg(out: dict, C: int, num_heads: int,
                    F_: Optional[int]) -> dict:
    """Configs of the CLIP pre-training heads read from their tensors."""
    cfg = dict()
    if 'head.decoder.pred.weight' in out:
        levels = sorted({int(k.split('.')[3]) for k in out
                         if k.startswith('head.decoder.level_embeds.')})
        sizes = (4, 2, 1)[3 - len(levels):]
        cfg['head'] = dict(
            type='mmitpn.CLIPDistillHead',
            in_channels=F_ if F_ is not None else C,
            level_sizes=sizes,
            embed_dims=out['head.decoder.pred.weight'].shape[1],
            target_dims=out['head.decoder.pred.weight'].shape[0])
    if 'side_head.decoder.pred.weight' in out:
        depth = len({k.split('.')[3] for k in out
                     if k.startswith('side_head.decoder.blocks.')})
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
            in_channels=C,
            level_sizes=(1, ),
            embed_dims=C,
            target_dims=out['side_head.decoder.pred.weight'].shape[0],
            depth=depth,
            num_heads=num_heads,
            embed_inputs=False,
            block_cfg=block_cfg)
    return cfg


def _summarise(keys: List[str]) -> str:
    """``'a.*.relative_position_index x 3, ...'``: keys grouped by their
    pattern with numbers replaced."""
    groups = OrderedDict()
    for k in keys:
        pat = re.sub(r'\.\d+\.', '.*.', k)
        groups[pat] = groups.get(pat, 0) + 1
    return ', '.join(p if n == 1 else f'{p} x {n}' for p, n in groups.items())


def matching_configs(meta: dict) -> List[str]:
    """``configs/itpn/`` configs of the architecture a conversion found:
    the paper config of a fine-tuned model, or the fine-tuning configs of a
    pre-training of that size and supervision."""
    arch, sup = meta.get('arch_name'), meta.get('supervision')
    if meta['kind'] in ('detector', 'segmentor'):
        return _PAPER_CONFIGS.get((meta['kind'], meta['roi'], arch, sup), [])
    if arch is None or meta['kind'] == 'backbone':
        return []
    return [
        n for key, names in _PAPER_CONFIGS.items()
        if key[2] == arch and key[3] == sup for n in names
    ]


def convert_checkpoint(ckpt: dict, **kwargs) -> Tuple[dict, List[str]]:
    """Convert a loaded official checkpoint.

    Args:
        ckpt (dict): The loaded file.
        **kwargs: Arguments of :func:`convert_official`.

    Returns:
        tuple: ``({'state_dict', 'meta'}, notes)``.
    """
    sd, model_cfg, unmapped, notes = convert_official(
        unwrap_state_dict(ckpt), **kwargs)
    meta = model_cfg.pop('_meta')
    configs = matching_configs(meta)
    if unmapped:
        notes.append(f'{len(unmapped)} keys not converted (not part of the '
                     f'backbone, pyramid or heads): {", ".join(unmapped)}')
    notes.append(
        'config: ' + (', '.join(f'configs/itpn/{c}' for c in configs)
                      if configs else
                      'no configs/itpn/ config for this architecture'))
    return dict(
        state_dict=sd,
        meta=dict(
            model_cfg=model_cfg,
            kind=meta['kind'],
            task=meta['task'],
            config=[f'configs/itpn/{c}' for c in configs],
            tensors=meta['tensors'],
            renamed=meta['renamed'],
            unmapped_keys=unmapped)), notes


def _check_paths(src: str, dst: str) -> None:
    """Refuse bad paths before reading anything."""
    if not osp.isfile(src):
        raise SystemExit(f'{src} is not a file; pass the official '
                         f'checkpoint (.pth).')
    if osp.abspath(src) == osp.abspath(dst) or (
            osp.exists(dst) and osp.samefile(src, dst)):
        raise SystemExit(f'DST {dst} is SRC: the official file would be '
                         f'overwritten; write the conversion elsewhere.')
    folder = osp.dirname(osp.abspath(dst))
    if not osp.isdir(folder):
        raise SystemExit(f'Output folder {folder} does not exist; create it '
                         f'(mkdir -p {folder}) or choose another DST.')
    if not os.access(folder, os.W_OK):
        raise SystemExit(f'Output folder {folder} is not writable.')


def main(argv=None):
    parser = argparse.ArgumentParser(
        description='Convert an official iTPN checkpoint (pre-training, '
        'detector, segmentor) to mmitpn / mmdet 3 / mmseg 1 keys.')
    parser.add_argument('src', help='official checkpoint (.pth)')
    parser.add_argument('dst', help='output path')
    parser.add_argument(
        '--num-heads',
        type=int,
        default=None,
        help='stage-3 attention heads, when the checkpoint cannot tell '
        '(no Swin relative position tables and a non-official width)')
    parser.add_argument(
        '--norm-eps',
        type=float,
        default=None,
        help='LayerNorm epsilon recorded in the config (default: 1e-6 for '
        'pre-training files, 1e-5 for official detectors / segmentors)')
    parser.add_argument(
        '--dec-num-heads',
        type=int,
        default=None,
        help='heads of the pixel decoder (default: width / 32, the '
        'official 512-wide 16-head decoder)')
    parser.add_argument(
        '--task',
        choices=('det', 'seg'),
        default=None,
        help='for a bare backbone state dict: the official det or seg code '
        'it comes from (eps 1e-5; seg: concatenated, max-pooled outputs)')
    args = parser.parse_args(argv)

    _check_paths(args.src, args.dst)
    try:
        ckpt = torch.load(args.src, map_location='cpu', weights_only=False)
    except Exception as e:  # noqa: BLE001 -- report any load failure
        raise SystemExit(f'Cannot read {args.src}: {e}. Is it a complete '
                         f'PyTorch checkpoint (not truncated)?')
    out, notes = convert_checkpoint(
        ckpt,
        num_heads=args.num_heads,
        norm_eps=args.norm_eps,
        dec_num_heads=args.dec_num_heads,
        task=args.task)
    for note in notes:
        print(f'[convert] {note}')
    out['meta']['source'] = args.src
    torch.save(out, args.dst)
    print(f'[convert] wrote {len(out["state_dict"])} tensors to {args.dst}')


if __name__ == '__main__':
    try:
        main()
    except ValueError as e:
        # one line for the user; MMITPN_DEBUG=1 shows the traceback
        if os.environ.get('MMITPN_DEBUG'):
            raise
        raise SystemExit(f'itpn_to_mmitpn: {e}')
