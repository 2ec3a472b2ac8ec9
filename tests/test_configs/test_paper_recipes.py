"""The ten downstream paper rows reproduce the official recipes.

For every config named after a paper row (configs/itpn/README.md), the
backbone and pyramid are built at their real depths (without running the
weight initialisers: only names and shapes matter) with the config's
optimizer wrapper, and
every parameter's lr scale and weight decay is compared with the official
constructor's rule, computed here on a second path:

1. mmitpn parameter names are translated to the official ones by walking
   the official ``backbone.blocks`` list (stage-1 blocks, merge, stage-2
   blocks, merge, stage-3 blocks) and the official pyramid names;
2. the official functions are applied as they are written in
   ``det/mmcv_custom/layer_decay_optimizer_constructor.py`` (COCO) and
   ``seg/mmcv_custom/itpn_layer_decay_optimizer_constructor.py`` (ADE20K).

The table values (drop path, lr, schedule, batch, pyramid depth, rpe kind,
layer scale, mask-head norm, UPerNet widths) are literals read from the
official files, cited per row (github.com/sunsmarterjie/iTPN).
"""
import contextlib
from pathlib import Path
from unittest import mock

import pytest
import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper

REPO = Path(__file__).resolve().parents[2]
ITPN = REPO / 'configs' / 'itpn'
B, L = (3, 3, 24), (2, 2, 40)

