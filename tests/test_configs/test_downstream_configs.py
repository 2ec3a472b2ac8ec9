"""Downstream configs of configs/itpn/ (Mask R-CNN, Cascade, UPerNet,
classification).

- every config loads with the hosts' bases and scopes its own types;
- hand-over: a checkpoint of the tiny demo pre-training model initialises
  backbone AND pyramid of each downstream model, as the configs load it
  (``init_cfg`` with prefixes ``backbone.`` / ``neck.``), then the model
  runs one CPU forward;
- the layer-wise lr decay groups of a detector follow the documented rule
  (the paper rows' official rules: test_paper_recipes.py).
"""
import re
import uuid
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.logging import MMLogger
from mmengine.model import revert_sync_batchnorm
from mmengine.registry import DefaultScope

REPO = Path(__file__).resolve().parents[2]
ITPN = REPO / 'configs' / 'itpn'
#: host of a downstream config, read from its task in the file name
HOSTS = {'_mask-rcnn_': 'mmdet', '_cascade-mask-rcnn_': 'mmdet',
         '_upernet_': 'mmseg', '_in1k': 'mmpretrain'}
CONFIGS = sorted(p for p in ITPN.glob('*.py')
                 if any(k in p.name for k in HOSTS)
                 and '_hivit-' not in p.name)  # pre-training: its own tests
PRETRAIN_CFG = ITPN / 'itpn-tiny_pixel-mfm_1xb32-200e_demo.py'
DET_DEMO = ITPN / 'itpn-tiny_mask-rcnn_1xb4-6e_demo.py'


def host_of(path):
    return next(h for k, h in HOSTS.items() if k in path.name)


# the demo pre-training model (configs/itpn/itpn-tiny_pixel-mfm_...demo.py)
TINY_ARCH = dict(embed_dims=128, depths=(1, 1, 2), num_heads=4)
STAGE_DIMS = (32, 64, 128)
PT_SIZE = 96
WIDTH = 64


def _our_type_names():
    import mmitpn.datasets  # noqa: F401
    import mmitpn.engine  # noqa: F401
    import mmitpn.models  # noqa: F401
    from mmitpn import registry
    names = set()
    for reg in vars(registry).values():
        if type(reg).__name__ == 'Registry' and reg.scope == 'mmitpn':
            names |= set(reg.module_dict)
    return names


def _types(node, path='cfg'):
    """(path, value) of every ``type`` / ``constructor`` string."""
    if isinstance(node, dict):
        for k, v in node.items():
            if k in ('type', 'constructor') and isinstance(v, str):
                yield f'{path}.{k}', v
            else:
                yield from _types(v, f'{path}.{k}')
    elif isinstance(node, (list, tuple)):
        for i, v in enumerate(node):
            yield from _types(v, f'{path}[{i}]')


def test_every_task_has_configs():
    # 10 COCO / ADE20K paper rows, 4 ImageNet fine-tunings, 2 demos
    assert len(CONFIGS) == 16
    assert {host_of(p) for p in CONFIGS} == set(HOSTS.values())


@pytest.mark.parametrize('cfg_path', CONFIGS, ids=[p.stem for p in CONFIGS])
def test_config_loads_and_scopes_own_types(cfg_path):
    cfg = Config.fromfile(str(cfg_path))
    assert cfg.default_scope == host_of(cfg_path)
    ours = _our_type_names()
    bare = [(p, t) for p, t in _types(cfg._cfg_dict.to_dict())
            if t.split('.')[-1] in ours and not t.startswith('mmitpn.')]
    assert not bare, f'unscoped mmitpn types: {bare}'
    assert cfg.model.backbone.type == 'mmitpn.HiViTBackbone'
    if 'neck' in cfg.model and host_of(cfg_path) != 'mmpretrain':
        assert cfg.model.neck.type == 'mmitpn.ITPNPyramid'
    assert cfg.optim_wrapper.constructor == \
        'mmitpn.ITPNLayerDecayOptimWrapperConstructor'


# ---------------------------------------------------------------- hand-over
@pytest.fixture(scope='module')
def pretrain_ckpt(tmp_path_factory):
    """A checkpoint of the demo pre-training model, weights perturbed so
    that nothing equals a fresh init by chance (LayerNorm ones / zeros,
    the fixed sin-cos table)."""
    from mmpretrain.registry import MODELS
    from mmpretrain.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    cfg = Config.fromfile(str(PRETRAIN_CFG))
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(cfg.model)
    g = torch.Generator().manual_seed(1)
    state = {
        k: v + 0.1 * torch.randn(v.shape, generator=g)
        if v.is_floating_point() else v
        for k, v in model.state_dict().items()
    }
    assert any(k.startswith('teacher.') for k in state)
    assert any(k.startswith('mfm_head.') for k in state)
    path = tmp_path_factory.mktemp('handover') / 'itpn_tiny_pretrain.pth'
    torch.save(dict(state_dict=state, meta={}), path)
    return path, state


