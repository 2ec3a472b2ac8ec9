#!/usr/bin/env python
"""Convert an official iTPN checkpoint to mmitpn.

    python tools/model_converters/itpn_to_mmitpn.py SRC DST [--num-heads N]

Accepts the official pixel and CLIP pre-training checkpoints and the
official detection / segmentation checkpoints (weights under ``model``,
``state_dict`` or ``module``; ``module.`` and ``backbone.`` prefixes).
Widths and depths are read from the tensors, never assumed (the released
``itpn_base_pixel`` file has a 512-wide pyramid where the code says 256).
Writes ``{'state_dict': ..., 'meta': {'model_cfg': {'backbone': ...,
'neck': ...}, ...}}`` whose ``model_cfg`` builds modules that load the
converted weights with no missing or unexpected key.
"""
import argparse
import math
import re
from collections import OrderedDict
from typing import Dict, List, Optional, Tuple

import torch

# Heads of the official architectures, by stage-3 width. Checkpoints do not
# store the head count unless they have relative position bias tables.
OFFICIAL_HEADS = {384: 6, 512: 8, 768: 12, 1024: 16}
_NECK_MAP = {
    'align_dim_16tofpn': 'align_16',
    'split_16to8': 'split_16to8',
    'align_dim_16to8': 'align_8',
    'block_16to8': 'blocks_8',
    'split_8to4': 'split_8to4',
    'align_dim_8to4': 'align_4',
    'block_8to4': 'blocks_4',
}
_DROPPED_BUFFERS = ('relative_position_index', 'attn_mask')


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


def _rename_block_param(rest: str) -> str:
    return {'gamma_1': 'gamma1', 'gamma_2': 'gamma2'}.get(rest, rest)


