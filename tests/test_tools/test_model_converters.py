"""tools/model_converters/itpn_to_mmitpn.py: official checkpoints of every
kind (pixel / CLIP pre-training, Mask R-CNN, Cascade, UPerNet) convert
completely and load into mmitpn / mmdet 3 / mmseg 1 models.

Official-format inputs are built here: the official backbone key layout
from the golden files (computed by the official code) plus head tensors
under the names the official mmdet 2.24 / mmseg 0.x forks give them
(written out below, not read from mmdet 3 / mmseg 1).
"""
import subprocess
import sys

import pytest
import torch
from conftest import REPO, golden_files, load_tool
from mmengine.config import Config
from mmengine.registry import DefaultScope

from mmitpn.registry import MODELS

conv = load_tool('tools/model_converters/itpn_to_mmitpn.py')
GOLDEN = next(f for f in golden_files() if f.name == 'itpn_official_tiny.pt')
DETSEG = next(
    (f for f in golden_files() if f.name == 'itpn_official_detseg_tiny.pt'),
    None)
needs_detseg = pytest.mark.skipif(
    DETSEG is None, reason='itpn_official_detseg_tiny.pt not found')
NUM_CLASSES = 3


@pytest.fixture(scope='module')
def official():
    return torch.load(GOLDEN, map_location='cpu')


@pytest.fixture(scope='module')
def detseg():
    return torch.load(DETSEG, map_location='cpu')


def run_cli(*args):
    """The command in a subprocess (what a user types)."""
    return subprocess.run(
        [sys.executable, str(REPO / 'tools/model_converters/'
                             'itpn_to_mmitpn.py'), *map(str, args)],
        capture_output=True, text=True)


def run_main(capsys, *args):
    """The command's entry point in this process (no interpreter start-up);
    returns what it printed."""
    conv.main([str(a) for a in args])
    return capsys.readouterr().out


def _perturbed(sd, seed=0):
    """Distinct values everywhere (no LayerNorm ones, no zeros)."""
    g = torch.Generator().manual_seed(seed)
    return {
        k: v + 0.1 * torch.randn(v.shape, generator=g)
        if v.is_floating_point() else v
        for k, v in sd.items()
    }


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


def mmdet2_head_shapes(F, cascade=False, fc=32):
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


def mmseg0_head_shapes(widths, channels=32, aux_channels=16):
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


def random_tensors(shapes, seed):
    g = torch.Generator().manual_seed(seed)
    return {
        k: torch.tensor(7) if s == () else torch.randn(s, generator=g)
        for k, s in shapes.items()
    }


def whole_checkpoint(backbone_sd, heads):
    """An official whole-model checkpoint: backbone + pyramid under
    ``backbone.`` (official detectors / segmentors have ``neck=None``)."""
    sd = {'backbone.' + k: v for k, v in backbone_sd.items()}
    sd.update(heads)
    return dict(meta=dict(mmdet_version='2.24.1'), state_dict=sd)


# ------------------------------------------- loading into the real configs
def _shrink(cfg, model_cfg, F, task):
    """A real configs/itpn/ config with the converted tiny backbone and
    pyramid (from ``meta.model_cfg``) and heads narrowed to them."""
    m = cfg.model
    m.backbone = dict(model_cfg['backbone'])
    m.neck = dict(model_cfg['neck'])
    if task == 'det':
        m.rpn_head.update(in_channels=F, feat_channels=F)
        roi = m.roi_head
        roi.bbox_roi_extractor.out_channels = F
        roi.mask_roi_extractor.out_channels = F
        heads = roi.bbox_head if isinstance(roi.bbox_head, list) else [
            roi.bbox_head
        ]
        for h in heads:
            h.update(in_channels=F, conv_out_channels=F, fc_out_channels=32,
                     num_classes=NUM_CLASSES)
        masks = roi.mask_head if isinstance(roi.mask_head, list) else [
            roi.mask_head
        ]
        for h in masks:
            h.update(in_channels=F, conv_out_channels=F,
                     num_classes=NUM_CLASSES)
    else:
        widths = MODELS.build(m.neck).out_widths
        m.decode_head.update(in_channels=list(widths), channels=32,
                             num_classes=NUM_CLASSES)
        m.auxiliary_head.update(in_channels=widths[2], channels=16,
                                num_classes=NUM_CLASSES)
    return cfg