def _tiny_det(cfg, ckpt):
    """Shrink a real detection config to the demo pre-training model."""
    m = cfg.model
    m.backbone.update(arch=TINY_ARCH, img_size=PT_SIZE)
    m.neck.update(in_channels=STAGE_DIMS, out_channels=WIDTH, fpn_depth=1)
    m.backbone.init_cfg.checkpoint = str(ckpt)
    m.neck.init_cfg.checkpoint = str(ckpt)
    m.rpn_head.update(in_channels=WIDTH, feat_channels=WIDTH)
    roi = m.roi_head
    roi.bbox_roi_extractor.out_channels = WIDTH
    roi.mask_roi_extractor.out_channels = WIDTH
    heads = roi.bbox_head if isinstance(roi.bbox_head, list) else [
        roi.bbox_head
    ]
    for h in heads:
        h.update(
            in_channels=WIDTH, conv_out_channels=WIDTH, fc_out_channels=64,
            num_classes=3)
    roi.mask_head.update(
        in_channels=WIDTH, conv_out_channels=WIDTH, num_classes=3)
    return cfg


def _tiny_seg(cfg, ckpt, img_size=128):
    m = cfg.model
    m.backbone.update(arch=TINY_ARCH, img_size=img_size)
    if 'pos_embed_size' in m.backbone:  # the pre-training grid, as 224 is
        m.backbone.pos_embed_size = PT_SIZE
    m.neck.update(in_channels=STAGE_DIMS, out_channels=WIDTH, fpn_depth=1)
    m.backbone.init_cfg.checkpoint = str(ckpt)
    m.neck.init_cfg.checkpoint = str(ckpt)
    widths = [WIDTH] * 4
    if m.neck.get('concat_inputs', False):
        widths = [WIDTH + c for c in STAGE_DIMS + STAGE_DIMS[-1:]]
    m.decode_head.update(in_channels=widths, channels=32, num_classes=3)
    m.auxiliary_head.update(in_channels=widths[2], channels=16, num_classes=3)
    return cfg


def _tiny_cls(cfg, ckpt):
    m = cfg.model
    m.backbone.update(arch=TINY_ARCH, img_size=PT_SIZE)
    m.backbone.init_cfg.checkpoint = str(ckpt)
    m.head.update(in_channels=STAGE_DIMS[-1], num_classes=10)
    return cfg


def _set_ckpt(cfg, ckpt):
    cfg.model.backbone.init_cfg.checkpoint = str(ckpt)
    cfg.model.neck.init_cfg.checkpoint = str(ckpt)
    return cfg


RPE = 'relative_position_bias_table'
# name: (config, host, shrink, backbone keys that are new by design)
HANDOVER = {
    'mask_rcnn': ('itpn-base-pixel_mask-rcnn_8xb8-amp-1x_coco.py', 'mmdet',
                  _tiny_det, ()),
    'mask_rcnn_demo': ('itpn-tiny_mask-rcnn_1xb4-6e_demo.py', 'mmdet',
                       _set_ckpt, ()),
    'cascade': ('itpn-base-pixel_cascade-mask-rcnn_8xb8-amp-3x_coco.py',
                'mmdet', _tiny_det, ()),
    # UPerNet turns rpe on, which pixel pre-training does not have; its
    # grid (img_size 128) differs from pre-training's: pos_embed is resized
    'upernet': ('itpn-base-pixel_upernet_8xb2-amp-160k_ade20k-512x512.py',
                'mmseg', _tiny_seg, (RPE, )),
    'upernet_demo': ('itpn-tiny_upernet_1xb4-2k_demo.py', 'mmseg',
                     _set_ckpt, (RPE, )),
    # final_norm and the rpe tables are new for classification
    'classifier': ('itpn-base-pixel_8xb128-coslr-100e_in1k.py', 'mmpretrain',
                   _tiny_cls, (RPE, 'norm.weight', 'norm.bias')),
}


def _init_weights_logged(model, tmp_path):
    """Run ``init_weights`` under a fresh MMLogger; return its log text."""
    log_file = tmp_path / 'init.log'
    logger = MMLogger.get_instance(
        f'handover-{uuid.uuid4().hex}', log_file=str(log_file))
    model.init_weights()
    for h in logger.handlers:
        h.flush()
    return log_file.read_text()