def convert_official(
    src: Dict[str, torch.Tensor],
    num_heads: Optional[int] = None,
    norm_eps: float = 1e-6,
    dec_num_heads: Optional[int] = None,
) -> Tuple[Dict[str, torch.Tensor], dict, List[str], List[str]]:
    """Map official iTPN keys to mmitpn keys.

    Args:
        src (dict): Official state dict (already unwrapped).
        num_heads (int, optional): Stage-3 heads; read from the relative
            position bias tables if present, else from the official table by
            width, else this argument is required.
        norm_eps (float): LayerNorm epsilon to record in the config (the
            official pre-training uses 1e-6; its detection code 1e-5).
            Defaults to 1e-6.
        dec_num_heads (int, optional): Heads of the pixel decoder (not
            stored in the file); defaults to width / 32, the official
            512-wide, 16-head decoder.

    Returns:
        tuple: ``(state_dict, model_cfg, unmapped_keys, notes)``.
    """
    sd = OrderedDict()
    for k, v in src.items():
        # detection / segmentation checkpoints nest the backbone
        sd[k[len('backbone.'):] if k.startswith('backbone.') else k] = v
    if 'patch_embed.proj.weight' not in sd:
        raise ValueError(
            'No patch_embed.proj.weight in the checkpoint: this is not an '
            'official iTPN / HiViT checkpoint (keys start with '
            f'{sorted({k.split(".")[0] for k in sd})[:8]}); pass an '
            f'official iTPN pre-training, detection or segmentation file.')
    notes = []
    C = sd['patch_embed.proj.weight'].shape[0] * 4
    out = OrderedDict()
    unmapped = []

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

    for k, v in sd.items():
        m = re.match(r'blocks\.(\d+)\.(.+)$', k)
        if k.startswith('patch_embed.'):
            out['backbone.' + k] = v
        elif k in ('absolute_pos_embed', 'pos_embed'):
            out['backbone.pos_embed'] = v
        elif m:
            kind, s, jj = place[int(m.group(1))]
            rest = m.group(2)
            if rest.endswith(_DROPPED_BUFFERS):
                continue
            if rest in ('attn.q_bias', 'attn.v_bias'):
                continue  # folded into attn.qkv.bias below
            if kind == 'merges':
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
        elif k == 'norm.weight' or k == 'norm.bias':
            out['backbone.' + k] = v
        elif _decoder_key(k) is not None:
            out['head.decoder.' + _decoder_key(k)] = v
        else:
            unmapped.append(k)

    # BEiT-style separate q / v biases -> one qkv bias with zero k bias
    for i, (kind, s, jj) in place.items():
        qb = sd.get(f'blocks.{i}.attn.q_bias')
        if qb is not None:
            vb = sd[f'blocks.{i}.attn.v_bias']
            out[f'backbone.stages.{s}.{jj}.attn.qkv.bias'] = torch.cat(
                [qb, torch.zeros_like(qb), vb])

    # ---- infer the architecture from the tensors
    last = f'backbone.stages.2.{depths[2] - 1}.'
    use_rpe = any(k.endswith('relative_position_bias_table') for k in out)
    if use_rpe:
        table = next(v for k, v in out.items()
                     if k.endswith('relative_position_bias_table'))
        inferred = table.shape[1]
        if num_heads is not None and num_heads != inferred:
            raise ValueError(f'--num-heads {num_heads} contradicts the '
                             f'relative position tables ({inferred} heads).')
        num_heads = inferred
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
    qkv_bias = last + 'attn.qkv.bias' in out
    layer_scale = last + 'gamma1' in out
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
        use_rpe=use_rpe,
        norm_eps=norm_eps,
        final_norm='backbone.norm.weight' in out,
        out_indices=(0, 1, 2))
    if layer_scale:
        backbone['layer_scale_init_value'] = 0.1
    if 'backbone.pos_embed' in out:
        n0 = out['backbone.pos_embed'].shape[1]
        s = int(round(math.sqrt(n0)))
        if s * s != n0:
            raise ValueError(f'Position embedding of {n0} tokens is not a '
                             f'square grid.')
        backbone['img_size'] = s * 16
        backbone['pos_embed_type'] = 'sincos'
    else:
        backbone['pos_embed_type'] = None
        if use_rpe:
            table = next(v for k, v in out.items()
                         if k.endswith('relative_position_bias_table'))
            backbone['img_size'] = (int(round(math.sqrt(
                table.shape[0]))) + 1) // 2 * 16
    model_cfg = dict(backbone=backbone)

    if 'neck.split_16to8.reduction.weight' in out:
        F_ = out['neck.split_16to8.reduction.weight'].shape[0] // 4
        fpn_depth = len({k.split('.')[2] for k in out
                         if k.startswith('neck.blocks_8.')})
        neck_ratio = out['neck.out_blocks.0.mlp.fc1.weight'].shape[0] / F_
        model_cfg['neck'] = dict(
            type='mmitpn.ITPNPyramid',
            in_channels=(C // 4, C // 2, C),
            out_channels=F_,
            fpn_depth=fpn_depth,
            mlp_ratio=neck_ratio,
            norm_eps=norm_eps,
            num_outs=5)
        notes.append(f'pyramid: width {F_}, fpn_depth {fpn_depth}')
    else:
        notes.append('no pyramid weights found (a HiViT-only checkpoint)')
    if 'head.decoder.pred.weight' in out:
        D = out['head.decoder.pred.weight'].shape[1]
        patch = int(round(math.sqrt(out['head.decoder.pred.weight'].shape[0]
                                    / 3)))
        dec_depth = len({k.split('.')[3] for k in out
                         if k.startswith('head.decoder.blocks.')})
        heads = dec_num_heads or D // 32
        grid = out['head.decoder.pos_embed'].shape[1]
        model_cfg['head'] = dict(
            type='mmitpn.ITPNPixelHead',
            fpn_channels=out['head.decoder.level_embeds.2.proj.weight'].shape[
                1],
            embed_dims=D,
            depth=dec_depth,
            num_heads=heads,
            img_size=int(round(math.sqrt(grid))) * patch,
            patch_size=patch,
            norm_eps=norm_eps)
        notes.append(f'pixel decoder: width {D}, depth {dec_depth}, heads '
                     f'{heads}' + ('' if dec_num_heads else
                                   ' (assumed: width / 32; not stored)'))
    notes.insert(0, f'backbone: width {C}, depths {tuple(depths)}, heads '
                 f'{num_heads}, rpe {use_rpe}, layer scale {layer_scale}')
    return out, model_cfg, unmapped, notes


def main(argv=None):
    parser = argparse.ArgumentParser(
        description='Convert an official iTPN checkpoint to mmitpn keys.')
    parser.add_argument('src', help='official checkpoint (.pth)')
    parser.add_argument('dst', help='output path')
    parser.add_argument(
        '--num-heads',
        type=int,
        default=None,
        help='stage-3 attention heads, when the checkpoint cannot tell '
        '(no relative position tables and a non-official width)')
    parser.add_argument(
        '--norm-eps',
        type=float,
        default=1e-6,
        help='LayerNorm epsilon recorded in the config (official '
        'pre-training 1e-6; the official detection code used 1e-5)')
    parser.add_argument(
        '--dec-num-heads',
        type=int,
        default=None,
        help='heads of the pixel decoder (default: width / 32, the '
        'official 512-wide 16-head decoder)')
    args = parser.parse_args(argv)

    try:
        ckpt = torch.load(args.src, map_location='cpu', weights_only=False)
    except Exception as e:  # noqa: BLE001 -- report any load failure
        raise SystemExit(f'Cannot read {args.src}: {e}. Is it a complete '
                         f'PyTorch checkpoint (not truncated)?')
    sd, model_cfg, unmapped, notes = convert_official(
        unwrap_state_dict(ckpt), args.num_heads, args.norm_eps,
        args.dec_num_heads)
    for note in notes:
        print(f'[convert] {note}')
    if unmapped:
        print(f'[convert] {len(unmapped)} keys not converted (not part of '
              f'the backbone, pyramid or pixel decoder): '
              f'{", ".join(unmapped[:12])}{" ..." if len(unmapped) > 12 else ""}')
    torch.save(
        dict(
            state_dict=sd,
            meta=dict(
                model_cfg=model_cfg,
                source=args.src,
                unmapped_keys=unmapped)), args.dst)
    print(f'[convert] wrote {len(sd)} tensors to {args.dst}')


if __name__ == '__main__':
    main()