# Per paper row: the literals of its official config (file: line).
ROWS = {
    # det/configs/itpn/pixel_itpn_base_1x_ld090_dp005.py: fpn_depth 20,
    # drop_path_rate 27, rpe 29, lr 143, num_layers / rate 148-149,
    # lr_config step 155, max_epochs 156
    'itpn-base-pixel_mask-rcnn_8xb8-amp-1x_coco.py':
    dict(host='coco',
         depths=B,
         dp=0.05,
         lr=2e-4,
         num_layers=30,
         rate=0.90,
         epochs=12,
         steps=[9, 11],
         fpn_depth=1,
         rpe=None,
         layer_scale=0.,
         detector='MaskRCNN'),
    # det/configs/itpn/pixel_itpn_base_3x_ld090_dp030.py: dp 27 (0.3), lr
    # 143 (0.00015), 148-149; its 155-156 keep 12 epochs (steps 9, 11), a
    # slip of a 3x row: the 3x schedule of the other official 3x files
    # (clip_itpn_base_3x_ld090_dp030.py:152-153) is used
    'itpn-base-pixel_mask-rcnn_8xb8-amp-3x_coco.py':
    dict(host='coco',
         depths=B,
         dp=0.3,
         lr=1.5e-4,
         num_layers=30,
         rate=0.90,
         epochs=36,
         steps=[27, 33],
         fpn_depth=1,
         rpe=None,
         layer_scale=0.,
         detector='MaskRCNN'),
    # det/configs/itpn/clip_itpn_base_3x_ld090_dp030.py: fpn_depth 21,
    # dp 23, rpe=False 25, init_values 26, lr 140, 145-146, 152-153
    'itpn-base-clip_mask-rcnn_8xb8-amp-3x_coco.py':
    dict(host='coco',
         depths=B,
         dp=0.3,
         lr=1.5e-4,
         num_layers=30,
         rate=0.90,
         epochs=36,
         steps=[27, 33],
         fpn_depth=1,
         rpe=None,
         layer_scale=0.1,
         detector='MaskRCNN'),
    # det/configs/itpn/clip_itpn_large_1x_ld095_dp020.py: embed_dim 15,
    # depth 18, fpn_depth 21, dp 23, rpe=True 25 (iTPN_CLIP.py:71-74:
    # decomposed rel_pos_h / rel_pos_w), init_values 26, lr 140, 145-146,
    # 152-153
    'itpn-large-clip_mask-rcnn_8xb8-amp-1x_coco.py':
    dict(host='coco',
         depths=L,
         dp=0.2,
         lr=2e-4,
         num_layers=44,
         rate=0.95,
         epochs=12,
         steps=[9, 11],
         fpn_depth=1,
         rpe='decomposed',
         layer_scale=0.1,
         detector='MaskRCNN'),
    # det/configs/itpn/cascade_pixel_itpn_base_3x.py: fpn_depth 21, dp 28,
    # rpe 29, lr 148, 153-154, 160-161
    'itpn-base-pixel_cascade-mask-rcnn_8xb8-amp-3x_coco.py':
    dict(host='coco',
         depths=B,
         dp=0.2,
         lr=1e-4,
         num_layers=30,
         rate=0.90,
         epochs=36,
         steps=[27, 33],
         fpn_depth=1,
         rpe=None,
         layer_scale=0.,
         detector='CascadeRCNN'),
    # det/configs/itpn/cascade_CLIP_itpn_base_3x.py: type 10, fpn_depth 21,
    # dp 23, rpe 25, init_values 26, lr 140, 145-146, 152-153
    'itpn-base-clip_cascade-mask-rcnn_8xb8-amp-3x_coco.py':
    dict(host='coco',
         depths=B,
         dp=0.2,
         lr=1e-4,
         num_layers=30,
         rate=0.90,
         epochs=36,
         steps=[27, 33],
         fpn_depth=1,
         rpe=None,
         layer_scale=0.1,
         detector='CascadeRCNN'),
    # seg/configs/itpn/pixel_upernet_itpn_base_12_512_slide_160k_ade20k_
    # pt2ft.py: fpn_depth 35, rpe 38, dp 39, decode in_channels 43,
    # channels 45, aux 48, lr 60, num_layers / rate 62, warmup 66,
    # samples_per_gpu 71
    'itpn-base-pixel_upernet_8xb2-amp-160k_ade20k-512x512.py':
    dict(host='ade20k',
         depths=B,
         dp=0.1,
         lr=3e-5,
         num_layers=30,
         rate=0.90,
         fpn_depth=2,
         rpe='swin',
         layer_scale=0.,
         widths=[384, 512, 768, 768],
         channels=768,
         aux=768),
    # seg/configs/itpn/clip_upernet_itpn_base_12_512_slide_160k_ade20k_
    # pt2ft.py: fpn_depth 35, rpe 38, init_values 39, dp 40, 44, 46, 49,
    # lr 61, num_layers=44 (for a 30-block backbone) / rate 63, 67, 72
    'itpn-base-clip_upernet_8xb2-amp-160k_ade20k-512x512.py':
    dict(host='ade20k',
         depths=B,
         dp=0.2,
         lr=3e-5,
         num_layers=44,
         rate=0.90,
         fpn_depth=2,
         rpe='swin',
         layer_scale=0.1,
         widths=[384, 512, 768, 768],
         channels=768,
         aux=768),
    # seg/configs/itpn/pixel_upernet_itpn_large_12_512_slide_160k_ade20k_
    # pt2ft.py: embed_dim 27, depth 30, fpn_depth 34, rpe 37, dp 38, 42,
    # 44, 47, lr 59, 61, 65, 70
    'itpn-large-pixel_upernet_8xb2-amp-160k_ade20k-512x512.py':
    dict(host='ade20k',
         depths=L,
         dp=0.2,
         lr=3e-5,
         num_layers=44,
         rate=0.95,
         fpn_depth=2,
         rpe='swin',
         layer_scale=0.,
         widths=[448, 640, 1024, 1024],
         channels=768,
         aux=1024),
    # seg/configs/itpn/clip_upernet_itpn_large_12_512_slide_160k_ade20k_
    # pt2ft.py: 28, 31, 35, 38, init_values 39, dp 40, 44, 46, 49, lr 61,
    # 63, 67, 72
    'itpn-large-clip_upernet_8xb2-amp-160k_ade20k-512x512.py':
    dict(host='ade20k',
         depths=L,
         dp=0.2,
         lr=3e-5,
         num_layers=44,
         rate=0.95,
         fpn_depth=2,
         rpe='swin',
         layer_scale=0.1,
         widths=[448, 640, 1024, 1024],
         channels=768,
         aux=1024),
}

# The official pyramid lives inside the official backbone, under these
# names (det/mmdet/models/backbones/iTPN_pixel.py, seg/backbone/iTPN.py:
# 262-305); mmitpn's ITPNPyramid is the neck.
PYRAMID_NAMES = {
    'neck.align_16.': 'backbone.align_dim_16tofpn.',
    'neck.split_16to8.': 'backbone.split_16to8.',
    'neck.align_8.': 'backbone.align_dim_16to8.',
    'neck.blocks_8.': 'backbone.block_16to8.',
    'neck.split_8to4.': 'backbone.split_8to4.',
    'neck.align_4.': 'backbone.align_dim_8to4.',
    'neck.blocks_4.': 'backbone.block_8to4.',
    'neck.out_blocks.': 'backbone.fpn_modules.',
}