def _load_report(log, prefix, ckpt):
    """Missing / unexpected keys MMEngine logged for one prefix's load."""
    start = log.index(f'load {prefix} in model from: {ckpt}')
    nxt = log.find(' in model from: ', log.index('\n', start))
    seg = log[start:nxt if nxt != -1 else None]

    def keys(what):
        m = re.search(rf'{what} in source state_dict: ([^\n]*)', seg)
        return set(m.group(1).split(', ')) if m else set()

    return keys('missing keys'), keys('unexpected key')


def _check_loaded(module, state, prefix, new_keys=()):
    """Every tensor of ``module`` equals the checkpoint's, except the new
    keys; returns the names not in the checkpoint."""
    from mmitpn.models.layers import resize_pos_embed
    absent = set()
    for k, v in module.state_dict().items():
        src = state.get(prefix + k)
        if src is None:
            absent.add(k)
            continue
        if k == 'pos_embed' and src.shape != v.shape:
            s = int(src.shape[1]**0.5)
            src = resize_pos_embed(src, (s, s), module.grid_size)
        assert torch.equal(v, src), f'{prefix}{k} was not loaded'
    assert all(any(n in k for n in new_keys) for k in absent), absent
    return absent


def _forward(model, host, pad):
    model = revert_sync_batchnorm(model).eval()
    with torch.no_grad():
        if host == 'mmdet':
            from mmdet.testing import demo_mm_inputs
            packed = demo_mm_inputs(
                1, [[3, 100, 140]], with_mask=True, num_classes=3)
            data = model.data_preprocessor(packed, False)
            # padded to 32 (official) or 64 (the demo)
            assert data['inputs'].shape[-2:] == (
                (128, 160) if pad == 32 else (128, 192))
            res = model(**data, mode='predict')
            assert 'bboxes' in res[0].pred_instances
            assert 'masks' in res[0].pred_instances
        elif host == 'mmseg':
            from mmseg.structures import SegDataSample
            meta = dict(ori_shape=(100, 140), img_shape=(100, 140))
            data = model.data_preprocessor(
                dict(
                    inputs=[torch.randint(0, 256, (3, 100, 140),
                                          dtype=torch.uint8)],
                    data_samples=[SegDataSample(metainfo=meta)]), False)
            assert data['inputs'].shape[-2:] == (112, 144)  # padded to 16
            res = model(**data, mode='predict')
            assert res[0].pred_sem_seg.data.shape == (1, 100, 140)
            assert int(res[0].pred_sem_seg.data.max()) < 3
        else:
            logits = model(torch.randn(2, 3, PT_SIZE, PT_SIZE), mode='tensor')
            assert logits.shape == (2, 10)


@pytest.mark.parametrize('name', list(HANDOVER))
def test_pretrained_backbone_and_pyramid_hand_over(name, pretrain_ckpt,
                                                   tmp_path):
    rel, host, shrink, new_keys = HANDOVER[name]
    ckpt, state = pretrain_ckpt
    __import__(f'{host}.utils', fromlist=['x']).register_all_modules(
        init_default_scope=False)
    registry = __import__(f'{host}.registry', fromlist=['MODELS']).MODELS
    cfg = shrink(Config.fromfile(str(ITPN / rel)), ckpt)
    with DefaultScope.overwrite_default_scope(host):
        model = registry.build(cfg.model)
        log = _init_weights_logged(model, tmp_path)

        missing, unexpected = _load_report(log, 'backbone.', ckpt)
        absent = _check_loaded(model.backbone, state, 'backbone.', new_keys)
        assert missing == absent and not unexpected, log
        # mmitpn's own one-line summary of the load (what *was* loaded)
        n = len(model.backbone.state_dict())
        assert (f'HiViTBackbone: loaded {n - len(missing)} of {n} tensors '
                f'from the checkpoint') in log, log
        if name == 'classifier':
            assert {k for k in missing if RPE not in k} == {
                'norm.weight', 'norm.bias'}
        elif name.startswith('upernet'):
            assert missing and all(RPE in k for k in missing)
            # the paper config keeps the pre-training's 6x6 table (and
            # interpolates it at every forward); the demo resizes it to 8x8
            assert model.backbone.pos_embed.shape[1] == (
                36 if name == 'upernet' else 64)
        else:
            assert not missing
        if name != 'classifier':
            missing, unexpected = _load_report(log, 'neck.', ckpt)
            assert not missing and not unexpected, log
            assert not _check_loaded(model.neck, state, 'neck.')
            n = len(model.neck.state_dict())
            assert (f'ITPNPyramid: loaded {n} of {n} tensors from the '
                    'checkpoint\n') in log, log
        _forward(model, host,
                 cfg.model.get('data_preprocessor', {}).get(
                     'pad_size_divisor'))