def _build_host_model(config, model_cfg, F, task):
    host = 'mmdet' if task == 'det' else 'mmseg'
    __import__(f'{host}.utils', fromlist=['x']).register_all_modules(
        init_default_scope=False)
    registry = __import__(f'{host}.registry', fromlist=['x']).MODELS
    cfg = _shrink(Config.fromfile(str(REPO / config)), model_cfg, F, task)
    with DefaultScope.overwrite_default_scope(host):
        return registry.build(cfg.model)


WHOLE = {
    # kind: (golden entry, config, task, cascade)
    'mask-rcnn-pixel': (None, 'configs/itpn/itpn-base-pixel_mask-rcnn_'
                        '8xb8-amp-1x_coco.py', 'det', False),
    'mask-rcnn-clip-decomposed': ('det_clip', 'configs/itpn/itpn-large-'
                                  'clip_mask-rcnn_8xb8-amp-1x_coco.py',
                                  'det', False),
    'cascade-clip': ('det_clip', 'configs/itpn/itpn-base-clip_cascade-mask-'
                     'rcnn_8xb8-amp-3x_coco.py', 'det', True),
    'upernet-clip': ('seg_clip', 'configs/itpn/itpn-base-clip_upernet_'
                     '8xb2-amp-160k_ade20k-512x512.py', 'seg', False),
}


def _official_backbone(official, detseg, entry):
    if entry is None:  # the official pixel model without its decoder
        return {
            k: v for k, v in official['state_dict'].items()
            if conv._decoder_key(k) is None
        }
    return detseg[entry]['state_dict']