def official_prefixes(depths):
    """mmitpn module prefix -> official prefix, walking the official block
    list: ``blocks`` = stage-1 MLP blocks, PatchMerge, stage-2 MLP blocks,
    PatchMerge, stage-3 blocks (seg/backbone/iTPN.py:233-257)."""
    table = {
        'backbone.patch_embed.': 'backbone.patch_embed.',
        'backbone.pos_embed': 'backbone.absolute_pos_embed',
        **PYRAMID_NAMES
    }
    entry = 0
    for stage, depth in enumerate(depths):
        for j in range(depth):
            table[f'backbone.stages.{stage}.{j}.'] = \
                f'backbone.blocks.{entry}.'
            entry += 1
        if stage < 2:
            table[f'backbone.merges.{stage}.'] = f'backbone.blocks.{entry}.'
            entry += 1
    assert entry == sum(depths) + 2
    return table


def to_official(name, table):
    for ours, theirs in table.items():
        if name == ours or (ours.endswith('.') and name.startswith(ours)):
            return theirs + name[len(ours):]
    return name  # heads keep their names (they are heads officially too)


# ---- the official rules, as written in the official constructors --------
def coco_layer_id(var_name, num_max_layer):
    # det/mmcv_custom/layer_decay_optimizer_constructor.py:17-26
    if var_name in ('backbone.cls_token', 'backbone.mask_token',
                    'backbone.pos_embed'):
        return 0
    elif var_name.startswith('backbone.patch_embed'):
        return 0
    elif var_name.startswith('backbone.blocks'):
        return int(var_name.split('.')[2]) + 1
    return num_max_layer - 1


def ade_layer_id(var_name, num_max_layer):
    # seg/mmcv_custom/itpn_layer_decay_optimizer_constructor.py:6-15
    if var_name in ('backbone.cls_token', 'backbone.mask_token',
                    'backbone.absolute_pos_embed'):
        return 0
    elif var_name.startswith('backbone.patch_embed'):
        return 0
    elif var_name.startswith('backbone.blocks'):
        return int(var_name.split('.')[2]) + 1
    return num_max_layer - 1


def official_expectation(host, name, shape, rate, cfg_num_layers):
    """(lr scale, decayed) of an official parameter name."""
    num_layers = cfg_num_layers + 2  # both constructors, lines 71 / 35
    if host == 'coco':
        layer_id = coco_layer_id(name, num_layers)
        scale = rate**(num_layers - layer_id - 1)  # line 92
        no_decay = (len(shape) == 1 or name.endswith('.bias')
                    or name.endswith('_token')
                    or name.endswith('pos_embed'))  # lines 78-81
    else:
        layer_id = ade_layer_id(name, num_layers)
        layer_decay = rate**(13 / num_layers)  # line 60
        scale = layer_decay**(num_layers - layer_id - 1)  # line 61
        no_decay = (len(shape) == 1 or name.endswith('.bias')
                    or name in ('absolute_pos_embed', 'cls_token'))  # 43
    return scale, not no_decay


class HostStandIn(nn.Module):
    """Backbone + pyramid of a config, and one head parameter under the
    host's head name (every head parameter takes the top layer id)."""

    def __init__(self, cfg, head_name):
        super().__init__()
        from mmitpn.registry import MODELS
        backbone = cfg.model.backbone.copy()
        backbone.pop('init_cfg', None)
        neck = cfg.model.neck.copy()
        neck.pop('init_cfg', None)
        self.backbone = MODELS.build(backbone)
        self.neck = MODELS.build(neck)
        head = nn.Module()
        head.conv_seg = nn.Conv2d(4, 2, 1)
        self.add_module(head_name, head)


def load(name):
    return Config.fromfile(str(ITPN / name))


@contextlib.contextmanager
def no_init():
    """Skip the random initialisers (iTPN-L has 288 M parameters)."""
    names = ('trunc_normal_', 'normal_', 'uniform_', 'kaiming_uniform_',
             'xavier_uniform_', 'constant_', 'zeros_', 'ones_')
    with contextlib.ExitStack() as stack:
        for n in names:
            stack.enter_context(
                mock.patch.object(torch.nn.init, n, lambda t, *a, **k: t))
        yield