# ----------------------------------------------------------------- lr decay
def test_layer_decay_groups_of_a_detector():
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    from mmengine.optim import build_optim_wrapper
    register_all_modules(init_default_scope=False)
    cfg = Config.fromfile(str(DET_DEMO))
    cfg.model.backbone.update(
        init_cfg=None, rpe_type='swin', layer_scale_init_value=0.1)
    cfg.model.neck.init_cfg = None
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = MODELS.build(cfg.model)
        wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    lr = cfg.optim_wrapper.optimizer.lr
    wd = cfg.optim_wrapper.optimizer.weight_decay
    d = cfg.optim_wrapper.paramwise_cfg.layer_decay_rate
    num_blocks = sum(TINY_ARCH['depths'])  # B = 4

    group_of = {}
    for g in wrapper.optimizer.param_groups:
        for p in g['params']:
            group_of[id(p)] = g
    names = dict(model.named_parameters())
    assert len(group_of) == len(names)

    def lr_of(n):
        return group_of[id(names[n])]['lr']

    def wd_of(n):
        return group_of[id(names[n])]['weight_decay']

    approx = pytest.approx
    assert lr_of('backbone.patch_embed.proj.weight') == approx(
        lr * d**(num_blocks + 1))
    assert lr_of('backbone.pos_embed') == approx(lr * d**(num_blocks + 1))
    assert lr_of('backbone.stages.0.0.mlp.fc1.weight') == approx(
        lr * d**num_blocks)
    # a merge shares the depth of the block before it
    assert lr_of('backbone.merges.0.reduction.weight') == approx(
        lr * d**num_blocks)
    assert lr_of('backbone.stages.1.0.mlp.fc1.weight') == approx(
        lr * d**(num_blocks - 1))
    assert lr_of('backbone.stages.2.1.attn.qkv.weight') == approx(lr * d)
    for n in ('neck.split_16to8.reduction.weight', 'rpn_head.rpn_conv.weight',
              'roi_head.bbox_head.fc_cls.weight',
              'roi_head.mask_head.conv_logits.weight'):
        assert lr_of(n) == approx(lr), n

    for n in names:
        no_decay = names[n].ndim == 1 or any(
            k in n for k in ('pos_embed', RPE, 'gamma1', 'gamma2', 'norm'))
        assert wd_of(n) == (0. if no_decay else wd), n
    assert wd_of('backbone.stages.2.0.attn.' + RPE) == 0.
    assert wd_of('backbone.stages.2.0.gamma1') == 0.
    assert wd_of('backbone.pos_embed') == 0.
    assert wd_of('backbone.stages.2.0.attn.qkv.weight') == wd
    assert wd_of('roi_head.bbox_head.shared_convs.0.conv.weight') == wd


# ------------------------------------------------- partial loads on purpose
@pytest.mark.parametrize('rel, extra', [
    # a depth-2 pre-training pyramid into the official depth-1 COCO neck
    ('itpn-base-pixel_mask-rcnn_8xb8-amp-1x_coco.py',
     ['neck.blocks_8.1.mlp.fc1.weight', 'neck.blocks_4.1.norm2.bias']),
    # a CLIP pre-training's Swin tables into the rpe-free CLIP-B detector
    ('itpn-base-clip_mask-rcnn_8xb8-amp-3x_coco.py',
     ['backbone.stages.2.0.attn.relative_position_bias_table',
      'backbone.stages.2.1.attn.relative_position_bias_table']),
])
def test_official_partial_loads(rel, extra, tmp_path):
    """The COCO paper configs drop exactly what the official strict=False
    load dropped; any other key still stops the load."""
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    ckpt = tmp_path / 'pretrain.pth'
    cfg = _tiny_det(Config.fromfile(str(ITPN / rel)), ckpt)
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = MODELS.build(cfg.model)
    state = {k: v.clone() for k, v in model.state_dict().items()
             if k.startswith(('backbone.', 'neck.'))}
    for k in extra:
        state[k] = torch.ones(3)
    torch.save(dict(state_dict=state), ckpt)
    with DefaultScope.overwrite_default_scope('mmdet'):
        log = _init_weights_logged(model, tmp_path)
    assert f'partial load (allow_partial_load=' in log, log
    assert all(k.split('.', 1)[1] in log for k in extra), log
    # one more unexpected key is refused
    state['neck.blocks_8.2.mlp.fc1.weight'] = torch.ones(3)
    state['backbone.stages.2.5.attn.qkv.weight'] = torch.ones(3)
    torch.save(dict(state_dict=state), ckpt)
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = MODELS.build(cfg.model)
        with pytest.raises(ValueError, match='incomplete load'):
            model.init_weights()
