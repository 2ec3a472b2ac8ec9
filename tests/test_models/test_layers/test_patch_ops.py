import pytest
import torch
import torch.nn.functional as F

from mmitpn.models.layers import (PatchEmbed, PatchMerge, PatchSplit,
                                  dense_to_tokens, gather_patches,
                                  masked_patch_ids, tokens_to_dense)


def test_token_dense_round_trip():
    x = torch.randn(2, 8, 12, 20)
    tok = dense_to_tokens(x, 4)
    assert tok.shape == (2, 15, 4, 4, 8)
    # token 1 is the second 16x16 patch of the first row
    assert torch.equal(tok[:, 1, 2, 3], x[:, :, 2, 4 + 3])
    assert torch.equal(tokens_to_dense(tok, (3, 5)), x)


def test_merge_order_and_layouts_agree():
    merge = PatchMerge(4)
    dense = torch.randn(1, 8, 8, 4)  # (B, H, W, C) channels-last
    tokens = dense_to_tokens(dense.permute(0, 3, 1, 2), 4)
    out_dense = merge(dense)
    out_tok = merge(tokens)
    back = tokens_to_dense(out_tok, (2, 2)).permute(0, 2, 3, 1)
    torch.testing.assert_close(out_dense, back)
    # official concat order: (even, even), (odd, even), (even, odd), ...
    merge.norm = torch.nn.Identity()
    merge.reduction = torch.nn.Identity()
    cat = merge(dense)
    assert torch.equal(cat[0, 0, 0, 4:8], dense[0, 1, 0])
    assert torch.equal(cat[0, 0, 0, 8:12], dense[0, 0, 1])


def test_patch_embed_values_in_both_layouts():
    """Sub-token (i, j) of patch n is the LayerNorm of the 4x4 pixel
    block at rows 16 * (n // Wp) + 4 i, cols 16 * (n % Wp) + 4 j, times
    the projection, computed here as a matrix product over the block."""
    pe = PatchEmbed(3, 8)
    img = torch.randn(2, 3, 32, 48)  # 2 x 3 patches
    tok = pe(img, dense=False)
    dense = pe(img)
    assert tok.shape == (2, 6, 4, 4, 8) and dense.shape == (2, 8, 12, 8)
    w = pe.proj.weight.flatten(1)  # (8, 3 * 4 * 4)
    for n, i, j in ((0, 0, 0), (4, 1, 3), (5, 3, 2)):
        r, c = 16 * (n // 3) + 4 * i, 16 * (n % 3) + 4 * j
        pix = img[:, :, r:r + 4, c:c + 4].flatten(1)  # (B, 48)
        want = F.layer_norm(pix @ w.T + pe.proj.bias, (8, ),
                            pe.norm.weight, pe.norm.bias, eps=1e-6)
        torch.testing.assert_close(tok[:, n, i, j], want, atol=1e-5,
                                   rtol=1e-5)
        torch.testing.assert_close(dense[:, r // 4, c // 4], want,
                                   atol=1e-5, rtol=1e-5)


def test_gather_and_masked_patch_ids():
    x = torch.arange(2 * 4 * 3.).view(2, 4, 3)
    got = gather_patches(x, torch.tensor([[3, 0], [1, 1]]))
    assert got.tolist() == [[x[0, 3].tolist(), x[0, 0].tolist()],
                            [x[1, 1].tolist(), x[1, 1].tolist()]]
    mask = torch.tensor([[0, 1, 1, 0], [1, 0, 0, 1]])
    assert masked_patch_ids(mask).tolist() == [[1, 2], [0, 3]]
    # unequal counts or nothing masked: no common index tensor
    assert masked_patch_ids(torch.tensor([[0, 1, 1], [1, 0, 0]])) is None
    assert masked_patch_ids(torch.zeros(2, 3)) is None


def test_split_layout():
    split = PatchSplit(4, 2)
    split.norm = torch.nn.Identity()
    x = torch.randn(1, 3, 2, 3, 4)  # (B, N, h, w, C) token layout
    y = split(x)
    assert y.shape == (1, 3, 4, 6, 2)
    # position (h, w) -> sub-grid rows 2h + i, cols 2w + j, channels
    # (2i + j) * C' ... of the Linear's output
    r = x @ split.reduction.weight.T
    for h in range(2):
        for w in range(3):
            for i in range(2):
                for j in range(2):
                    q = 2 * i + j
                    torch.testing.assert_close(
                        y[0, :, 2 * h + i, 2 * w + j],
                        r[0, :, h, w, 2 * q:2 * q + 2])


def test_patch_embed_errors():
    pe = PatchEmbed(3, 8)
    with pytest.raises(ValueError, match='multiples of 16'):
        pe(torch.randn(1, 3, 40, 32))
    with pytest.raises(ValueError, match='4 channels'):
        pe(torch.randn(1, 4, 32, 32))
    with pytest.raises(ValueError, match=r'\(B, C, H, W\)'):
        pe(torch.randn(3, 32, 32))
