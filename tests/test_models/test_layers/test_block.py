import pytest
import torch

from mmitpn.models.layers import Attention, HiViTBlock, relative_position_index


def test_mlp_only_block_has_no_attention():
    blk = HiViTBlock(32, num_heads=0, mlp_ratio=3)
    names = {n for n, _ in blk.named_parameters()}
    assert not any(n.startswith(('attn', 'norm1')) for n in names)
    assert blk.mlp.fc1.out_features == 96
    # per-token: works on any leading layout and never mixes tokens
    x = torch.randn(2, 5, 4, 4, 32)
    y = blk(x)
    x2 = x.clone()
    x2[:, 3] += 1
    assert torch.equal(blk(x2)[:, :3], y[:, :3])


def test_attention_matches_explicit_softmax_with_rpe():
    torch.manual_seed(1)
    attn = Attention(16, 4, rpe_size=(3, 2)).eval()
    x = torch.randn(2, 6, 16)
    index = relative_position_index((3, 2))
    out = attn(x, index)
    qkv = attn.qkv(x).view(2, 6, 3, 4, 4).permute(2, 0, 3, 1, 4)
    q, k, v = qkv
    bias = attn.relative_position_bias_table[index].permute(2, 0, 1)
    w = (q @ k.transpose(-2, -1) * 4**-0.5 + bias).softmax(-1)
    ref = attn.proj((w @ v).transpose(1, 2).reshape(2, 6, 16))
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)


def test_rpe_requires_index():
    attn = Attention(16, 4, rpe_size=(2, 2))
    with pytest.raises(ValueError, match='rpe_index'):
        attn(torch.randn(1, 4, 16))


def test_heads_must_divide_width():
    with pytest.raises(ValueError, match='num_heads'):
        HiViTBlock(30, num_heads=4)


def test_layer_scale_and_checkpoint_give_same_result():
    blk = HiViTBlock(16, num_heads=2, layer_scale_init_value=0.1)
    assert torch.allclose(blk.gamma1, torch.full((16, ), 0.1))
    blk_cp = HiViTBlock(16, num_heads=2, layer_scale_init_value=0.1,
                        with_cp=True)
    blk_cp.load_state_dict(blk.state_dict())
    x = torch.randn(2, 4, 16, requires_grad=True)
    x_cp = x.detach().clone().requires_grad_()
    y, y_cp = blk(x), blk_cp(x_cp)
    torch.testing.assert_close(y, y_cp)
    y.sum().backward()
    y_cp.sum().backward()
    torch.testing.assert_close(x.grad, x_cp.grad)


@pytest.mark.parametrize('with_cp', [False, True])
def test_query_index_gives_the_rows_of_the_full_output(with_cp):
    block = HiViTBlock(32, num_heads=4, layer_scale_init_value=0.1,
                       with_cp=with_cp)
    x = torch.randn(2, 10, 32, requires_grad=True)
    ids = torch.tensor([[1, 4, 7, 9], [0, 2, 3, 8]])
    full = block(x)
    rows = full.gather(1, ids.unsqueeze(-1).expand(-1, -1, 32))
    part = block(x, query_index=ids)
    torch.testing.assert_close(part, rows, atol=1e-6, rtol=1e-5)
    g_full, = torch.autograd.grad(rows.square().sum(), x)
    g_part, = torch.autograd.grad(part.square().sum(), x)
    torch.testing.assert_close(g_part, g_full, atol=1e-6, rtol=1e-5)


def test_query_index_needs_attention_without_rpe():
    with pytest.raises(ValueError, match='needs an attention block'):
        HiViTBlock(32)(torch.randn(1, 4, 32), query_index=torch.zeros(
            1, 2, dtype=torch.long))
    attn = Attention(32, 4, rpe_size=(2, 2))
    with pytest.raises(ValueError, match='not supported with a relative'):
        attn(torch.randn(1, 4, 32), relative_position_index((2, 2)),
             query_index=torch.zeros(1, 2, dtype=torch.long))


