"""tools/analysis_tools/get_flops.py: counts against hand computations
(one multiply-add = one FLOP; LayerNorm 5 per element, as MMEngine counts
it; GELU and additions are not counted)."""
import pytest
import torch
from conftest import REPO, TINY_ARCH, load_tool
from mmengine.config import Config

from mmitpn.models import HiViTBackbone
from mmitpn.models.layers import Attention

DET_DEMO = 'configs/itpn/itpn-tiny_mask-rcnn_1xb4-6e_demo.py'
SEG_DEMO = 'configs/itpn/itpn-tiny_upernet_1xb4-2k_demo.py'


@pytest.fixture(scope='module')
def tool():
    return load_tool('tools/analysis_tools/get_flops.py')


def linear(n, i, o):
    """Multiply-adds of a Linear i -> o over n tokens."""
    return n * i * o


def layer_norm(n, c):
    return 5 * n * c


def attention(n, c):
    """Q K^T and attn V over n tokens of width c (all heads together)."""
    return 2 * n * n * c


def tiny_hivit_flops(h, w):
    """TINY_ARCH (C = 64, depths 1, 1, 2, MLP ratios 3 and 4) on an h x w
    image, stage by stage."""
    n1, n2, n3 = h * w // 16, h * w // 64, h * w // 256
    patch_embed = n1 * 16 * 3 * 4 * 4 + layer_norm(n1, 16)

    def mlp_block(n, c, r):
        return layer_norm(n, c) + 2 * linear(n, c, r * c)

    def merge(n, c):  # n output tokens, 4c -> 2c
        return layer_norm(n, 4 * c) + linear(n, 4 * c, 2 * c)

    def attn_block(n, c):
        return (layer_norm(n, c) + linear(n, c, 3 * c) + attention(n, c) +
                linear(n, c, c) + mlp_block(n, c, 4))

    return (patch_embed + mlp_block(n1, 16, 3) + merge(n2, 16) +
            mlp_block(n2, 32, 3) + merge(n3, 32) + 2 * attn_block(n3, 64))


def test_fused_attention_is_counted(tool):
    """scaled_dot_product_attention (which MMEngine's analyser skips on its
    own) counts its two matrix products."""
    r = tool.complexity(Attention(64, 4).eval(), torch.randn(1, 100, 64))
    want = linear(100, 64, 192) + attention(100, 64) + linear(100, 64, 64)
    assert want == 2_918_400
    assert r['flops'] == want


def test_backbone_count_by_hand(tool):
    bb = HiViTBackbone(arch=TINY_ARCH, img_size=64).eval()
    assert tool.complexity(bb, torch.randn(1, 3, 64, 64))['flops'] == \
        tiny_hivit_flops(64, 64) == 2_985_984
    # another size: 4x the tokens, 16x the attention products
    assert tool.complexity(bb, torch.randn(1, 3, 128, 128))['flops'] == \
        tiny_hivit_flops(128, 128)


def test_classifier_config(tool):
    cfg = Config.fromfile(
        str(REPO / 'configs/itpn/itpn-base-pixel_8xb128-coslr-100e_in1k.py'))
    cfg.model.backbone.arch = dict(TINY_ARCH)
    cfg.model.head.in_channels = 64
    r = tool.get_flops(cfg, (64, 64))
    assert r['task'] == 'classifier' and r['shape'] == (64, 64)
    # backbone (+ final LayerNorm of the 16 stage-3 tokens) and the global
    # average pooling (one op per input element)
    assert r['backbone_flops'] == tiny_hivit_flops(64, 64) + \
        layer_norm(16, 64) + 16 * 64
    # the head adds a Linear 64 -> 1000: 64 x 1000 multiply-adds and
    # 64 x 1000 + 1000 parameters
    assert r['flops'] - r['backbone_flops'] == 64_000
    assert r['params'] - r['backbone_params'] == 65_000


def test_detector_pads_and_counts(tool):
    # 100x140 is padded to the detector's pad_size_divisor (64)
    r = tool.get_flops(Config.fromfile(str(REPO / DET_DEMO)), (100, 140))
    assert r['task'] == 'detector' and r['shape'] == (128, 192)
    assert 0 < r['backbone_flops'] < r['flops']
    assert 0 < r['backbone_params'] < r['params']


def test_smoke_main_prints_segmentor(tool, capsys):
    """Smoke: the command line runs on the segmentation demo config and
    prints its summary (the counts are checked above)."""
    tool.main([str(REPO / SEG_DEMO), '--shape', '128'])
    out = capsys.readouterr().out
    assert 'EncoderDecoder (segmentor)' in out
    assert 'Input shape: (1, 3, 128, 128)' in out
    assert 'FLOPs: ' in out and 'Params: ' in out
