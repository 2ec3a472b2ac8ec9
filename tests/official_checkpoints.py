"""Official-format iTPN checkpoints for the tests of the converter
(:mod:`mmitpn.converters.official`), its command and the configs.

The official backbone + pyramid key layout comes from the golden files
(computed by the official code); the other tensors get the names the
official mmdet 2.24 / mmseg 0.x forks and the official ``itpn_clip``
pre-training give them, written out here (not read from mmdet 3 / mmseg 1,
nor from the converter).
"""
import torch
from conftest import golden_files

GOLDEN = next(f for f in golden_files() if f.name == 'itpn_official_tiny.pt')
DETSEG = next(
    (f for f in golden_files() if f.name == 'itpn_official_detseg_tiny.pt'),
    None)
NUM_CLASSES = 3


def perturbed(sd: dict, seed: int = 0) -> dict:
    """Distinct values everywhere (no LayerNorm ones, no zeros)."""
    g = torch.Generator().manual_seed(seed)
    return {
        k: v + 0.1 * torch.randn(v.shape, generator=g)
        if v.is_floating_point() else v
        for k, v in sd.items()
    }


def pixel_backbone_state(official: dict) -> dict:
    """The official pixel pre-training without its decoder: the keys the
    official detection backbone uses (the golden file lists the others,
    as the official code reported them)."""
    unused = set(official['detection']['unused_keys'])
    return {k: v for k, v in official['state_dict'].items()
            if k not in unused}


# ------------------------------------------------- official head tensors
def _conv_module(prefix, cin, cout, k, norm):
    """An mmcv ConvModule: bias only without norm; BN as ``bn``."""
    t = {f'{prefix}.conv.weight': (cout, cin, k, k)}
    if norm:
        t.update({f'{prefix}.bn.{n}': (cout, )
                  for n in ('weight', 'bias', 'running_mean', 'running_var')})
        t[f'{prefix}.bn.num_batches_tracked'] = ()
    else:
        t[f'{prefix}.conv.bias'] = (cout, )
    return t


def _bbox_head(p, F, fc, agnostic):
    t = {}
    for i in range(4):  # 4conv1fc with SyncBN
        t.update(_conv_module(f'{p}.shared_convs.{i}', F, F, 3, True))
    t.update({
        f'{p}.shared_fcs.0.weight': (fc, F * 7 * 7),
        f'{p}.shared_fcs.0.bias': (fc, ),
        f'{p}.fc_cls.weight': (NUM_CLASSES + 1, fc),
        f'{p}.fc_cls.bias': (NUM_CLASSES + 1, ),
        f'{p}.fc_reg.weight': (4 if agnostic else 4 * NUM_CLASSES, fc),
        f'{p}.fc_reg.bias': (4 if agnostic else 4 * NUM_CLASSES, ),
    })
    return t


def _mask_head(p, F):
    t = {}
    for i in range(4):  # FCN mask head without norm
        t.update(_conv_module(f'{p}.convs.{i}', F, F, 3, False))
    t.update({
        f'{p}.upsample.weight': (F, F, 2, 2),
        f'{p}.upsample.bias': (F, ),
        f'{p}.conv_logits.weight': (NUM_CLASSES, F, 1, 1),
        f'{p}.conv_logits.bias': (NUM_CLASSES, ),
    })
    return t


def mmdet2_head_shapes(F: int, cascade: bool = False, fc: int = 32) -> dict:
    """Key -> shape of the heads of an official mmdet 2.24 Mask R-CNN /
    Cascade Mask R-CNN (RPNHead, ConvFCBBoxHead 4conv1fc SyncBN,
    FCNMaskHead), as ``state_dict()`` names them."""
    t = {
        'rpn_head.rpn_conv.weight': (F, F, 3, 3),
        'rpn_head.rpn_conv.bias': (F, ),
        'rpn_head.rpn_cls.weight': (3, F, 1, 1),
        'rpn_head.rpn_cls.bias': (3, ),
        'rpn_head.rpn_reg.weight': (12, F, 1, 1),
        'rpn_head.rpn_reg.bias': (12, ),
    }
    if cascade:
        for s in range(3):
            t.update(_bbox_head(f'roi_head.bbox_head.{s}', F, fc, False))
            t.update(_mask_head(f'roi_head.mask_head.{s}', F))
    else:
        t.update(_bbox_head('roi_head.bbox_head', F, fc, False))
        t.update(_mask_head('roi_head.mask_head', F))
    return t


