import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mmitpn.models.layers import (build_2d_sincos_pos_embed,
                                  relative_position_index, resize_pos_embed,
                                  resize_rel_pos_table)


def cubic_weights(t, a=-0.75):
    """Keys' cubic convolution weights of the 4 taps at offsets -1, 0, 1, 2
    for a fractional position t (PyTorch's bicubic uses a = -0.75)."""

    def near(x):  # |x| <= 1
        return ((a + 2) * x - (a + 3)) * x * x + 1

    def far(x):  # 1 < |x| < 2
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a

    return [far(t + 1), near(t), near(1 - t), far(2 - t)]


def bicubic_1d_matrix(n_in, n_out, scale):
    """(n_out, n_in) matrix of bicubic resampling, written out: output i
    samples the input at (i + 0.5) / scale - 0.5 (align_corners=False),
    taps clamped at the border."""
    m = np.zeros((n_out, n_in))
    for i in range(n_out):
        x = (i + 0.5) / scale - 0.5
        x0 = math.floor(x)
        for off, w in zip((-1, 0, 1, 2), cubic_weights(x - x0)):
            m[i, min(max(x0 + off, 0), n_in - 1)] += w
    return torch.from_numpy(m).float()


def bicubic_by_hand(grid, out_hw, scale_hw):
    """Resample a (H, W, C) grid separably with the matrices above."""
    mh = bicubic_1d_matrix(grid.shape[0], out_hw[0], scale_hw[0])
    mw = bicubic_1d_matrix(grid.shape[1], out_hw[1], scale_hw[1])
    return torch.einsum('ih,jw,hwc->ijc', mh, mw, grid)


def test_sincos_values():
    h, w, dim = 3, 4, 8
    pe = build_2d_sincos_pos_embed((h, w), dim)
    assert pe.shape == (1, h * w, dim)
    # MAE table: [sin(x w_i), cos(x w_i), sin(y w_i), cos(y w_i)],
    # w_i = 1 / 10000 ** (i / (dim / 4)), row-major patch order
    omega = [1 / 10000**(i / (dim / 4)) for i in range(dim // 4)]
    for r in range(h):
        for c in range(w):
            want = ([math.sin(c * o) for o in omega] +
                    [math.cos(c * o) for o in omega] +
                    [math.sin(r * o) for o in omega] +
                    [math.cos(r * o) for o in omega])
            torch.testing.assert_close(pe[0, r * w + c], torch.tensor(want),
                                       atol=1e-6, rtol=1e-6)
    with pytest.raises(ValueError, match='multiple of 4'):
        build_2d_sincos_pos_embed((2, 2), 6)


@pytest.mark.parametrize('src,dst', [((6, 6), (6, 8)), ((6, 6), (6, 6)),
                                     ((4, 4), (7, 5))])
def test_resize_pos_embed_uses_the_official_scale_factor(src, dst):
    """Bicubic with scale_factor = (dst + 0.1) / src (the official
    ``interpolate_pos_encoding``), not size=dst."""
    c = 8
    pe = torch.randn(1, src[0] * src[1], c)
    out = resize_pos_embed(pe, src, dst)
    assert out.shape == (1, dst[0] * dst[1], c)
    grid = pe.view(*src, c)
    # 1. written-out bicubic at the official sampling positions
    scale = ((dst[0] + 0.1) / src[0], (dst[1] + 0.1) / src[1])
    torch.testing.assert_close(
        out.view(*dst, c), bicubic_by_hand(grid, dst, scale), atol=1e-5,
        rtol=1e-5)
    # 2. the official call itself
    ref = F.interpolate(
        grid.permute(2, 0, 1)[None], scale_factor=scale, mode='bicubic')
    torch.testing.assert_close(out, ref[0].permute(1, 2, 0).reshape(
        1, -1, c))
    # size-based resizing samples elsewhere: the rule matters
    by_size = F.interpolate(grid.permute(2, 0, 1)[None], size=dst,
                            mode='bicubic', align_corners=False)
    assert not torch.allclose(ref, by_size, atol=1e-3)


def test_resize_pos_embed_keeps_dtype_and_a_constant():
    pe = torch.full((1, 16, 4), 0.25, dtype=torch.float64)
    out = resize_pos_embed(pe, (4, 4), (6, 3))
    assert out.dtype == torch.float64
    # cubic weights sum to 1: a constant table stays that constant (up to
    # the fp32 the resampling runs in)
    torch.testing.assert_close(out, torch.full((1, 18, 4), 0.25,
                                               dtype=torch.float64),
                               atol=1e-6, rtol=0)


def test_relative_position_index_formula():
    h, w = 2, 3
    idx = relative_position_index((h, w))
    assert idx.shape == (h * w, h * w)
    for p in range(h * w):
        for q in range(h * w):
            dr, dc = p // w - q // w, p % w - q % w
            assert idx[p, q] == (dr + h - 1) * (2 * w - 1) + dc + w - 1
    assert idx.max() == (2 * h - 1) * (2 * w - 1) - 1


@pytest.mark.parametrize('src,dst', [((2, 3), (4, 4)), ((4, 4), (3, 3))])
def test_rel_pos_table_resize_is_bicubic_by_size(src, dst):
    """The official loader resizes rpe tables bicubically to the new size
    (det/mmcv_custom/checkpoint.py): (2Hs-1)x(2Ws-1) -> (2Hd-1)x(2Wd-1)."""
    heads = 4
    hs, ws = 2 * src[0] - 1, 2 * src[1] - 1
    hd, wd = 2 * dst[0] - 1, 2 * dst[1] - 1
    table = torch.randn(hs * ws, heads)
    out = resize_rel_pos_table(table, src, dst)
    assert out.shape == (hd * wd, heads)
    want = bicubic_by_hand(table.view(hs, ws, heads), (hd, wd),
                           (hd / hs, wd / ws))
    torch.testing.assert_close(out.view(hd, wd, heads), want, atol=1e-5,
                               rtol=1e-5)
    # same grid: the table itself
    assert resize_rel_pos_table(table, src, src) is table