def build_stand_in(cfg, head_name):
    with no_init():
        return HostStandIn(cfg, head_name)


@pytest.fixture(scope='module', params=list(ROWS), ids=lambda n: n[:-3])
def row(request):
    name = request.param
    cfg = load(name)
    exp = ROWS[name]
    head = 'roi_head' if exp['host'] == 'coco' else 'decode_head'
    model = build_stand_in(cfg, head)
    optim_cfg = cfg.optim_wrapper.copy()
    optim_cfg.type = 'OptimWrapper'  # AmpOptimWrapper needs CUDA
    optim_cfg.pop('loss_scale', None)
    wrapper = build_optim_wrapper(model, optim_cfg)
    return name, cfg, exp, model, wrapper


def test_every_parameter_gets_the_official_lr_scale_and_weight_decay(row):
    name, cfg, exp, model, wrapper = row
    table = official_prefixes(exp['depths'])
    base_lr = cfg.optim_wrapper.optimizer.lr
    group_of = {
        id(p): g
        for g in wrapper.optimizer.param_groups
        for p in g['params']
    }
    params = dict(model.named_parameters())
    assert len(group_of) == len(params)
    for ours, p in params.items():
        theirs = to_official(ours, table)
        if ours.startswith('backbone.stages') or \
                ours.startswith('backbone.merges'):
            assert theirs.startswith('backbone.blocks.'), ours
        scale, decayed = official_expectation(exp['host'], theirs,
                                              tuple(p.shape), exp['rate'],
                                              exp['num_layers'])
        g = group_of[id(p)]
        assert abs(g['lr'] / base_lr - scale) / scale < 1e-6, (
            f'{ours} ({theirs}): lr scale {g["lr"] / base_lr} vs the '
            f'official {scale}')
        assert g['weight_decay'] == (0.05 if decayed else 0.), ours


def _scale(wrapper, model, name):
    p = dict(model.named_parameters())[name]
    for g in wrapper.optimizer.param_groups:
        if any(q is p for q in g['params']):
            return g['lr_scale']
    raise KeyError(name)


def test_official_quirks_in_numbers():
    """Hand values of the spec's table: iTPN-B on COCO (num_layers 30 + 2)
    trains its last block at 0.9 ** -1 and its position embedding at the
    full lr; ADE20K's CLIP-B (num_layers 44 + 2 for 32 list entries)."""
    cfg = load('itpn-base-pixel_mask-rcnn_8xb8-amp-1x_coco.py')
    model = build_stand_in(cfg, 'roi_head')
    optim_cfg = cfg.optim_wrapper.copy()
    optim_cfg.type = 'OptimWrapper'
    optim_cfg.pop('loss_scale')
    w = build_optim_wrapper(model, optim_cfg)
    approx = pytest.approx
    assert _scale(w, model,
                  'backbone.patch_embed.proj.weight') == approx(0.9**31,
                                                                rel=1e-9)
    assert _scale(w, model, 'backbone.pos_embed') == 1.0
    assert _scale(w, model, 'backbone.stages.2.0.attn.qkv.weight') == \
        approx(0.9**22, rel=1e-9)
    assert _scale(w, model, 'backbone.stages.2.23.mlp.fc2.weight') == \
        approx(1 / 0.9, rel=1e-9)
    # the second merge is list entry 7: id 8, 0.9 ** (32 - 8 - 1)
    assert _scale(w, model,
                  'backbone.merges.1.reduction.weight') == approx(0.9**23,
                                                                  rel=1e-9)
    assert _scale(w, model, 'neck.out_blocks.0.mlp.fc1.weight') == 1.0

    cfg = load('itpn-base-clip_upernet_8xb2-amp-160k_ade20k-512x512.py')
    model = build_stand_in(cfg, 'decode_head')
    optim_cfg = cfg.optim_wrapper.copy()
    optim_cfg.type = 'OptimWrapper'
    optim_cfg.pop('loss_scale')
    w = build_optim_wrapper(model, optim_cfg)
    per_layer = 0.9**(13 / 46)
    assert _scale(w, model, 'backbone.pos_embed') == approx(per_layer**45,
                                                            rel=1e-9)
    assert _scale(w, model, 'backbone.stages.2.23.mlp.fc2.weight') == \
        approx(per_layer**13, rel=1e-9)
    assert _scale(w, model, 'decode_head.conv_seg.weight') == 1.0


