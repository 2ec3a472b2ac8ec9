"""mmitpn.converters.official: official checkpoints of every kind
(pixel / CLIP pre-training, Mask R-CNN, Cascade, UPerNet) convert
completely, with their architecture, and load into mmitpn / mmdet 3 /
mmseg 1 models.

Official-format inputs come from ``tests/official_checkpoints.py``: the
official backbone key layout of the golden files plus head tensors under
the names the official forks give them.
"""
import pytest
import torch
from conftest import REPO
from mmengine.config import Config
from mmengine.registry import DefaultScope
from official_checkpoints import (DETSEG, GOLDEN, NUM_CLASSES,
                                  clip_pretrain_state, mmdet2_head_shapes,
                                  mmseg0_head_shapes, perturbed,
                                  pixel_backbone_state, random_tensors,
                                  whole_checkpoint)

from mmitpn.converters import official as conv
from mmitpn.registry import MODELS

needs_detseg = pytest.mark.skipif(
    DETSEG is None, reason='itpn_official_detseg_tiny.pt not found')


@pytest.fixture(scope='module')
def official():
    return torch.load(GOLDEN, map_location='cpu')


@pytest.fixture(scope='module')
def detseg():
    return torch.load(DETSEG, map_location='cpu')


# ------------------------------------------------------------- key maps
def test_levels_reverse_between_official_and_mmitpn_order():
    # official (and mmpretrain) levels run stride 16, 8, 4; mmitpn 4, 8, 16
    assert [conv.reverse_level(i) for i in range(3)] == [2, 1, 0]
    assert [conv.reverse_level(i, 5) for i in range(5)] == [4, 3, 2, 1, 0]


def test_neck_key_names_every_official_pyramid_module():
    expect = {
        'align_dim_16tofpn.weight': 'neck.align_16.weight',
        'align_dim_16to8.bias': 'neck.align_8.bias',
        'align_dim_8to4.weight': 'neck.align_4.weight',
        'split_16to8.reduction.weight': 'neck.split_16to8.reduction.weight',
        'split_8to4.norm.bias': 'neck.split_8to4.norm.bias',
        'block_16to8.1.mlp.fc2.weight': 'neck.blocks_8.1.mlp.fc2.weight',
        'block_8to4.0.norm1.weight': 'neck.blocks_4.0.norm1.weight',
        'fpn_modules.0.mlp.fc1.weight': 'neck.out_blocks.2.mlp.fc1.weight',
        'fpn_modules.1.norm2.bias': 'neck.out_blocks.1.norm2.bias',
        'fpn_modules.2.mlp.fc2.bias': 'neck.out_blocks.0.mlp.fc2.bias',
    }
    for theirs, ours in expect.items():
        assert conv.neck_key(theirs) == ours, theirs
    for other in ('blocks.0.mlp.fc1.weight', 'decoder_pred.weight',
                  'norm.weight', 'patch_embed.proj.weight'):
        assert conv.neck_key(other) is None, other


def test_level_embed_and_decoder_keys():
    assert conv.level_embed_key('decoder_embed.0.1.weight') == \
        'level_embeds.2.proj.weight'
    assert conv.level_embed_key('decoder_embed.2.0.bias') == \
        'level_embeds.0.norm.bias'
    assert conv.level_embed_key('decoder_blocks.0.norm1.weight') is None
    expect = {
        'mask_token': 'mask_token',
        'decoder_pos_embed': 'pos_embed',
        'decoder_embed.1.1.bias': 'level_embeds.1.proj.bias',
        'decoder_blocks.0.attn.qkv.weight': 'blocks.0.attn.qkv.weight',
        'decoder_norm.weight': 'norm.weight',
        'decoder_pred.bias': 'pred.bias',
    }
    for theirs, ours in expect.items():
        assert conv.pixel_decoder_key(theirs) == ours, theirs
    assert conv.pixel_decoder_key('fpn_modules.0.norm1.weight') is None
    expect = {
        'decoder_embed.0.0.weight': 'head.decoder.level_embeds.2.norm.weight',
        'norm.bias': 'head.decoder.norm.bias',
        'lm_head.weight': 'head.decoder.pred.weight',
        'cls_pt_layers.1.gamma_2': 'side_head.decoder.blocks.1.gamma2',
        'cls_pt_layers.0.attn.proj.bias':
        'side_head.decoder.blocks.0.attn.proj.bias',
        'norm_cls.weight': 'side_head.decoder.norm.weight',
        'lm_cls_head.bias': 'side_head.decoder.pred.bias',
    }
    for theirs, ours in expect.items():
        assert conv.clip_head_key(theirs) == ours, theirs


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


