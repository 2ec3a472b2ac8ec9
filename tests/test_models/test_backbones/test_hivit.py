import pytest
import torch

from mmitpn.models import HiViTBackbone
from mmitpn.models.layers import tokens_to_dense

TINY = dict(embed_dims=64, depths=(1, 1, 2), num_heads=2)


def build(**kwargs):
    cfg = dict(arch=TINY, img_size=64)
    cfg.update(kwargs)
    return HiViTBackbone(**cfg).eval()


@pytest.mark.parametrize('arch,dims,depths', [
    ('tiny', 384, (1, 1, 10)), ('small', 384, (2, 2, 20)),
    ('base', 512, (2, 2, 24)), ('large', 768, (2, 2, 40)),
    ('itpn-base', 512, (3, 3, 24)), ('itpn-large', 768, (2, 2, 40)),
])
def test_arch_zoo_builds_and_runs(arch, dims, depths):
    model = HiViTBackbone(arch=arch, img_size=32).eval()
    assert model.embed_dims == dims and model.depths == depths
    assert [len(s) for s in model.stages] == list(depths)
    with torch.no_grad():
        outs = model(torch.randn(1, 3, 32, 32))
    assert [o.shape for o in outs] == [(1, dims // 4, 8, 8),
                                       (1, dims // 2, 4, 4), (1, dims, 2, 2)]


def test_itpn_base_parameter_count():
    """iTPN-B backbone as in the official code (3 + 3 MLP blocks of ratio 3,
    24 attention blocks of ratio 4, C = 512), counted layer by layer."""
    n = sum(p.numel() for p in HiViTBackbone('itpn-base').parameters()
            if p.requires_grad)

    def linear(i, o, bias=True):
        return i * o + (o if bias else 0)

    def mlp_block(d, ratio):  # norm2, fc1, fc2
        return 2 * d + linear(d, ratio * d) + linear(ratio * d, d)

    def attn_block(d):  # norm1, qkv, proj + the MLP branch (ratio 4)
        return 2 * d + linear(d, 3 * d) + linear(d, d) + mlp_block(d, 4)

    def merge(d):  # LayerNorm(4d), Linear 4d -> 2d without bias
        return 2 * 4 * d + linear(4 * d, 2 * d, bias=False)

    C = 512
    patch_embed = 3 * (C // 4) * 4 * 4 + C // 4 + 2 * (C // 4)
    want = (patch_embed + 3 * mlp_block(C // 4, 3) + merge(C // 4) +
            3 * mlp_block(C // 2, 3) + merge(C // 2) + 24 * attn_block(C))
    # (the sin-cos position embedding is fixed, not a parameter)
    assert want == 77_803_648
    assert n == want


@pytest.mark.parametrize('arch,match', [
    ('huge', 'Unknown HiViT arch'),
    (dict(embed_dims=64, depths=(1, 1)), 'exactly the keys'),
    (dict(embed_dims=66, depths=(1, 1, 1), num_heads=2), 'divisible'),
])
def test_bad_arch(arch, match):
    with pytest.raises(ValueError, match=match):
        HiViTBackbone(arch=arch)


def test_bad_arguments():
    with pytest.raises(ValueError, match='out_indices'):
        build(out_indices=(3, ))
    with pytest.raises(ValueError, match='frozen_stages'):
        build(frozen_stages=4)
    with pytest.raises(ValueError, match='pos_embed_type'):
        build(pos_embed_type='rope')
    with pytest.raises(ValueError, match='multiple of patch_size'):
        build(img_size=72)


@pytest.mark.parametrize('use_rpe', [False, True])
@pytest.mark.parametrize('size', [(64, 64), (48, 80)])
def test_masked_path_with_all_tokens_equals_dense(use_rpe, size):
    model = build(use_rpe=use_rpe)
    img = torch.randn(2, 3, *size)
    grid = (size[0] // 16, size[1] // 16)
    n = grid[0] * grid[1]
    with torch.no_grad():
        dense = model(img)
        perm = torch.stack([torch.randperm(n) for _ in range(2)])
        tokens = model(img, ids_keep=perm)
    for d, t in zip(dense, tokens):
        inv = perm.argsort(1)
        t = torch.gather(t, 1, inv.view(2, n, 1, 1, 1).expand_as(t))
        torch.testing.assert_close(tokens_to_dense(t, grid), d,
                                   atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize('use_rpe', [False, True])
def test_masked_tokens_never_influence_visible_ones(use_rpe):
    model = build(use_rpe=use_rpe)
    img = torch.randn(1, 3, 64, 64)
    ids_keep = torch.tensor([[0, 5, 6, 15]])
    img2 = img.clone()
    img2[..., 16:32, 0:16] += 3.  # patch 4: masked
    with torch.no_grad():
        a = model(img, ids_keep=ids_keep)
        b = model(img2, ids_keep=ids_keep)
    for x, y in zip(a, b):
        assert x.shape[1] == 4
        torch.testing.assert_close(x, y)
    assert [o.shape[2:] for o in a] == [(4, 4, 16), (2, 2, 32), (1, 1, 64)]


def test_ids_keep_validation():
    model = build()
    with pytest.raises(ValueError, match='outside'):
        model(torch.randn(1, 3, 64, 64), ids_keep=torch.tensor([[0, 16]]))
    with pytest.raises(ValueError, match='ids_keep must be'):
        model(torch.randn(2, 3, 64, 64), ids_keep=torch.tensor([[0, 1]]))


def test_out_indices_and_final_norm():
    model = build(out_indices=(-1, ), final_norm=True)
    outs = model(torch.randn(1, 3, 32, 48))
    assert len(outs) == 1 and outs[0].shape == (1, 64, 2, 3)


def test_drop_path_and_with_cp():
    model = build(drop_path_rate=0.2)
    rates = [b.drop_path.drop_prob for s in model.stages for b in s
             if hasattr(b.drop_path, 'drop_prob')]
    assert rates == sorted(rates) and max(rates) == pytest.approx(0.2)
    ref = build()
    cp = build(with_cp=True)
    cp.load_state_dict(ref.state_dict())
    ref.train(), cp.train()
    img = torch.randn(1, 3, 32, 32)
    a, b = ref(img), cp(img)
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y)
    sum(o.sum() for o in a).backward()
    sum(o.sum() for o in b).backward()
    for (n, p), q in zip(ref.named_parameters(), cp.parameters()):
        if p.grad is not None:
            torch.testing.assert_close(p.grad, q.grad, msg=n)


def test_frozen_stages():
    model = build(frozen_stages=1)
    model.train()
    assert not model.patch_embed.proj.weight.requires_grad
    assert not any(p.requires_grad for p in model.stages[0].parameters())
    assert not any(p.requires_grad for p in model.merges[0].parameters())
    assert all(p.requires_grad for p in model.stages[1].parameters())
    assert not model.stages[0].training and model.stages[1].training


def test_pos_embed_types_and_resize_on_load():
    assert not build().pos_embed.requires_grad
    assert build(pos_embed_type='learnable').pos_embed.requires_grad
    assert build(pos_embed_type=None).pos_embed is None
    src = build(img_size=64, use_rpe=True)
    dst = build(img_size=96, use_rpe=True)
    dst.load_state_dict(src.state_dict())
    assert dst.pos_embed.shape == (1, 36, 64)
    table = dst.stages[2][0].attn.relative_position_bias_table
    assert table.shape == (11 * 11, 2)
    bad = src.state_dict()
    bad['pos_embed'] = torch.zeros(1, 15, 64)
    with pytest.raises(ValueError, match='not a square grid'):
        dst.load_state_dict(bad)


def test_get_layer_depth():
    model = build()  # depths (1, 1, 2): 4 blocks -> 6 layers
    assert model.get_layer_depth('backbone.patch_embed.proj.weight',
                                 'backbone.') == (0, 6)
    assert model.get_layer_depth('backbone.pos_embed', 'backbone.') == (0, 6)
    assert model.get_layer_depth('backbone.stages.0.0.mlp.fc1.weight',
                                 'backbone.') == (1, 6)
    assert model.get_layer_depth('backbone.merges.0.norm.weight',
                                 'backbone.') == (1, 6)
    assert model.get_layer_depth('backbone.stages.1.0.norm2.weight',
                                 'backbone.') == (2, 6)
    assert model.get_layer_depth('backbone.stages.2.1.attn.qkv.weight',
                                 'backbone.') == (4, 6)
    assert model.get_layer_depth('neck.align_8.weight', 'backbone.') == (5, 6)


def test_checkpoint_of_another_arch_fails_with_a_table():
    src = build()
    dst = HiViTBackbone(arch=dict(embed_dims=128, depths=(1, 1, 2),
                                  num_heads=2), img_size=64)
    with pytest.raises(ValueError, match='another architecture') as err:
        dst.load_state_dict(src.state_dict(), strict=False)
    assert 'stages.2.0.attn.qkv.weight' in str(err.value)
    # the same through MMEngine's non-strict loader (init_cfg / load_from)
    from mmengine.runner.checkpoint import load_state_dict
    with pytest.raises(ValueError, match='another architecture'):
        load_state_dict(dst, src.state_dict(), strict=False)


def test_official_position_embedding_rule():
    model = build(img_size=64)
    table = model.pos_embed
    # full pre-training grid: the table itself
    assert model._pos_embed_for((4, 4), 16) is table
    # masked tokens or another grid: the official scale-factor resample
    assert not torch.equal(model._pos_embed_for((4, 4), 4), table)
    assert model._pos_embed_for((3, 5), 15).shape == (1, 15, 64)