def _num_gammas(module):
    return sum(1 for n, _ in module.named_parameters()
               if n.split('.')[-1] in ('gamma1', 'gamma2'))


def test_table_values(row):
    name, cfg, exp, model, _ = row
    bb, neck = cfg.model.backbone, cfg.model.neck
    assert bb.type == 'mmitpn.HiViTBackbone'
    assert tuple(model.backbone.depths) == exp['depths']
    assert bb.drop_path_rate == exp['dp']
    assert neck.fpn_depth == exp['fpn_depth']
    assert len(model.neck.blocks_8) == exp['fpn_depth']
    opt = cfg.optim_wrapper
    assert opt.optimizer.type == 'AdamW'
    assert opt.optimizer.lr == exp['lr']
    assert opt.optimizer.weight_decay == 0.05
    assert opt.optimizer.betas == (0.9, 0.999)
    assert opt.type == 'AmpOptimWrapper'  # official: use_fp16=True
    pw = opt.paramwise_cfg
    assert (pw.layer_decay_rate, pw.num_layers) == (exp['rate'],
                                                    exp['num_layers'])
    assert pw.layer_decay_rule == f'official_{exp["host"]}'
    # the official det and seg backbones build torch's default LayerNorm
    norms = [m for m in model.modules() if isinstance(m, nn.LayerNorm)]
    assert norms and all(m.eps == 1e-5 for m in norms)

    # the position table of the 224 pre-training grid, 14x14, interpolated
    # to each input (det: img_size=224 in every config; seg/backbone/
    # iTPN.py:213-215 keeps torch.zeros(1, 196, C) at img_size 512)
    assert model.backbone.pos_embed.shape[1] == 196
    assert model.backbone.pos_embed.requires_grad
    # rpe kind: the parameters each stage-3 block has
    attn = model.backbone.stages[2][0].attn
    kinds = {n.split('.')[-1] for n, _ in attn.named_parameters()}
    has = dict(swin='relative_position_bias_table' in kinds,
               decomposed={'rel_pos_h', 'rel_pos_w'} <= kinds)
    assert has == dict(swin=exp['rpe'] == 'swin',
                       decomposed=exp['rpe'] == 'decomposed')
    # layer scale 0.1 on every backbone block (gamma2 on the MLP-only
    # stage-1/2 blocks: seg/backbone/iTPN.py:82-89), none on the pyramid
    d1, d2, d3 = exp['depths']
    if exp['layer_scale']:
        assert bb.layer_scale_init_value == exp['layer_scale']
        assert _num_gammas(model.backbone) == d1 + d2 + 2 * d3
    else:
        assert _num_gammas(model.backbone) == 0
    assert _num_gammas(model.neck) == 0

    if exp['host'] == 'coco':
        assert cfg.model.type == exp['detector']
        assert cfg.train_cfg.max_epochs == exp['epochs']
        step = cfg.param_scheduler[-1]
        assert step.milestones == exp['steps'] and step.end == exp['epochs']
        # 32 GPUs x 2 officially = 8 x 8 here
        assert cfg.train_dataloader.batch_size == 8
        assert cfg.auto_scale_lr.base_batch_size == 64
        assert (neck.num_outs, neck.extra_pool) == (5, 'avg')
        assert 'norm_cfg' not in cfg.model.roi_head.mask_head
        heads = cfg.model.roi_head.bbox_head
        heads = heads if isinstance(heads, list) else [heads]
        assert len(heads) == (3 if exp['detector'] == 'CascadeRCNN' else 1)
        for h in heads:
            assert h.type == 'Shared4Conv1FCBBoxHead'
            assert h.norm_cfg.type == 'SyncBN'
            assert h.loss_bbox == dict(type='GIoULoss', loss_weight=10.0)
        # a depth-2 pre-training pyramid loads at depth 1
        assert neck.allow_partial_load == ('blocks_8.1.', 'blocks_4.1.')
    else:
        assert neck.concat_inputs and neck.extra_pool == 'max'
        assert neck.num_outs == 4
        assert cfg.model.decode_head.in_channels == exp['widths']
        assert cfg.model.decode_head.channels == exp['channels']
        assert cfg.model.auxiliary_head.in_channels == exp['aux']
        assert cfg.model.auxiliary_head.in_index == 2
        assert model.neck.out_widths == tuple(exp['widths'])
        assert cfg.train_cfg.max_iters == 160000
        warmup, poly = cfg.param_scheduler
        assert (warmup.type, warmup.start_factor, warmup.end) == ('LinearLR',
                                                                  1e-6, 1500)
        assert (poly.type, poly.power, poly.eta_min, poly.begin,
                poly.end) == ('PolyLR', 1.0, 0.0, 1500, 160000)
        assert cfg.train_dataloader.batch_size == 2  # 8 GPUs x 2
        assert cfg.model.test_cfg == dict(mode='slide',
                                          crop_size=(512, 512),
                                          stride=(341, 341))