def mmseg0_head_shapes(widths, channels: int = 32,
                       aux_channels: int = 16) -> dict:
    """Key -> shape of an official mmseg 0.x UPerHead (PPM scales 1, 2, 3,
    6) + FCNHead auxiliary head (one conv) with SyncBN."""
    C = channels
    t = {}
    for i in range(4):
        t.update(_conv_module(f'decode_head.psp_modules.{i}.1', widths[-1],
                              C, 1, True))
    t.update(_conv_module('decode_head.bottleneck', widths[-1] + 4 * C, C, 3,
                          True))
    for i in range(3):
        t.update(_conv_module(f'decode_head.lateral_convs.{i}', widths[i], C,
                              1, True))
        t.update(_conv_module(f'decode_head.fpn_convs.{i}', C, C, 3, True))
    t.update(_conv_module('decode_head.fpn_bottleneck', 4 * C, C, 3, True))
    t.update({
        'decode_head.conv_seg.weight': (NUM_CLASSES, C, 1, 1),
        'decode_head.conv_seg.bias': (NUM_CLASSES, ),
    })
    t.update(_conv_module('auxiliary_head.convs.0', widths[2], aux_channels,
                          3, True))
    t.update({
        'auxiliary_head.conv_seg.weight': (NUM_CLASSES, aux_channels, 1, 1),
        'auxiliary_head.conv_seg.bias': (NUM_CLASSES, ),
    })
    return t


def random_tensors(shapes: dict, seed: int) -> dict:
    """Random tensors of the given shapes (``()``: a step counter, 7)."""
    g = torch.Generator().manual_seed(seed)
    return {
        k: torch.tensor(7) if s == () else torch.randn(s, generator=g)
        for k, s in shapes.items()
    }


def whole_checkpoint(backbone_sd: dict, heads: dict) -> dict:
    """An official whole-model checkpoint: backbone + pyramid under
    ``backbone.`` (official detectors / segmentors have ``neck=None``)."""
    sd = {'backbone.' + k: v for k, v in backbone_sd.items()}
    sd.update(heads)
    return dict(meta=dict(mmdet_version='2.24.1'), state_dict=sd)


def clip_pretrain_state(official: dict, seed: int = 0) -> dict:
    """An official ``itpn_clip`` state dict (iTPNClipDistill names): the
    tiny golden backbone + pyramid with layer scale on every block, Swin
    tables, the backbone mask token, the pyramid head (decoder_embed LN +
    Linear to E, E/4, E/16; norm; lm_head) and the side head
    (cls_pt_layers: 2 attention blocks with layer scale and tables;
    norm_cls; lm_cls_head)."""
    g = torch.Generator().manual_seed(seed)
    C, F, T, heads = 128, 64, 48, 4
    sd = pixel_backbone_state(official)

    def r(*shape):
        return torch.randn(shape, generator=g)

    for i, dim in ((0, C // 4), (2, C // 2), (4, C), (5, C)):
        if i >= 4:
            sd[f'blocks.{i}.gamma_1'] = r(dim)
            sd[f'blocks.{i}.attn.relative_position_bias_table'] = r(
                27 * 27, heads)
        sd[f'blocks.{i}.gamma_2'] = r(dim)
    sd['relative_position_index'] = torch.zeros(196, 196, dtype=torch.long)
    sd['mask_token'] = r(1, 1, C)
    for i, e in enumerate((C, C // 4, C // 16)):
        sd[f'decoder_embed.{i}.0.weight'] = r(F)
        sd[f'decoder_embed.{i}.0.bias'] = r(F)
        sd[f'decoder_embed.{i}.1.weight'] = r(e, F)
        sd[f'decoder_embed.{i}.1.bias'] = r(e)
    for n, shape in (('norm', (C, )), ('norm_cls', (C, ))):
        sd[f'{n}.weight'], sd[f'{n}.bias'] = r(*shape), r(*shape)
    for n in ('lm_head', 'lm_cls_head'):
        sd[f'{n}.weight'], sd[f'{n}.bias'] = r(T, C), r(T)
    for j in range(2):
        p = f'cls_pt_layers.{j}.'
        sd.update({
            p + 'gamma_1': r(C), p + 'gamma_2': r(C),
            p + 'norm1.weight': r(C), p + 'norm1.bias': r(C),
            p + 'attn.relative_position_bias_table': r(27 * 27, heads),
            p + 'attn.relative_position_index': torch.zeros(
                196, 196, dtype=torch.long),
            p + 'attn.qkv.weight': r(3 * C, C), p + 'attn.qkv.bias': r(3 * C),
            p + 'attn.proj.weight': r(C, C), p + 'attn.proj.bias': r(C),
            p + 'norm2.weight': r(C), p + 'norm2.bias': r(C),
            p + 'mlp.fc1.weight': r(4 * C, C), p + 'mlp.fc1.bias': r(4 * C),
            p + 'mlp.fc2.weight': r(C, 4 * C), p + 'mlp.fc2.bias': r(C),
        })
    return sd
