"""Parity with tensors computed by the official iTPN implementation.

Every ``*.pt`` reference file (see ``conftest.golden_files``) is converted
with ``tools/model_converters/itpn_to_mmitpn.py``; the modules built from
the converter's ``meta['model_cfg']`` must reproduce the official outputs.
"""
import pytest
import torch
from conftest import golden_files, load_tool

from mmitpn.registry import MODELS

FILES = golden_files()
conv = load_tool('tools/model_converters/itpn_to_mmitpn.py')


def _build(ref):
    arch = ref['arch']
    sd, cfg, unmapped, _ = conv.convert_official(
        conv.unwrap_state_dict(ref['state_dict']),
        num_heads=arch['num_heads'],
        norm_eps=arch.get('norm_eps', 1e-6),
        dec_num_heads=arch.get('dec_heads'))
    modules = {}
    for name in ('backbone', 'neck', 'head'):
        if name not in cfg:
            continue
        module = MODELS.build(cfg[name]).eval()
        part = {k[len(name) + 1:]: v for k, v in sd.items()
                if k.startswith(name + '.')}
        missing, unexpected = module.load_state_dict(part, strict=False)
        assert not missing and not unexpected, (name, missing, unexpected)
        modules[name] = module
    return modules, cfg, unmapped


@pytest.fixture(params=FILES, ids=[f.name for f in FILES], scope='module')
def ref(request):
    return torch.load(request.param, map_location='cpu')


def test_golden_file_is_present():
    assert any(f.name == 'itpn_official_tiny.pt' for f in FILES)


def test_converter_infers_the_architecture(ref):
    arch = ref['arch']
    _, cfg, unmapped = _build(ref)
    b = cfg['backbone']
    assert b['arch'] == dict(
        embed_dims=arch['embed_dim'],
        depths=[arch['mlp_depth'], arch['mlp_depth'], arch['depth']],
        num_heads=arch['num_heads'])
    assert b['use_rpe'] == arch['rpe']
    assert b['img_size'] == arch['pretrain_img_size']
    assert cfg['neck']['out_channels'] == arch['fpn_dim']
    assert cfg['neck']['fpn_depth'] == arch['fpn_depth']
    assert cfg['head']['depth'] == arch['dec_depth']
    assert not unmapped


def test_pretrain_pyramid_parity(ref):
    modules, _, _ = _build(ref)
    p = ref['pretrain']
    with torch.no_grad():
        feats = modules['backbone'](p['img'], ids_keep=p['ids_keep'])
        pyramid = modules['neck'](feats)
    # official order is stride 16, 8, 4; ours finest first
    for ours, theirs in zip(pyramid, p['pyramid'][::-1]):
        assert ours.shape == theirs.shape
        assert (ours - theirs).abs().max() < 1e-4


def test_pretrain_pixel_parity(ref):
    modules, _, _ = _build(ref)
    p = ref['pretrain']
    with torch.no_grad():
        pyramid = modules['neck'](
            modules['backbone'](p['img'], ids_keep=p['ids_keep']))
        pred = modules['head'].predict(pyramid, p['ids_restore'])
        loss = modules['head'].loss(pyramid, p['ids_restore'], p['img'],
                                    p['mask'])
    assert (pred - p['pred']).abs().max() < 1e-4
    assert abs(loss.item() - p['loss'].item()) / abs(p['loss'].item()) < 1e-5


def test_detection_parity(ref):
    modules, _, _ = _build(ref)
    d = ref['detection']
    assert d['img'].shape[-1] != d['img'].shape[-2]  # interpolated ape
    with torch.no_grad():
        outs = modules['neck'](modules['backbone'](d['img']))
    assert len(outs) == len(d['outs']) == 5
    for ours, theirs in zip(outs, d['outs']):
        assert ours.shape == theirs.shape
        assert (ours - theirs).abs().max() < 1e-4


def test_detection_backbone_ignores_exactly_the_decoder(ref):
    # the official keys that go to the pre-training head are exactly those
    # the official detection backbone does not use
    head_src = {k for k in ref['state_dict']
                if conv._decoder_key(k) is not None}
    assert head_src == set(ref['detection']['unused_keys'])
