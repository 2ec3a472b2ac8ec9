"""mmitpn.benchmark.flops: counts against hand computations (one
multiply-add = one FLOP; LayerNorm 5 per element, as MMEngine counts it;
GELU and additions are not counted), MFU and the GPU peak table."""
import pytest
import torch
from conftest import REPO, TINY_ARCH
from mmengine.config import Config

from mmitpn.benchmark import flops as F
from mmitpn.models import HiViTBackbone
from mmitpn.models.layers import Attention

DET_DEMO = 'configs/itpn/itpn-tiny_mask-rcnn_1xb4-6e_demo.py'


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


def test_fused_attention_is_counted():
    """scaled_dot_product_attention (which MMEngine's analyser skips on its
    own) counts its two matrix products."""
    r = F.complexity(Attention(64, 4).eval(), torch.randn(1, 100, 64))
    want = linear(100, 64, 192) + attention(100, 64) + linear(100, 64, 64)
    assert want == 2_918_400
    assert r['flops'] == want


def test_backbone_count_by_hand():
    bb = HiViTBackbone(arch=TINY_ARCH, img_size=64).eval()
    assert F.complexity(bb, torch.randn(1, 3, 64, 64))['flops'] == \
        tiny_hivit_flops(64, 64) == 2_985_984
    # another size: 4x the tokens, 16x the attention products
    assert F.complexity(bb, torch.randn(1, 3, 128, 128))['flops'] == \
        tiny_hivit_flops(128, 128)
    # count_macs of a function of the model: the same count
    assert F.count_macs(bb, lambda x: bb(x), (torch.randn(2, 3, 64, 64), )
                        ) == 2 * tiny_hivit_flops(64, 64)


def test_step_macs_and_mfu():
    # a step: forward + backward (2 forwards) with autograd, once without
    assert F.train_step_macs(10) == 30
    assert F.train_step_macs(10, no_grad_macs=4) == 34
    # 2 FLOP per multiply-add: 494.7e12 multiply-adds in 1 s on a 989.4
    # TFLOP/s part is 100 %
    assert F.mfu(494.7e12, 1., 989.4) == pytest.approx(1.)
    assert F.mfu(1e12, 0.5, 312.) == pytest.approx(4e12 / 312e12)
    assert F.mfu(1e12, 1., None) is None


@pytest.mark.parametrize('name,peak', [
    ('NVIDIA H100 80GB HBM3', 989.4),
    ('NVIDIA H100 PCIe', 756.5),
    ('NVIDIA H100 NVL', 835.5),
    ('NVIDIA H200', 989.4),
    ('NVIDIA A100-SXM4-80GB', 312.),
    ('NVIDIA L40S', 362.05),
    ('NVIDIA L4', 121.),
    ('NVIDIA A10', 125.),
    ('Tesla T4', None),
])
def test_peak_table(name, peak):
    assert F.peak_tflops(name) == peak


def test_classifier_config():
    cfg = Config.fromfile(
        str(REPO / 'configs/itpn/itpn-base-pixel_8xb128-coslr-100e_in1k.py'))
    cfg.model.backbone.arch = dict(TINY_ARCH)
    cfg.model.head.in_channels = 64
    r = F.get_flops(cfg, (64, 64))
    assert r['task'] == 'classifier' and r['shape'] == (64, 64)
    # backbone (+ final LayerNorm of the 16 stage-3 tokens) and the global
    # average pooling (one op per input element)
    assert r['backbone_flops'] == tiny_hivit_flops(64, 64) + \
        layer_norm(16, 64) + 16 * 64
    # the head adds a Linear 64 -> 1000: 64 x 1000 multiply-adds and
    # 64 x 1000 + 1000 parameters
    assert r['flops'] - r['backbone_flops'] == 64_000
    assert r['params'] - r['backbone_params'] == 65_000


def test_detector_pads_and_counts():
    # 100x140 is padded to the detector's pad_size_divisor (64)
    r = F.get_flops(Config.fromfile(str(REPO / DET_DEMO)), (100, 140))
    assert r['task'] == 'detector' and r['shape'] == (128, 192)
    assert 0 < r['backbone_flops'] < r['flops']
    assert 0 < r['backbone_params'] < r['params']
