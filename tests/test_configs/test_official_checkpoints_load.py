"""Official pre-training checkpoints, converted by
mmitpn.converters.official, load into the model that the
matching configs/itpn/ config builds: no missing and no unexpected key,
every value equal, and the same computation as the architecture the
converter read from the tensors.

The official-format CLIP pre-training state dict is
``official_checkpoints.clip_pretrain_state`` (the official golden backbone
+ pyramid with ``itpn_clip`` heads), made the official iTPN-B CLIP layout
(fpn_depth 1, a 14x14 position embedding); the pixel pre-training is the
official golden file itself. Only widths / depths are shrunk in the
configs; the teacher is a tiny random CLIP saved to a temporary file. The
CLIP configs also give the student and the teacher the official inputs
(normalisation and the official teacher's input scaling, written out
here).
"""
import copy
import logging

import pytest
import torch
from conftest import config_path
from mmengine.config import Config
from mmengine.logging import MMLogger
from official_checkpoints import GOLDEN, clip_pretrain_state

from mmitpn.converters import official as conv
from mmitpn.models.layers import dense_to_tokens
from mmitpn.registry import MODELS

CLIP_B = 'itpn-clip-b_hivit-base-p16_8xb256-amp-coslr-300e_in1k.py'
CLIP_L = 'itpn-clip-l_hivit-large-p16_8xb256-amp-coslr-300e_in1k.py'
PIXEL_B = 'itpn-pixel_hivit-base-p16_8xb512-amp-coslr-400e_in1k.py'
# the golden model: stage-3 width 128 (stages 32, 64, 128), depths
# (1, 1, 2), 4 heads, pyramid width 64; the CLIP state's targets are 48-d
C, F, HEADS, T = 128, 64, 4, 48
TINY_ARCH = dict(embed_dims=C, depths=(1, 1, 2), num_heads=HEADS)


@pytest.fixture(scope='module')
def official():
    return torch.load(GOLDEN, map_location='cpu')


@pytest.fixture(scope='module')
def clip_weights(tmp_path_factory):
    """A tiny random OpenAI-layout CLIP ViT/16 at 224 px with 48-d
    tokens."""
    from mmpretrain.models.utils.clip_generator_helper import CLIP
    torch.manual_seed(0)
    clip = CLIP(T,
                224,
                1,
                64,
                16,
                context_length=8,
                vocab_size=50,
                transformer_width=64,
                transformer_heads=1,
                transformer_layers=1)
    path = tmp_path_factory.mktemp('clip') / 'ViT-B-16.pt'
    torch.save(clip.state_dict(), path)
    return str(path)


def official_clip_b_state(official):
    """An official ``clip_tpn_base_3324_patch16_224`` state dict at tiny
    widths: the converter test's CLIP pre-training state, with the
    official CLIP pyramid depth 1 (modeling_pretrain.py:311; the golden
    pixel pyramid has 2) and the 14x14 position embedding of a 224 model
    (the golden one is 6x6)."""
    sd = clip_pretrain_state(official, seed=1)
    sd = {
        k: v
        for k, v in sd.items()
        if not k.startswith(('block_16to8.1.', 'block_8to4.1.'))
    }
    sd['absolute_pos_embed'] = torch.randn(
        1, 196, C, generator=torch.Generator().manual_seed(2))
    return sd


