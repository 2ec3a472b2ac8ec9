import torch

from mmitpn.models.layers import (PatchEmbed, PatchMerge, PatchSplit,
                                  dense_to_tokens, tokens_to_dense)


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


def test_split_layout():
    split = PatchSplit(4, 2)
    split.norm = torch.nn.Identity()
    with torch.no_grad():
        split.reduction.weight.copy_(torch.eye(8, 4).repeat(1, 1)[:8])
    x = torch.randn(1, 3, 2, 1, 4)  # (B, N, h, w, C) token layout
    y = split(x)
    assert y.shape == (1, 3, 4, 2, 2)
    # position (h, w) -> sub-grid rows 2h + i, cols 2w + j
    vals = split.reduction(x)[0, 0, 1, 0].view(2, 2, 2)
    assert torch.equal(y[0, 0, 2:4, 0:2], vals)


def test_patch_embed_errors():
    pe = PatchEmbed(3, 8)
    import pytest
    with pytest.raises(ValueError, match='multiples of 16'):
        pe(torch.randn(1, 3, 40, 32))
    with pytest.raises(ValueError, match='4 channels'):
        pe(torch.randn(1, 4, 32, 32))
    with pytest.raises(ValueError, match=r'\(B, C, H, W\)'):
        pe(torch.randn(3, 32, 32))