# ------------------------------------------------ ImageNet-1K fine-tuning
# itpn_pixel/FINETUNE.md (B: --epochs 100 --blr 4e-4 --layer_decay 0.60
# --drop_path 0.15; L: --epochs 50 --blr 1e-3 --layer_decay 0.55
# --drop_path 0.2; both batch 32 x 32 GPUs), main_finetune.py defaults
# (min_lr 5e-6 at line 79, warmup 5 at 82), itpn_base: rpe=True
# (models/models_itpn.py:414-417)
IN1K = {
    'itpn-base-pixel_8xb128-coslr-100e_in1k.py':
    dict(depths=B, blr=4e-4, rate=0.60, dp=0.15, epochs=100),
    'itpn-large-pixel_8xb128-coslr-50e_in1k.py':
    dict(depths=L, blr=1e-3, rate=0.55, dp=0.2, epochs=50),
}


def in1k_layer_id(name, num_layers, main_block):
    # itpn_pixel/util/lr_decay.py:68-84 (names of the classifier itself)
    if '0' <= name[0] <= '9':
        name = name[2:]
    if name in ['cls_token', 'pos_embed', 'absolute_pos_embed']:
        return 0
    elif name.startswith('patch_embed'):
        return 0
    elif name.startswith('blocks'):
        i = int(name.split('.')[1])
        while i >= 0:
            try:
                return main_block.index(i) + 1
            except ValueError:
                i = i - 1
        return 0
    return num_layers


@pytest.mark.parametrize('name', list(IN1K), ids=lambda n: n[:-3])
def test_imagenet_fine_tuning(name):
    cfg, exp = load(name), IN1K[name]
    with no_init():
        model = nn.Module()
        backbone = cfg.model.backbone.copy()
        backbone.pop('init_cfg')
        from mmitpn.registry import MODELS
        model.backbone = MODELS.build(backbone)
        model.head = nn.Linear(4, 2)
    optim_cfg = cfg.optim_wrapper.copy()
    optim_cfg.type = 'OptimWrapper'
    optim_cfg.pop('loss_scale')
    wrapper = build_optim_wrapper(model, optim_cfg)
    lr = cfg.optim_wrapper.optimizer.lr
    assert lr == exp['blr'] * 1024 / 256
    assert cfg.train_dataloader.batch_size * 8 == 1024
    assert cfg.model.backbone.drop_path_rate == exp['dp']
    assert cfg.model.backbone.rpe_type == 'swin'
    assert cfg.train_cfg.max_epochs == exp['epochs']
    warmup, cosine = cfg.param_scheduler
    assert warmup.end == cosine.begin == 5
    assert cosine.eta_min_ratio * lr == pytest.approx(5e-6, rel=1e-12)

    # lr_decay.py:23-29: merges are not main blocks
    official = [('merge' if i in (exp['depths'][0],
                                  sum(exp['depths'][:2]) + 1) else 'block')
                for i in range(sum(exp['depths']) + 2)]
    main_block = [i for i, kind in enumerate(official) if kind == 'block']
    num_layers = len(main_block) + 1
    layer_decay = exp['rate']**(13 / num_layers)
    layer_scales = [
        layer_decay**(num_layers - i) for i in range(num_layers + 1)
    ]
    # the classifier's names: the backbone's without 'backbone.'
    table = {
        k[len('backbone.'):]: v[len('backbone.'):]
        for k, v in official_prefixes(exp['depths']).items()
        if k.startswith('backbone.')
    }
    group_of = {
        id(p): g
        for g in wrapper.optimizer.param_groups
        for p in g['params']
    }
    for ours, p in model.named_parameters():
        theirs = to_official(ours[len('backbone.'):], table) \
            if ours.startswith('backbone.') else ours
        scale = layer_scales[in1k_layer_id(theirs, num_layers, main_block)]
        no_decay = (p.ndim == 1 or theirs in {'absolute_pos_embed'}
                    or theirs.endswith('.relative_position_bias_table'))
        g = group_of[id(p)]
        assert abs(g['lr'] / lr - scale) / scale < 1e-6, (ours, theirs)
        assert g['weight_decay'] == (0. if no_decay else 0.05), ours


