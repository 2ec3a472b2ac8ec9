import pytest
import torch

from mmitpn.models.layers import (build_2d_sincos_pos_embed,
                                  relative_position_index, resize_pos_embed,
                                  resize_rel_pos_table)


def test_sincos_layout():
    pe = build_2d_sincos_pos_embed((3, 4), 8)
    assert pe.shape == (1, 12, 8)
    # first half encodes the column, second half the row
    grid = pe.view(3, 4, 8)
    assert torch.allclose(grid[0, :, :4], grid[2, :, :4])
    assert torch.allclose(grid[:, 1, 4:], grid[:, 3, 4:])
    assert torch.allclose(grid[0, 0], torch.tensor([0., 0, 1, 1, 0, 0, 1, 1]))
    with pytest.raises(ValueError, match='multiple of 4'):
        build_2d_sincos_pos_embed((2, 2), 6)


def test_resize_pos_embed_uses_scale_factor():
    pe = torch.randn(1, 36, 8)
    out = resize_pos_embed(pe, (6, 6), (6, 8))
    assert out.shape == (1, 48, 8)
    # the official resize samples with (dst + 0.1) / src, so even the same
    # grid is resampled (not an identity)
    same = resize_pos_embed(pe, (6, 6), (6, 6))
    assert same.shape == pe.shape and not torch.allclose(same, pe)


def test_relative_position_index_and_table_resize():
    idx = relative_position_index((2, 3))
    assert idx.shape == (6, 6)
    assert idx.max() == (2 * 2 - 1) * (2 * 3 - 1) - 1
    # the same relative offset shares an index
    assert idx[0, 1] == idx[3, 4]
    assert idx.diagonal().unique().numel() == 1
    table = torch.randn(3 * 5, 4)
    assert resize_rel_pos_table(table, (2, 3), (4, 4)).shape == (49, 4)