@needs_detseg
@pytest.mark.parametrize('name', list(WHOLE))
def test_whole_checkpoint_loads_into_its_config(official, detseg, name):
    entry, config, task, cascade = WHOLE[name]
    backbone_sd = perturbed(pixel_backbone_state(official) if entry is None
                            else detseg[entry]['state_dict'])
    F = backbone_sd['split_16to8.reduction.weight'].shape[0] // 4
    if task == 'det':
        shapes = mmdet2_head_shapes(F, cascade)
    else:
        C = backbone_sd['patch_embed.proj.weight'].shape[0] * 4
        shapes = mmseg0_head_shapes(
            [F + C // 4, F + C // 2, F + C, F + C])
    heads = random_tensors(shapes, seed=3)
    sd, meta, report = conv.convert_official(
        whole_checkpoint(backbone_sd, heads),
        num_heads=4 if entry is None else None)
    n_buffers = sum(k.endswith('relative_position_index')
                    for k in backbone_sd)
    n_in = len(backbone_sd) + len(heads)
    # every tensor is accounted for: out + dropped (named buffers)
    assert meta['tensors']['in'] == n_in
    assert meta['tensors']['out'] == n_in - n_buffers == len(sd)
    assert meta['tensors']['dropped'] == [
        'backbone.' + k for k in backbone_sd
        if k.endswith('relative_position_index')
    ]
    assert not meta['unmapped_keys']
    assert any(line.startswith(f'tensors: in {n_in}, out {n_in - n_buffers}'
                               f', dropped {n_buffers}') for line in report)
    assert any('renamed: none' in line for line in report)
    # the model the config describes, narrowed to the tiny widths
    model = _build_host_model(config, meta['model_cfg'], F, task)
    missing, unexpected = model.load_state_dict(sd, strict=False)
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
        _, meta, _ = conv.convert_official(
            whole_checkpoint(
                detseg[entry]['state_dict'],
                {'rpn_head.rpn_conv.weight': torch.zeros(1)} if task == 'det'
                else {'decode_head.conv_seg.weight': torch.zeros(1)}))
        cfg = meta['model_cfg']
        b, n = cfg['backbone'], cfg['neck']
        assert meta['kind'] == ('detector' if task == 'det' else
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
    for names in conv.PAPER_CONFIGS.values():
        for name in names:
            assert (REPO / 'configs' / 'itpn' / name).is_file(), name


def test_report_of_the_golden_file_is_the_documented_one(official):
    # README.md, "Checking a download", less the line the tool adds
    _, _, report = conv.convert_official(official, num_heads=4,
                                         dec_num_heads=4)
    assert report == [
        'kind: pixel-pretrain',
        'backbone: width 128, depths (1, 1, 2), heads 4, rpe none, layer '
        'scale on stages none, LayerNorm eps 1e-06',
        'pyramid: width 64, fpn_depth 2',
        'pixel decoder: width 64, depth 1, heads 4',
        'tensors: in 129, out 129, dropped 0',
        'config: no configs/itpn/ config for this architecture',
    ]


def test_pyramid_width_is_read_from_tensors(official):
    # The released itpn_base_pixel has a 512-wide pyramid (official issue
    # #3): widths must come from the file, not from defaults.
    _, meta, report = conv.convert_official(official['state_dict'],
                                            num_heads=4)
    assert meta['model_cfg']['neck']['out_channels'] == 64
    assert 'pyramid: width 64, fpn_depth 2' in report


def test_unconverted_keys_are_named(official):
    sd = dict(official['state_dict'], **{'extra.thing': torch.ones(2)})
    out, meta, report = conv.convert_official(sd, num_heads=4)
    assert meta['unmapped_keys'] == ['extra.thing']
    assert meta['tensors']['dropped'] == ['extra.thing']
    assert len(out) == len(sd) - 1
    assert report[-2] == ('1 keys not converted (not part of the backbone, '
                          'pyramid or heads): extra.thing')


def test_heads_need_an_argument_for_unofficial_widths(official):
    with pytest.raises(ValueError, match='--num-heads'):
        conv.convert_official(official['state_dict'])
    sd = {k: v for k, v in official['state_dict'].items()}
    with pytest.raises(ValueError, match='not an official iTPN'):
        conv.convert_official({'fc.weight': torch.zeros(2, 2)})
    del sd['blocks.1.reduction.weight']
    with pytest.raises(ValueError, match='2 patch merges'):
        conv.convert_official(sd, num_heads=4)


def test_official_width_gives_the_official_heads(official):
    # a 512-wide iTPN-B without tables: 8 heads, said so in the report
    sd = {k: v for k, v in official['state_dict'].items()}
    sd['patch_embed.proj.weight'] = torch.zeros(128, 3, 4, 4)
    sd['blocks.5.mlp.fc1.weight'] = torch.zeros(2048, 512)
    _, meta, report = conv.convert_official(sd, dec_num_heads=4)
    assert meta['model_cfg']['backbone']['arch']['num_heads'] == 8
    assert meta['model_cfg']['backbone']['mlp_ratio'] == 4
    assert report[2] == ('num_heads=8 taken from the official architecture '
                         'of width 512 (not stored in the file)')


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
    out, meta, report = conv.convert_official(sd)
    cfg, unmapped = meta['model_cfg'], meta['unmapped_keys']
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
    assert any('2 recomputed buffers' in n for n in report)
    assert any('4 q/v biases merged into 2 qkv biases' in n for n in report)
    assert meta['tensors']['merged'] == [
        f'blocks.{i}.attn.{b}_bias' for i in (4, 5) for b in 'qv']


def test_clip_pretraining_converts_completely(official):
    sd = clip_pretrain_state(official)
    osd, meta, _ = conv.convert_official(dict(model=sd))
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
        for k, v in clip_pretrain_state(official).items()
    }
    osd, meta, _ = conv.convert_official(dict(model=sd))
    head = MODELS.build(meta['model_cfg']['side_head']).eval()
    head.load_state_dict({k[len('side_head.'):]: v
                          for k, v in osd.items()
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
def test_mmitpn_checkpoint_is_refused(official):
    osd, _, _ = conv.convert_official(dict(model=official['state_dict']),
                                      num_heads=4, dec_num_heads=4)
    with pytest.raises(ValueError) as e:
        conv.convert_official(dict(state_dict=osd))
    assert str(e.value) == (
        "This checkpoint is already in mmitpn format (key "
        "'backbone.stages.0.0.norm2.weight'): no conversion needed; load it "
        "directly (init_cfg=dict(type='Pretrained', checkpoint=..., "
        "prefix='backbone.'), load_from, or tools/test.py).")


def test_num_heads_must_divide_the_width(official):
    with pytest.raises(ValueError,
                       match=r'--num-heads 3 does not divide the stage-3 '
                       r'width 128 read from the checkpoint; pass a divisor '
                       r'of 128 \(official: none for this width\)'):
        conv.convert_official(official, num_heads=3)
    with pytest.raises(ValueError, match='--dec-num-heads 3 does not divide '
                       'the decoder width 64'):
        conv.convert_official(official, num_heads=4, dec_num_heads=3)


def test_task_must_agree_with_the_heads(official):
    ckpt = whole_checkpoint(pixel_backbone_state(official),
                            {'rpn_head.rpn_conv.weight': torch.ones(1)})
    with pytest.raises(ValueError, match='--task seg contradicts the '
                       'checkpoint, a detector'):
        conv.convert_official(ckpt, num_heads=4, task='seg')
    # the task a whole detector's heads say is the task recorded
    _, meta, report = conv.convert_official(ckpt, num_heads=4)
    assert meta['task'] == 'det' and report[0] == 'kind: detector (task det)'
    assert meta['model_cfg']['neck']['num_outs'] == 5


def test_paths_are_checked_before_reading(tmp_path):
    src = tmp_path / 'src.pth'
    src.write_bytes(b'not even read')
    with pytest.raises(ValueError, match='is SRC: the official file would '
                       'be overwritten'):
        conv.check_paths(str(src), str(tmp_path / '.' / 'src.pth'))
    with pytest.raises(FileNotFoundError, match='Output folder .*nope does '
                       r'not exist; create it \(mkdir -p'):
        conv.check_paths(str(src), str(tmp_path / 'nope' / 'out.pth'))
    with pytest.raises(FileNotFoundError, match='missing.pth is not a file'):
        conv.check_paths(str(tmp_path / 'missing.pth'),
                         str(tmp_path / 'out.pth'))
    conv.check_paths(str(src), str(tmp_path / 'out.pth'))  # fine