# ------------------------------------ ImageNet-1K fine-tuning after CLIP
# itpn_clip/README.md, "Fine-tune iTPN-B" (:127-146) and "Fine-tune
# iTPN-L/16" (:155-174), launched on 8 nodes x 8 GPUs (:128, :156; the
# launcher's WORLD_SIZE overrides --world_size 4: utils/utils.py:302-305),
# with run_itpn_finetuning.py's defaults.
IN1K_CLIP = {
    # --batch_size 32 (:131) x 64, --lr 5.0e-4 (:136), --drop_path 0.1
    # (:138), --epochs 100 (:139), --layer_decay 0.60 (:141),
    # --warmup_epochs 20 (:143); itpn_base_3324_patch16_224
    # (modeling_finetune.py:360-363)
    'itpn-base-clip_16xb128-coslr-100e_in1k.py':
    dict(depths=B, width=512, gpus=16, total_batch=32 * 64, lr=5e-4,
         dp=0.1, epochs=100, rate=0.60, warmup=20),
    # --batch_size 16 (:159) x 64, --lr 2.0e-4 (:164), --drop_path 0.25
    # (:166), --epochs 50 (:167), --layer_decay 0.55 (:169),
    # --warmup_epochs 5 (:171); itpn_large_2240_patch16_224
    # (modeling_finetune.py:374-377)
    'itpn-large-clip_8xb128-coslr-50e_in1k.py':
    dict(depths=L, width=768, gpus=8, total_batch=16 * 64, lr=2e-4,
         dp=0.25, epochs=50, rate=0.55, warmup=5),
}