def test_decomposed_attention_matches_explicit_formula():
    """ViTDet decomposed relative positions, written out per token pair:
    bias[i, j] = q_i . Rh[r_i - r_j + H - 1] + q_i . Rw[c_i - c_j + W - 1]
    with the unscaled query, tables linearly resized to 2 * side - 1."""
    import torch.nn.functional as F
    torch.manual_seed(2)
    attn = Attention(16, 2, rpe_size=(3, 3), rpe_type='decomposed').eval()
    assert attn.rel_pos_h.shape == attn.rel_pos_w.shape == (5, 8)
    H, W = 3, 4  # columns: the 5-row table is resized to 7 rows
    x = torch.randn(2, H * W, 16)
    out = attn(x, rpe_grid=(H, W))
    q, k, v = attn.qkv(x).view(2, H * W, 3, 2, 8).permute(2, 0, 3, 1, 4)
    Rh = attn.rel_pos_h
    Rw = F.interpolate(attn.rel_pos_w.t()[None], size=2 * W - 1,
                       mode='linear', align_corners=False)[0].t()
    bias = torch.zeros(2, 2, H * W, H * W)
    for i in range(H * W):
        for j in range(H * W):
            ri, ci, rj, cj = i // W, i % W, j // W, j % W
            bias[:, :, i, j] = (q[:, :, i] * Rh[ri - rj + H - 1]).sum(-1) + \
                (q[:, :, i] * Rw[ci - cj + W - 1]).sum(-1)
    w = (q @ k.transpose(-2, -1) * 8**-0.5 + bias).softmax(-1)
    ref = attn.proj((w @ v).transpose(1, 2).reshape(2, H * W, 16))
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    # kept tokens only (masked input): the same rows of the same bias
    ids = torch.tensor([[0, 5, 6, 11], [3, 4, 8, 9]])
    xk = torch.gather(x, 1, ids[..., None].expand(-1, -1, 16))
    out_k = attn(xk, rpe_index=ids, rpe_grid=(H, W))
    qk, kk, vk = attn.qkv(xk).view(2, 4, 3, 2, 8).permute(2, 0, 3, 1, 4)
    bk = torch.stack([bias[b][:, ids[b]][:, :, ids[b]] for b in range(2)])
    wk = (qk @ kk.transpose(-2, -1) * 8**-0.5 + bk).softmax(-1)
    ref_k = attn.proj((wk @ vk).transpose(1, 2).reshape(2, 4, 16))
    torch.testing.assert_close(out_k, ref_k, atol=1e-5, rtol=1e-5)


def test_mlp_only_block_with_layer_scale_has_gamma2_only():
    blk = HiViTBlock(8, num_heads=0, layer_scale_init_value=0.1)
    assert blk.gamma1 is None and torch.equal(blk.gamma2, torch.full((8, ),
                                                                     0.1))
    x = torch.randn(3, 8)
    with torch.no_grad():
        blk.gamma2.copy_(torch.arange(8.))
        want = x + blk.mlp(blk.norm2(x)) * torch.arange(8.)
    torch.testing.assert_close(blk(x), want)


def test_state_dict_keys_and_parameter_names_are_fixed():
    """Checkpoints and the converter use these keys (layer scales are the
    block's own ``gamma1`` / ``gamma2``); FSDP's full state dict needs the
    parameter names to be the keys."""
    attn = HiViTBlock(8, num_heads=2, layer_scale_init_value=0.1)
    want = ['gamma1', 'gamma2', 'norm1.weight', 'norm1.bias',
            'attn.qkv.weight', 'attn.qkv.bias', 'attn.proj.weight',
            'attn.proj.bias', 'norm2.weight', 'norm2.bias', 'mlp.fc1.weight',
            'mlp.fc1.bias', 'mlp.fc2.weight', 'mlp.fc2.bias']
    assert list(attn.state_dict()) == want
    assert [n for n, _ in attn.named_parameters()] == want
    mlp_only = HiViTBlock(8, layer_scale_init_value=0.1, drop_path=0.1)
    assert list(mlp_only.state_dict()) == want[1:2] + want[8:]
    assert list(HiViTBlock(8).state_dict()) == want[8:]


def test_block_is_two_residual_lines():
    """out = x + s1 * attn(norm1(x)); out + s2 * mlp(norm2(out)), written
    out with the block's own modules and random layer scales."""
    torch.manual_seed(3)
    blk = HiViTBlock(16, num_heads=2, layer_scale_init_value=0.1).eval()
    with torch.no_grad():
        blk.gamma1.uniform_(0.5, 1.5)
        blk.gamma2.uniform_(-1, 1)
        x = torch.randn(2, 5, 16)
        h = x + blk.attn(blk.norm1(x)) * blk.gamma1
        want = h + blk.mlp(blk.norm2(h)) * blk.gamma2
        torch.testing.assert_close(blk(x), want, atol=1e-6, rtol=1e-6)
