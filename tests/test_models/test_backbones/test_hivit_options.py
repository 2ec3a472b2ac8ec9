"""HiViTBackbone options of the official recipes: rpe_type, layer-scale
stages, the learned position embedding's init, mmseg's ``pretrained``."""
import pytest
import torch

from mmitpn.models import HiViTBackbone
from mmitpn.models.layers import build_2d_sincos_pos_embed, tokens_to_dense

TINY = dict(embed_dims=64, depths=(1, 1, 2), num_heads=2)


def build(**kwargs):
    cfg = dict(arch=TINY, img_size=64)
    cfg.update(kwargs)
    return HiViTBackbone(**cfg).eval()


def _names(model):
    return {n for n, _ in model.named_parameters()}


def test_rpe_types_create_their_parameters():
    none, swin, dec = (build(rpe_type=t) for t in (None, 'swin',
                                                   'decomposed'))
    assert not any('rel' in n for n in _names(none))
    assert 'stages.2.0.attn.relative_position_bias_table' in _names(swin)
    assert swin.get_parameter('stages.2.1.attn.relative_position_bias_table'
                              ).shape == (7 * 7, 2)
    # (2 * grid - 1, head_dim) per stage-3 block, as the official iTPN_CLIP
    for j in range(2):
        for a in ('h', 'w'):
            p = dec.get_parameter(f'stages.2.{j}.attn.rel_pos_{a}')
            assert p.shape == (7, 32)
    assert not any('relative_position_bias_table' in n for n in _names(dec))
    assert (none.use_rpe, swin.use_rpe, dec.use_rpe) == (False, True, True)
    with pytest.raises(ValueError, match='rpe_type'):
        build(rpe_type='relative')


def test_use_rpe_is_a_deprecated_alias():
    with pytest.warns(DeprecationWarning, match='rpe_type'):
        m = build(use_rpe=True)
    assert m.rpe_type == 'swin'
    with pytest.warns(DeprecationWarning):
        assert build(use_rpe=False).rpe_type is None
    with pytest.warns(DeprecationWarning):
        assert build(use_rpe=True, rpe_type='decomposed').rpe_type == \
            'decomposed'
    with pytest.raises(ValueError, match='contradicts'):
        build(use_rpe=False, rpe_type='swin')


@pytest.mark.parametrize('rpe_type', ['swin', 'decomposed'])
@pytest.mark.parametrize('size', [(64, 64), (48, 80)])
def test_masked_path_with_all_tokens_equals_dense(rpe_type, size):
    model = build(rpe_type=rpe_type)
    img = torch.randn(2, 3, *size)
    grid = (size[0] // 16, size[1] // 16)
    n = grid[0] * grid[1]
    with torch.no_grad():
        dense = model(img)
        perm = torch.stack([torch.randperm(n) for _ in range(2)])
        tokens = model(img, ids_keep=perm)
    for d, t in zip(dense, tokens):
        inv = perm.argsort(1).view(2, n, 1, 1, 1)
        t = torch.gather(t, 1, inv.expand_as(t))
        torch.testing.assert_close(tokens_to_dense(t, grid), d,
                                   atol=1e-5, rtol=1e-5)


def test_decomposed_masked_tokens_never_influence_visible_ones():
    model = build(rpe_type='decomposed')
    img = torch.randn(1, 3, 64, 64)
    ids_keep = torch.tensor([[0, 5, 6, 15]])
    img2 = img.clone()
    img2[..., 16:32, 0:16] += 3.  # patch 4: masked
    with torch.no_grad():
        for x, y in zip(model(img, ids_keep=ids_keep),
                        model(img2, ids_keep=ids_keep)):
            torch.testing.assert_close(x, y)


def test_decomposed_tables_of_another_grid_are_resized_at_load():
    src = build(rpe_type='decomposed', img_size=32)  # 3 rows
    dst = build(rpe_type='decomposed', img_size=64)  # 7 rows
    sd = src.state_dict()
    dst.load_state_dict(sd)
    row = sd['stages.2.0.attn.rel_pos_h']  # (3, 32): rows at -1, 0, 1
    got = dst.stages[2][0].attn.rel_pos_h
    assert got.shape == (7, 32)
    # linear, align_corners=False: the middle row is the middle row
    torch.testing.assert_close(got[3], row[1])


@pytest.mark.parametrize('stages', [(0, 1, 2), (2, ), (1, )])
def test_layer_scale_stages(stages):
    model = build(layer_scale_init_value=0.1, layer_scale_stages=stages)
    for s, blocks in enumerate(model.stages):
        for blk in blocks:
            if s in stages:
                assert torch.equal(blk.gamma2, torch.full_like(blk.gamma2,
                                                               0.1))
                # MLP-only stage-1/2 blocks: no attention branch gamma
                assert (blk.gamma1 is None) == (s < 2)
            else:
                assert blk.gamma1 is None and blk.gamma2 is None
    assert all(blk.gamma2 is None for blk in build().stages[2])
    with pytest.raises(ValueError, match='layer_scale_stages'):
        build(layer_scale_init_value=0.1, layer_scale_stages=(3, ))


def test_pos_embed_init():
    sincos = build(pos_embed_type='learnable')
    assert sincos.pos_embed.requires_grad
    torch.testing.assert_close(sincos.pos_embed.data,
                               build_2d_sincos_pos_embed((4, 4), 64))
    torch.manual_seed(0)
    tn = build(pos_embed_type='learnable', pos_embed_init='trunc_normal')
    assert tn.pos_embed.requires_grad
    std = tn.pos_embed.std().item()
    assert 0.015 < std < 0.025
    with pytest.raises(ValueError, match='pos_embed_init'):
        build(pos_embed_init='zeros')


def test_pretrained_argument_as_mmseg():
    assert build(pretrained=None).init_cfg is None
    with pytest.warns(UserWarning, match='init_cfg'):
        m = build(pretrained='ckpt.pth')
    assert m.init_cfg == dict(type='Pretrained', checkpoint='ckpt.pth')
    with pytest.raises(ValueError, match='both pretrained and init_cfg'):
        build(pretrained='a.pth',
              init_cfg=dict(type='Pretrained', checkpoint='b.pth'))
    with pytest.raises(TypeError, match='pretrained'):
        build(pretrained=3)


def test_pos_embed_size_keeps_its_own_grid():
    """The official UPerNet backbone: a 14x14 table at img_size 512,
    interpolated at every forward (here: a 2x2 table at img_size 64)."""
    small = build(pos_embed_size=32, pos_embed_type='learnable')
    assert small.pos_grid == (2, 2) and small.grid_size == (4, 4)
    assert small.pos_embed.shape == (1, 4, 64)
    big = build(pos_embed_type='learnable')
    big.load_state_dict(small.state_dict(), strict=False)  # resized 2 -> 4
    with torch.no_grad():
        img = torch.randn(1, 3, 64, 64)
        torch.testing.assert_close(small(img)[2], big(img)[2])
    with pytest.raises(ValueError, match='pos_embed_size'):
        build(pos_embed_size=40)