@pytest.mark.parametrize('name', list(IN1K_CLIP), ids=lambda n: n[:-3])
def test_imagenet_fine_tuning_after_clip(name):
    cfg, exp = load(name), IN1K_CLIP[name]
    with no_init():
        model = nn.Module()
        backbone = cfg.model.backbone.copy()
        backbone.pop('init_cfg')
        from mmitpn.registry import MODELS
        model.backbone = MODELS.build(backbone)
        model.head = nn.Linear(4, 2)
    optim_cfg = cfg.optim_wrapper.copy()
    optim_cfg.type = 'OptimWrapper'
    optim_cfg.pop('loss_scale')
    wrapper = build_optim_wrapper(model, optim_cfg)

    # the batch: GPUs of the name x per-GPU batch = the official total;
    # the lr is absolute (run_itpn_finetuning.py:407: lr=args.lr)
    assert f'_{exp["gpus"]}xb{cfg.train_dataloader.batch_size}-' in name
    assert exp['gpus'] * cfg.train_dataloader.batch_size == \
        exp['total_batch']
    assert cfg.auto_scale_lr.base_batch_size == exp['total_batch']
    opt = cfg.optim_wrapper
    assert opt.type == 'AmpOptimWrapper'  # engine_for_finetuning.py:75
    assert opt.optimizer.type == 'AdamW'
    assert opt.optimizer.lr == exp['lr']
    assert opt.optimizer.betas == (0.9, 0.999)  # --opt_betas None (:78)
    assert opt.optimizer.eps == 1e-8  # --opt_eps (:76)
    assert opt.optimizer.weight_decay == 0.05  # README --weight_decay
    assert opt.paramwise_cfg.layer_decay_rule == 'official_in1k'
    assert opt.paramwise_cfg.layer_decay_rate == exp['rate']

    # schedule: warm-up from ~0 over `warmup` epochs, per iteration
    # (utils/utils.py:446-454), cosine to --min_lr 1e-6 (:96) times each
    # group's lr_scale (engine_for_finetuning.py:60)
    assert cfg.train_cfg.max_epochs == exp['epochs']
    warmup, cosine = cfg.param_scheduler
    assert (warmup.type, warmup.begin, warmup.end) == ('LinearLR', 0,
                                                       exp['warmup'])
    assert warmup.start_factor <= 1e-4 and warmup.convert_to_iter_based
    assert (cosine.type, cosine.begin) == ('CosineAnnealingLR',
                                           exp['warmup'])
    assert cosine.convert_to_iter_based and 'end' not in cosine
    assert cosine.eta_min_ratio * exp['lr'] == pytest.approx(1e-6,
                                                              rel=1e-12)

    # the model: drop path (--drop_path), layer scale 0.1 on every block
    # (:54, :307; modeling_finetune.py:101-108), Swin rpe (:49-51), learned
    # position table, LayerNorm eps 1e-6 (modeling_finetune.py:363, 377)
    bb = model.backbone
    assert cfg.model.backbone.drop_path_rate == exp['dp']
    assert tuple(bb.depths) == exp['depths']
    assert bb.embed_dims == exp['width']
    assert cfg.model.head.in_channels == exp['width']
    d1, d2, d3 = exp['depths']
    gammas = {n: p for n, p in bb.named_parameters()
              if n.split('.')[-1] in ('gamma1', 'gamma2')}
    assert len(gammas) == d1 + d2 + 2 * d3
    assert all(torch.all(p == 0.1) for p in gammas.values())
    attn = bb.stages[2][0].attn
    assert hasattr(attn, 'relative_position_bias_table')
    assert bb.pos_embed.requires_grad
    norms = [m for m in bb.modules() if isinstance(m, nn.LayerNorm)]
    assert norms and all(m.eps == 1e-6 for m in norms)
    # head trunc-normal(0.02) (modeling_finetune.py:285-289)
    assert cfg.model.head.init_cfg == [
        dict(type='TruncNormal', layer='Linear', std=0.02)
    ]

    # data: mean = std = 0.5 (timm's inception statistics,
    # datasets.py:127-130); RandAugment m9 mstd0.5 (:107) padding with
    # round(255 * 0.5) = 128, random erasing 0.25 (:118) N(0, 1) in the
    # normalised space; mixup 0.8 / cutmix 1.0, smoothing 0.1 (:109)
    assert cfg.data_preprocessor.mean == [127.5] * 3
    assert cfg.data_preprocessor.std == [127.5] * 3
    steps = {t.type: t for t in cfg.train_dataloader.dataset.pipeline}
    ra, re_ = steps['RandAugment'], steps['RandomErasing']
    assert (ra.magnitude_level, ra.magnitude_std,
            ra.num_policies) == (9, 0.5, 2)
    assert ra.hparams.pad_val == [128, 128, 128]
    assert (re_.erase_prob, re_.mode) == (0.25, 'rand')
    assert re_.fill_color == [127.5] * 3 and re_.fill_std == [127.5] * 3
    assert cfg.model.train_cfg.augments == [
        dict(type='Mixup', alpha=0.8),
        dict(type='CutMix', alpha=1.0)
    ]
    assert cfg.model.head.loss.label_smooth_val == 0.1

    # every parameter's lr scale and weight decay: utils/lr_decay.py:16-84
    # (the same code as itpn_pixel's: in1k_layer_id above), no decay on 1-D
    # parameters, absolute_pos_embed (modeling_finetune.py:297-298) and the
    # rpe tables (lr_decay.py:36)
    official = [('merge' if i in (exp['depths'][0],
                                  sum(exp['depths'][:2]) + 1) else 'block')
                for i in range(sum(exp['depths']) + 2)]
    main_block = [i for i, kind in enumerate(official) if kind == 'block']
    num_layers = len(main_block) + 1
    layer_decay = exp['rate']**(13 / num_layers)
    table = {
        k[len('backbone.'):]: v[len('backbone.'):]
        for k, v in official_prefixes(exp['depths']).items()
        if k.startswith('backbone.')
    }
    group_of = {
        id(p): g
        for g in wrapper.optimizer.param_groups
        for p in g['params']
    }
    lr = opt.optimizer.lr
    for ours, p in model.named_parameters():
        theirs = to_official(ours[len('backbone.'):], table) \
            if ours.startswith('backbone.') else ours
        layer_id = in1k_layer_id(theirs, num_layers, main_block)
        scale = layer_decay**(num_layers - layer_id)
        no_decay = (p.ndim == 1 or theirs == 'absolute_pos_embed'
                    or theirs.endswith('.relative_position_bias_table'))
        g = group_of[id(p)]
        assert abs(g['lr'] / lr - scale) / scale < 1e-6, (ours, theirs)
        assert g['weight_decay'] == (0. if no_decay else 0.05), ours