@needs_detseg
@pytest.mark.parametrize('name', list(WHOLE))
def test_whole_checkpoint_loads_into_its_config(tmp_path, capsys, official,
                                                detseg, name):
    entry, config, task, cascade = WHOLE[name]
    backbone_sd = _perturbed(_official_backbone(official, detseg, entry))
    F = backbone_sd['split_16to8.reduction.weight'].shape[0] // 4
    if task == 'det':
        shapes = mmdet2_head_shapes(F, cascade)
    else:
        C = backbone_sd['patch_embed.proj.weight'].shape[0] * 4
        shapes = mmseg0_head_shapes(
            [F + C // 4, F + C // 2, F + C, F + C])
    heads = random_tensors(shapes, seed=3)
    src, dst = tmp_path / 'official.pth', tmp_path / 'converted.pth'
    torch.save(whole_checkpoint(backbone_sd, heads), src)
    stdout = run_main(capsys, src, dst,
                      *(('--num-heads', 4) if entry is None else ()))
    out = torch.load(dst)
    meta = out['meta']
    n_buffers = sum(k.endswith('relative_position_index')
                    for k in backbone_sd)
    n_in = len(backbone_sd) + len(heads)
    # every tensor is accounted for: out + dropped (named buffers)
    assert meta['tensors']['in'] == n_in
    assert meta['tensors']['out'] == n_in - n_buffers == \
        len(out['state_dict'])
    assert meta['tensors']['dropped'] == [
        'backbone.' + k for k in backbone_sd
        if k.endswith('relative_position_index')
    ]
    assert not meta['unmapped_keys']
    assert f'tensors: in {n_in}, out {n_in - n_buffers}, dropped ' \
        f'{n_buffers}' in stdout
    assert 'renamed: none' in stdout
    # the model the config describes, narrowed to the tiny widths
    model = _build_host_model(config, meta['model_cfg'], F, task)
    missing, unexpected = model.load_state_dict(out['state_dict'],
                                                strict=False)
    assert not missing and not unexpected, (missing, unexpected)
    own = model.state_dict()
    for k, v in heads.items():  # heads arrive unchanged
        assert torch.equal(own[k], v), k
    # and the backbone / pyramid values
    assert torch.equal(own['backbone.stages.0.0.mlp.fc1.weight'],
                       backbone_sd['blocks.0.mlp.fc1.weight'])
    assert torch.equal(own['neck.split_8to4.reduction.weight'],
                       backbone_sd['split_8to4.reduction.weight'])


@needs_detseg
def test_meta_describes_official_architectures(detseg):
    for entry, task in (('det_clip', 'det'), ('seg_clip', 'seg')):
        arch = detseg[entry]['arch']
        out, notes = conv.convert_checkpoint(
            whole_checkpoint(
                detseg[entry]['state_dict'],
                {'rpn_head.rpn_conv.weight': torch.zeros(1)} if task == 'det'
                else {'decode_head.conv_seg.weight': torch.zeros(1)}))
        cfg = out['meta']['model_cfg']
        b, n = cfg['backbone'], cfg['neck']
        assert out['meta']['kind'] == ('detector' if task == 'det' else
                                       'segmentor')
        assert b['arch'] == dict(
            embed_dims=arch['embed_dim'],
            depths=[arch['mlp_depth1'], arch['mlp_depth2'], arch['depth']],
            num_heads=arch['num_heads'])
        assert b['rpe_type'] == ('decomposed' if task == 'det' else 'swin')
        assert b['layer_scale_stages'] == (0, 1, 2)
        assert b['layer_scale_init_value'] == arch['init_values']
        assert b['norm_eps'] == n['norm_eps'] == arch['norm_eps'] == 1e-5
        assert b['img_size'] == arch['img_size']
        assert n['fpn_depth'] == arch['fpn_depth']
        assert n['out_channels'] == arch['fpn_dim']
        assert n['num_outs'] == arch['num_outs']
        if task == 'seg':
            assert n['concat_inputs'] and n['extra_pool'] == 'max'
            # the official seg backbone keeps its 14x14 table at any size
            assert b['pos_embed_size'] == 224 != b['img_size']
        else:
            assert not n.get('concat_inputs') and \
                n.get('extra_pool', 'avg') == 'avg'


def test_converter_names_the_paper_config():
    def meta(kind, roi, C, sup):
        return dict(kind=kind, roi=roi, arch_name=conv.ARCH_NAMES.get(C),
                    supervision=sup)

    assert conv.matching_configs(meta('detector', 'cascade', 512, 'clip')) \
        == ['itpn-base-clip_cascade-mask-rcnn_8xb8-amp-3x_coco.py']
    assert conv.matching_configs(meta('detector', 'mask-rcnn', 768, 'clip')) \
        == ['itpn-large-clip_mask-rcnn_8xb8-amp-1x_coco.py']
    assert conv.matching_configs(meta('segmentor', 'upernet', 768,
                                      'pixel')) == [
        'itpn-large-pixel_upernet_8xb2-amp-160k_ade20k-512x512.py']
    # a pre-training: the fine-tuning configs of its size and supervision
    assert conv.matching_configs(meta('pixel-pretrain', None, 512,
                                      'pixel')) == [
        'itpn-base-pixel_mask-rcnn_8xb8-amp-1x_coco.py',
        'itpn-base-pixel_mask-rcnn_8xb8-amp-3x_coco.py',
        'itpn-base-pixel_cascade-mask-rcnn_8xb8-amp-3x_coco.py',
        'itpn-base-pixel_upernet_8xb2-amp-160k_ade20k-512x512.py']
    for names in conv._PAPER_CONFIGS.values():
        for name in names:
            assert (REPO / 'configs' / 'itpn' / name).is_file(), name


@pytest.mark.parametrize('wrap', ['model', 'module', 'detection'])
def test_cli_round_trip(tmp_path, capsys, official, wrap):
    sd = _perturbed(official['state_dict'])
    heads = {'rpn_head.rpn_conv.weight': torch.randn(64, 64, 3, 3)}
    if wrap == 'model':
        ckpt = dict(model={'module.' + k: v for k, v in sd.items()})
    elif wrap == 'module':
        ckpt = dict(module=sd)
    else:  # an official detection checkpoint: backbone.* plus heads
        ckpt = whole_checkpoint(
            {k: v for k, v in sd.items() if conv._decoder_key(k) is None},
            heads)
    src, dst = tmp_path / 'src.pth', tmp_path / 'dst.pth'
    torch.save(ckpt, src)
    args = (src, dst, '--num-heads', 4, '--dec-num-heads', 4)
    if wrap == 'model':  # once as a user runs it
        res = run_cli(*args)
        assert res.returncode == 0, res.stderr
        stdout = res.stdout
    else:
        stdout = run_main(capsys, *args)
    assert 'backbone: width 128, depths (1, 1, 2), heads 4' in stdout
    out = torch.load(dst)
    cfg, osd = out['meta']['model_cfg'], out['state_dict']
    names = ('backbone', 'neck') + (('head', )
                                    if wrap != 'detection' else ())
    for name in names:
        module = MODELS.build(cfg[name])
        part = {k[len(name) + 1:]: v for k, v in osd.items()
                if k.startswith(name + '.')}
        missing, unexpected = module.load_state_dict(part, strict=False)
        assert not missing and not unexpected
    # values, key by key, against the official names written out here (a
    # converter writing zeros, swapping levels or q/k/v fails)
    expect = {
        'backbone.patch_embed.proj.weight': 'patch_embed.proj.weight',
        'backbone.pos_embed': 'absolute_pos_embed',
        'backbone.stages.0.0.mlp.fc1.weight': 'blocks.0.mlp.fc1.weight',
        'backbone.merges.0.reduction.weight': 'blocks.1.reduction.weight',
        'backbone.stages.1.0.norm2.weight': 'blocks.2.norm2.weight',
        'backbone.merges.1.norm.bias': 'blocks.3.norm.bias',
        'backbone.stages.2.0.attn.qkv.weight': 'blocks.4.attn.qkv.weight',
        'backbone.stages.2.1.attn.qkv.bias': 'blocks.5.attn.qkv.bias',
        'backbone.stages.2.1.attn.proj.weight': 'blocks.5.attn.proj.weight',
        'neck.align_16.weight': 'align_dim_16tofpn.weight',
        'neck.align_8.weight': 'align_dim_16to8.weight',
        'neck.align_4.weight': 'align_dim_8to4.weight',
        'neck.split_16to8.reduction.weight': 'split_16to8.reduction.weight',
        'neck.blocks_8.1.mlp.fc2.weight': 'block_16to8.1.mlp.fc2.weight',
        'neck.blocks_4.0.norm2.bias': 'block_8to4.0.norm2.bias',
        # official fpn_modules run stride 16, 8, 4; mmitpn finest first
        'neck.out_blocks.0.mlp.fc1.weight': 'fpn_modules.2.mlp.fc1.weight',
        'neck.out_blocks.2.mlp.fc1.weight': 'fpn_modules.0.mlp.fc1.weight',
    }
    if wrap != 'detection':
        expect.update({
            'head.decoder.level_embeds.0.proj.weight':
            'decoder_embed.2.1.weight',
            'head.decoder.level_embeds.2.norm.weight':
            'decoder_embed.0.0.weight',
            'head.decoder.mask_token': 'mask_token',
            'head.decoder.pos_embed': 'decoder_pos_embed',
            'head.decoder.pred.weight': 'decoder_pred.weight',
        })
    for ours, theirs in expect.items():
        assert torch.equal(osd[ours], sd[theirs]), ours
    if wrap == 'detection':
        assert torch.equal(osd['rpn_head.rpn_conv.weight'],
                           heads['rpn_head.rpn_conv.weight'])
        assert not out['meta']['unmapped_keys']
        assert out['meta']['kind'] == 'detector'


def test_pyramid_width_is_read_from_tensors(official):
    # The released itpn_base_pixel has a 512-wide pyramid (official issue
    # #3): widths must come from the file, not from defaults.
    sd = dict(official['state_dict'])
    _, cfg, _, notes = conv.convert_official(sd, num_heads=4)
    assert cfg['neck']['out_channels'] == 64
    assert any('pyramid: width 64' in n for n in notes)


def test_heads_need_an_argument_for_unofficial_widths(official):
    with pytest.raises(ValueError, match='--num-heads'):
        conv.convert_official(official['state_dict'])
    sd = {k: v for k, v in official['state_dict'].items()}
    with pytest.raises(ValueError, match='not an official iTPN'):
        conv.convert_official({'fc.weight': torch.zeros(2, 2)})
    del sd['blocks.1.reduction.weight']
    with pytest.raises(ValueError, match='2 patch merges'):
        conv.convert_official(sd, num_heads=4)


def test_layer_scale_and_split_qkv_bias_are_converted(official):
    sd = dict(official['state_dict'])
    C = 128
    g = torch.Generator().manual_seed(5)
    gammas = {}
    # every block: MLP-only stage-1/2 blocks (0, 2) carry gamma_2 only
    for i, dim in ((0, C // 4), (2, C // 2), (4, C), (5, C)):
        if i >= 4:
            gammas[f'blocks.{i}.gamma_1'] = torch.rand(dim, generator=g)
        gammas[f'blocks.{i}.gamma_2'] = torch.rand(dim, generator=g)
    sd.update(gammas)
    for i in (4, 5):
        del sd[f'blocks.{i}.attn.qkv.bias']
        sd[f'blocks.{i}.attn.q_bias'] = torch.ones(C)
        sd[f'blocks.{i}.attn.v_bias'] = torch.full((C, ), 2.)
        sd[f'blocks.{i}.attn.relative_position_bias_table'] = torch.zeros(
            11 * 11, 4)
        sd[f'blocks.{i}.attn.relative_position_index'] = torch.zeros(
            36, 36, dtype=torch.long)
    out, cfg, unmapped, notes = conv.convert_official(sd)
    assert cfg['backbone']['arch']['num_heads'] == 4  # from the rpe table
    assert cfg['backbone']['rpe_type'] == 'swin'
    assert cfg['backbone']['layer_scale_stages'] == (0, 1, 2)
    assert cfg['backbone']['layer_scale_init_value'] > 0
    bias = out['backbone.stages.2.0.attn.qkv.bias']
    assert torch.equal(bias, torch.cat([torch.ones(C), torch.zeros(C),
                                        torch.full((C, ), 2.)]))
    for ours, theirs in (('stages.0.0.gamma2', 'blocks.0.gamma_2'),
                         ('stages.1.0.gamma2', 'blocks.2.gamma_2'),
                         ('stages.2.0.gamma1', 'blocks.4.gamma_1'),
                         ('stages.2.1.gamma2', 'blocks.5.gamma_2')):
        assert torch.equal(out['backbone.' + ours], gammas[theirs]), ours
    model = MODELS.build(cfg['backbone'])
    part = {k[9:]: v for k, v in out.items() if k.startswith('backbone.')}
    model.load_state_dict(part)
    # the model applies them: stage-1 gamma2 is a parameter of the block
    assert torch.equal(model.stages[0][0].gamma2, gammas['blocks.0.gamma_2'])
    assert not unmapped
    assert any('2 recomputed buffers' in n for n in notes)
    assert any('4 q/v biases merged into 2 qkv biases' in n for n in notes)


def _clip_pretrain_state(official, seed=0):
    """An official ``itpn_clip`` state dict (iTPNClipDistill names): the
    tiny golden backbone + pyramid with layer scale on every block, Swin
    tables, the backbone mask token, the pyramid head (decoder_embed LN +
    Linear to E, E/4, E/16; norm; lm_head) and the side head
    (cls_pt_layers: 2 attention blocks with layer scale and tables;
    norm_cls; lm_cls_head)."""
    g = torch.Generator().manual_seed(seed)
    C, F, T, heads = 128, 64, 48, 4
    sd = {k: v for k, v in official['state_dict'].items()
          if conv._decoder_key(k) is None}

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


def test_clip_pretraining_converts_completely(official):
    sd = _clip_pretrain_state(official)
    out, notes = conv.convert_checkpoint(dict(model=sd))
    meta, osd = out['meta'], out['state_dict']
    assert meta['kind'] == 'clip-pretrain'
    assert not meta['unmapped_keys']
    # only the index buffers are dropped, each named
    assert sorted(meta['tensors']['dropped']) == sorted(
        k for k in sd if k.endswith('relative_position_index'))
    cfg = meta['model_cfg']
    b = cfg['backbone']
    assert b['layer_scale_stages'] == (0, 1, 2)
    assert b['use_mask_token'] and b['rpe_type'] == 'swin'
    assert b['pos_embed_type'] == 'learnable' and \
        b['pos_embed_init'] == 'trunc_normal'
    assert b['norm_eps'] == 1e-6 and cfg['neck']['num_outs'] == 3
    # mask token and every gamma go to the backbone
    assert torch.equal(osd['backbone.mask_token'], sd['mask_token'])
    for ours, theirs in (('stages.0.0.gamma2', 'blocks.0.gamma_2'),
                         ('stages.1.0.gamma2', 'blocks.2.gamma_2')):
        assert torch.equal(osd['backbone.' + ours], sd[theirs])
    # pyramid head: decoder_embed 0 (stride 16) is mmitpn's last level
    assert torch.equal(osd['head.decoder.level_embeds.2.proj.weight'],
                       sd['decoder_embed.0.1.weight'])
    assert torch.equal(osd['head.decoder.level_embeds.0.norm.bias'],
                       sd['decoder_embed.2.0.bias'])
    assert torch.equal(osd['head.decoder.norm.weight'], sd['norm.weight'])
    assert torch.equal(osd['head.decoder.pred.weight'], sd['lm_head.weight'])
    assert 'backbone.norm.weight' not in osd  # not a backbone final norm
    # side head
    assert torch.equal(osd['side_head.decoder.blocks.1.gamma1'],
                       sd['cls_pt_layers.1.gamma_1'])
    assert torch.equal(osd['side_head.decoder.norm.bias'],
                       sd['norm_cls.bias'])
    assert torch.equal(osd['side_head.decoder.pred.weight'],
                       sd['lm_cls_head.weight'])
    for name in ('backbone', 'neck', 'head', 'side_head'):
        module = MODELS.build(cfg[name])
        part = {k[len(name) + 1:]: v for k, v in osd.items()
                if k.startswith(name + '.')}
        missing, unexpected = module.load_state_dict(part, strict=False)
        assert not missing and not unexpected, (name, missing, unexpected)
    n_out = sum(1 for k in osd)
    assert meta['tensors']['out'] == n_out == len(sd) - 3


def test_clip_side_head_matches_the_official_computation(official):
    """The converted side head computes what the official cls_pt_layers +
    norm_cls + lm_cls_head compute (written out here with plain torch ops:
    pre-norm attention with a Swin bias and layer scale, eps 1e-5)."""
    import torch.nn.functional as F
    # weights of unit-scale activations (fp32 comparisons stay meaningful)
    sd = {
        k: v * 0.2 if v.is_floating_point() and k.startswith(
            ('cls_pt_layers.', 'lm_cls_head.')) else v
        for k, v in _clip_pretrain_state(official).items()
    }
    out, _ = conv.convert_checkpoint(dict(model=sd))
    cfg = out['meta']['model_cfg']['side_head']
    head = MODELS.build(cfg).eval()
    head.load_state_dict({k[len('side_head.'):]: v
                          for k, v in out['state_dict'].items()
                          if k.startswith('side_head.')})
    from mmitpn.models.layers import relative_position_index
    C, heads, B, N = 128, 4, 2, 196
    x = torch.randn(B, N, C)
    index = relative_position_index((14, 14))
    y = x
    for j in range(2):
        def p(n):
            return sd[f'cls_pt_layers.{j}.{n}']
        h = F.layer_norm(y, (C, ), p('norm1.weight'), p('norm1.bias'), 1e-5)
        qkv = (h @ p('attn.qkv.weight').t() + p('attn.qkv.bias')).reshape(
            B, N, 3, heads, C // heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = (q * (C // heads)**-0.5) @ k.transpose(-2, -1)
        bias = p('attn.relative_position_bias_table')[index.view(-1)].view(
            N, N, heads).permute(2, 0, 1)
        attn = (attn + bias).softmax(-1)
        a = (attn @ v).transpose(1, 2).reshape(B, N, C)
        a = a @ p('attn.proj.weight').t() + p('attn.proj.bias')
        y = y + p('gamma_1') * a
        h = F.layer_norm(y, (C, ), p('norm2.weight'), p('norm2.bias'), 1e-5)
        h = F.gelu(h @ p('mlp.fc1.weight').t() + p('mlp.fc1.bias'))
        h = h @ p('mlp.fc2.weight').t() + p('mlp.fc2.bias')
        y = y + p('gamma_2') * h
    y = F.layer_norm(y, (C, ), sd['norm_cls.weight'], sd['norm_cls.bias'],
                     1e-6)
    want = y @ sd['lm_cls_head.weight'].t() + sd['lm_cls_head.bias']
    with torch.no_grad():
        got = head.decoder([x.view(B, N, 1, 1, C)])
    assert want.abs().max() > 1  # not a vanishing output
    assert (got - want).abs().max() < 1e-4


# -------------------------------------------------------- converter checks
def test_mmitpn_checkpoint_gets_a_clear_message(tmp_path, official):
    out, _ = conv.convert_checkpoint(dict(model=official['state_dict']),
                                     num_heads=4, dec_num_heads=4)
    src = tmp_path / 'converted.pth'
    torch.save(out, src)
    res = run_cli(src, tmp_path / 'again.pth')  # the one line a user sees
    assert res.returncode != 0
    assert res.stderr.strip().splitlines() == [
        "itpn_to_mmitpn: This checkpoint is already in mmitpn format (key "
        "'backbone.stages.0.0.norm2.weight'): no conversion needed; load it "
        "directly (init_cfg=dict(type='Pretrained', checkpoint=..., "
        "prefix='backbone.'), load_from, or tools/test.py)."]


def test_num_heads_must_divide_the_width(tmp_path, official):
    src, dst = tmp_path / 'src.pth', tmp_path / 'dst.pth'
    torch.save(dict(model=official['state_dict']), src)
    with pytest.raises(ValueError,
                       match='--num-heads 3 does not divide the stage-3 '
                       'width 128'):
        conv.main([str(src), str(dst), '--num-heads', '3'])
    assert not dst.exists()


def test_dst_equal_to_src_is_refused(tmp_path, official):
    src = tmp_path / 'src.pth'
    torch.save(dict(model=official['state_dict']), src)
    before = src.read_bytes()
    with pytest.raises(SystemExit, match='is SRC'):
        conv.main([str(src), str(tmp_path / '.' / 'src.pth')])
    assert src.read_bytes() == before


def test_missing_output_folder_is_refused_before_converting(tmp_path):
    src = tmp_path / 'src.pth'
    src.write_bytes(b'not even read')  # refused before loading
    with pytest.raises(SystemExit, match='Output folder .*nope does not '
                       r'exist; create it \(mkdir -p'):
        conv.main([str(src), str(tmp_path / 'nope' / 'out.pth')])


def test_truncated_checkpoint_gives_one_line_error(tmp_path):
    src = tmp_path / 'bad.pth'
    torch.save({'model': {'a': torch.zeros(1000)}}, src)
    src.write_bytes(src.read_bytes()[:200])
    with pytest.raises(SystemExit, match='Cannot read .*truncated'):
        conv.main([str(src), str(tmp_path / 'out.pth')])


def test_task_must_agree_with_the_heads(official):
    bb = {k: v for k, v in official['state_dict'].items()
          if conv._decoder_key(k) is None}
    ckpt = whole_checkpoint(bb, {'rpn_head.rpn_conv.weight': torch.ones(1)})
    with pytest.raises(ValueError, match='--task seg contradicts the '
                       'checkpoint, a detector'):
        conv.convert_checkpoint(ckpt, num_heads=4, task='seg')