def clip_cfg(name, weights):
    """The model of a CLIP config with the golden widths (nothing else
    changed) and a tiny teacher."""
    cfg = copy.deepcopy(Config.fromfile(str(config_path(name))).model)
    cfg.backbone.arch = dict(TINY_ARCH)
    cfg.neck.in_channels = (C // 4, C // 2, C)
    cfg.neck.out_channels = F
    cfg.head.update(in_channels=F, embed_dims=C, target_dims=T)
    cfg.side_head.update(in_channels=C,
                         embed_dims=C,
                         target_dims=T,
                         num_heads=HEADS)
    cfg.teacher.weights = weights
    cfg.teacher.pop('img_size', None)  # the tiny teacher is a ViT/16
    return cfg


class _LoadLines(logging.Handler):
    """Collects what mmitpn's load pre-hooks log."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())


def load_and_check(model, state_dict):
    """``load_state_dict(strict=False)`` must report nothing missing or
    unexpected, the modules' own load summaries must count every tensor,
    and every value must be the converted one."""
    handler = _LoadLines()
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    try:
        result = model.load_state_dict(state_dict, strict=False)
    finally:
        logger.removeHandler(handler)
    assert result.missing_keys == [], result.missing_keys
    assert result.unexpected_keys == [], result.unexpected_keys
    own = model.state_dict()
    assert set(own) == set(state_dict)
    for k, v in state_dict.items():
        assert torch.equal(own[k], v), k
    for name in ('backbone', 'neck'):
        n = len(getattr(model, name).state_dict())
        line = next(x for x in handler.lines
                    if f"under '{name}.'" in x and 'loaded' in x)
        assert f'loaded {n} of {n} tensors' in line, line
        assert 'initialised here' not in line, line
        assert 'ignored' not in line, line
    return handler.lines


# the side head's drop path, officially dpr_cls[mlp_depth1 + mlp_depth2
# + i] for i = int(0.75 * depth) and the next, of linspace(0, drop_path,
# mlp_depth1 + mlp_depth2 + depth) (itpn_clip/modeling_pretrain.py:75,
# 184): base (3, 3, 24) at 0.1, large (2, 2, 40) at 0.2
SIDE_DROP_PATH = {
    CLIP_B: (0.1 * 24 / 29, 0.1 * 25 / 29),
    CLIP_L: (0.2 * 34 / 43, 0.2 * 35 / 43),
}


@pytest.mark.parametrize('name', [CLIP_B, CLIP_L], ids=['clip-b', 'clip-l'])
def test_official_clip_pretraining_loads_into_its_config(
        official, clip_weights, name):
    sd = official_clip_b_state(official)
    osd, meta, _ = conv.convert_official(dict(model=sd))
    assert meta['kind'] == 'clip-pretrain' and not meta['unmapped_keys']
    assert meta['tensors']['dropped'] == [
        k for k in sd if k.endswith('relative_position_index')
    ]
    model = MODELS.build(clip_cfg(name, clip_weights))
    load_and_check(model, osd)

    # values against the official names (a converter or config swapping
    # heads, levels or blocks fails)
    for ours, theirs in (
        ('backbone.mask_token', 'mask_token'),
        ('backbone.pos_embed', 'absolute_pos_embed'),
        ('backbone.stages.0.0.gamma2', 'blocks.0.gamma_2'),
        ('backbone.stages.2.1.gamma1', 'blocks.5.gamma_1'),
        ('neck.blocks_8.0.mlp.fc1.weight', 'block_16to8.0.mlp.fc1.weight'),
        ('head.decoder.level_embeds.0.proj.weight',
         'decoder_embed.2.1.weight'),
        ('head.decoder.norm.bias', 'norm.bias'),
        ('head.decoder.pred.weight', 'lm_head.weight'),
        ('side_head.decoder.blocks.0.attn.relative_position_bias_table',
         'cls_pt_layers.0.attn.relative_position_bias_table'),
        ('side_head.decoder.blocks.1.gamma2', 'cls_pt_layers.1.gamma_2'),
        ('side_head.decoder.norm.weight', 'norm_cls.weight'),
        ('side_head.decoder.pred.bias', 'lm_cls_head.bias'),
    ):
        assert torch.equal(model.state_dict()[ours], sd[theirs]), ours

    # the official hyper-parameters that keys cannot show
    # (itpn_clip/modeling_pretrain.py): LayerNorm eps 1e-6 everywhere
    # (norm_layer, :312, :327) except the side head's blocks, built with
    # BlockWithRPE's default nn.LayerNorm (eps 1e-5; :183,
    # modeling_finetune.py:82); side head on the output of stage-3 block
    # int(0.75 * depth) (:255)
    for module_name, m in model.named_modules():
        # the frozen CLIP teacher is CLIP's own, not converted weights
        if isinstance(m, torch.nn.LayerNorm) and \
                not module_name.startswith('teacher.'):
            want = 1e-5 if module_name.startswith(
                'side_head.decoder.blocks.') else 1e-6
            assert m.eps == want, module_name
    assert model.side_block == 1  # int(0.75 * 2)
    rates = [
        getattr(b.drop_path, 'drop_prob', 0.)
        for b in model.side_head.decoder.blocks
    ]
    assert rates == pytest.approx(SIDE_DROP_PATH[name])

    # the config computes what the architecture the converter read from
    # the tensors computes (a second path: meta.model_cfg)
    ref = {
        key: MODELS.build(cfg).eval()
        for key, cfg in meta['model_cfg'].items()
    }
    for key, module in ref.items():
        module.load_state_dict({
            k[len(key) + 1:]: v
            for k, v in osd.items() if k.startswith(key + '.')
        })
    model.eval()
    img = torch.randn(2, 3, 224, 224)
    mask = torch.zeros(2, 196)
    mask[:, 50:120] = 1
    exact = dict(rtol=0, atol=0)
    with torch.no_grad():
        feats, side = model.backbone.forward_dense(
            img, mask=mask, return_block=model.side_block)
        want_feats, want_side = ref['backbone'].forward_dense(img,
                                                              mask=mask,
                                                              return_block=1)
        for a, b in zip(feats, want_feats):
            torch.testing.assert_close(a, b, **exact)
        torch.testing.assert_close(side, want_side, **exact)
        pyr = model.neck(feats)
        for a, b in zip(pyr, ref['neck'](want_feats)):
            torch.testing.assert_close(a, b, **exact)
        levels = [dense_to_tokens(p, k) for p, k in zip(pyr, (4, 2, 1))]
        torch.testing.assert_close(model.head.decoder(levels),
                                   ref['head'].decoder(levels), **exact)
        B, N, _ = side.shape
        tokens = [side.view(B, N, 1, 1, C)]
        torch.testing.assert_close(model.side_head.decoder(tokens),
                                   ref['side_head'].decoder(tokens), **exact)


def test_clip_l_config_is_the_official_large_model():
    """clip_tpn_large_2240_patch16_224 (modeling_pretrain.py:322-327) at
    its real widths, read from the config (building iTPN-L is too slow for
    the suite; the tiny build above loads the official layout)."""
    cfg = Config.fromfile(str(config_path(CLIP_L))).model
    assert cfg.backbone.arch == 'itpn-large'
    assert cfg.neck.in_channels == (192, 384, 768)
    assert (cfg.head.embed_dims, cfg.head.target_dims) == (768, 768)
    side = cfg.side_head
    assert (side.in_channels, side.embed_dims, side.num_heads,
            side.target_dims, side.depth) == (768, 768, 12, 768, 2)
    assert side.embed_inputs is False
    assert side.block_cfg.drop_path == pytest.approx(SIDE_DROP_PATH[CLIP_L])
    assert (side.block_cfg.layer_scale_init_value, side.block_cfg.rpe_size,
            side.block_cfg.norm_eps) == (0.1, (14, 14), 1e-5)


def test_official_pixel_pretraining_loads_into_its_config(official):
    """itpn_base_dec512d8b (itpn_pixel/models/models_itpn_mim.py) at the
    golden widths: the official state dict itself, converted, into the
    pixel iTPN-B config; and the config's model reproduces the official
    decoder's prediction stored in the golden file."""
    sd = official['state_dict']
    arch = official['arch']
    osd, meta, _ = conv.convert_official(dict(model=sd),
                                         num_heads=arch['num_heads'],
                                         dec_num_heads=arch['dec_heads'])
    assert meta['kind'] == 'pixel-pretrain'
    assert not meta['unmapped_keys']
    cfg = copy.deepcopy(Config.fromfile(str(config_path(PIXEL_B))).model)
    size = arch['pretrain_img_size']
    cfg.backbone.update(arch=dict(TINY_ARCH), img_size=size)
    cfg.neck.update(in_channels=(C // 4, C // 2, C), out_channels=F)
    cfg.head.update(fpn_channels=F,
                    embed_dims=arch['dec_dim'],
                    depth=arch['dec_depth'],
                    num_heads=arch['dec_heads'],
                    img_size=size)
    model = MODELS.build(cfg)
    load_and_check(model, osd)
    for ours, theirs in (('head.decoder.pred.weight', 'decoder_pred.weight'),
                         ('head.decoder.mask_token',
                          'mask_token'), ('neck.blocks_4.1.norm2.bias',
                                          'block_8to4.1.norm2.bias')):
        assert torch.equal(model.state_dict()[ours], sd[theirs]), ours
    # eps 1e-6 on every LayerNorm (norm_layer of models_itpn_mim.py)
    assert all(m.eps == 1e-6 for m in model.modules()
               if isinstance(m, torch.nn.LayerNorm))
    # the config's model predicts what the official model predicted for
    # the golden masked input (computed by the official code)
    p = official['pretrain']
    model.eval()
    with torch.no_grad():
        pyramid = model.neck(model.backbone(p['img'], ids_keep=p['ids_keep']))
        pred = model.head.predict(pyramid, p['ids_restore'])
    assert (pred - p['pred']).abs().max() < 1e-4


def test_clip_teacher_and_student_see_the_official_inputs(clip_weights):
    """itpn_clip's inputs, written out: the student gets ToTensor +
    Normalize(0.5, 0.5) (datasets.py:28-46, timm's inception mean / std);
    the teacher gets ToTensor's p / 255 and applies ScalingLayerForClip,
    ((x + 1) * 127.5).clamp(0, 255) / 255, then CLIP's mean / std
    (clip/create_clip.py:43-48)."""
    model = MODELS.build(clip_cfg(CLIP_B, clip_weights))
    rgb = torch.randint(0, 256, (2, 3, 224, 224), dtype=torch.uint8)
    data = model.data_preprocessor(
        dict(inputs=[rgb.flip(1)], data_samples=None), False)  # 1 view
    student = data['inputs'][0]  # a batch of the one view, BGR -> RGB
    x = rgb.float() / 255
    torch.testing.assert_close(student, (x - 0.5) / 0.5)
    shift = torch.tensor([0.48145466, 0.4578275, 0.40821073]).view(1, 3, 1, 1)
    scale = torch.tensor([0.26862954, 0.26130258, 0.27577711]).view(1, 3, 1, 1)
    official = (((x + 1.) * 127.5).clamp(0, 255.) / 255. - shift) / scale
    teacher = model.teacher
    with torch.no_grad():
        want = teacher.visual(official)[0][:, 1:]
        got = teacher(student)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    # not CLIP's usual input: the quirk changes the targets
    with torch.no_grad():
        usual = teacher.visual((x - shift) / scale)[0][:, 1:]
    assert (usual - want).abs().max() > 1e-2
