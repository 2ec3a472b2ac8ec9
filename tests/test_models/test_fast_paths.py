"""The optimised paths give the numbers of the plain ones.

Speed itself is measured by ``tools/analysis_tools/benchmark.py``, not
here: these tests only pin down that every fast path (fused attention,
row-sliced inference MLPs, embedding only the kept patches, gradient
checkpointing, the dense channels-last layout, a low-precision teacher,
``torch.compile``) computes the same thing as the straightforward one.
"""
import pytest
import torch
from conftest import TINY_ARCH, tiny_itpn_cfg
from mmengine.logging import MessageHub

from mmitpn.models import HiViTBackbone, ITPNPyramid
from mmitpn.models.layers import (Attention, HiViTBlock, PatchEmbed,
                                  dense_to_tokens, tokens_to_dense)
from mmitpn.registry import MODELS


def test_sdpa_attention_matches_explicit_softmax():
    attn = Attention(32, 4).eval()
    x = torch.randn(2, 37, 32)
    qkv = attn.qkv(x).view(2, 37, 3, 4, 8).permute(2, 0, 3, 1, 4)
    q, k, v = qkv
    w = (q * 8**-0.5 @ k.transpose(-2, -1)).softmax(-1)
    ref = attn.proj((w @ v).transpose(1, 2).reshape(2, 37, 32))
    torch.testing.assert_close(attn(x), ref, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize('heads', [0, 2])
@pytest.mark.parametrize('layer_scale', [0., 0.1])
def test_row_sliced_inference_mlp_is_exact(heads, layer_scale):
    blk = HiViTBlock(16, num_heads=heads, mlp_ratio=4,
                     layer_scale_init_value=layer_scale).eval()
    x = torch.randn(2, 9, 16) if heads else torch.randn(2, 6, 4, 4, 16)
    with torch.no_grad():
        plain = blk(x)
        blk.mlp_chunk_elems = 64 * 5  # 5 rows per slice: uneven split
        sliced = blk(x)
    # the same ops per row; a GEMM over fewer rows may only round
    # differently
    torch.testing.assert_close(sliced, plain, atol=1e-6, rtol=1e-6)
    # with autograd the block never slices (the graph needs every row)
    y = blk(x.requires_grad_())
    assert y.grad_fn is not None
    torch.testing.assert_close(y, plain, atol=0, rtol=0)


def test_row_sliced_inference_of_backbone_and_pyramid():
    bb = HiViTBackbone(arch=TINY_ARCH, img_size=64).eval()
    neck = ITPNPyramid(in_channels=(16, 32, 64), out_channels=32,
                       fpn_depth=1, num_outs=5).eval()
    img = torch.randn(1, 3, 96, 128)
    with torch.inference_mode():
        plain = neck(bb(img))
        try:
            HiViTBlock.mlp_chunk_elems = 1000
            sliced = neck(bb(img))
        finally:
            HiViTBlock.mlp_chunk_elems = 2**24
    for p, s in zip(plain, sliced):
        torch.testing.assert_close(s, p, atol=1e-6, rtol=1e-6)


def test_patch_embed_of_kept_patches_equals_embed_then_gather():
    pe = PatchEmbed(3, 16, 16, 4)
    img = torch.randn(2, 3, 48, 64)  # 3 x 4 patches
    ids_keep = torch.tensor([[0, 5, 11], [7, 2, 3]])
    full = pe(img, dense=False)
    ref = torch.gather(full, 1, ids_keep[..., None, None, None].expand(
        -1, -1, 4, 4, 16))
    kept = pe(img, dense=False, ids_keep=ids_keep)
    torch.testing.assert_close(kept, ref, atol=1e-6, rtol=1e-5)
    with pytest.raises(ValueError, match='token layout'):
        pe(img, dense=True, ids_keep=ids_keep)


def test_masked_path_equals_dense_path_on_kept_tokens():
    bb = HiViTBackbone(arch=TINY_ARCH, img_size=64).eval()
    img = torch.randn(2, 3, 64, 64)
    perm = torch.rand(2, 16).argsort(1)

    def gather(t, ids):
        return torch.gather(t, 1, ids[..., None, None, None].expand(
            -1, -1, *t.shape[2:]))

    with torch.no_grad():
        dense = bb(img)
        masked = bb(img, ids_keep=perm[:, :5])
        shuffled = bb(img, ids_keep=perm)
    for s, (d, k) in enumerate(zip(dense, (4, 2, 1))):
        tok = dense_to_tokens(d, k)
        # the dense maps are the token layout rearranged
        torch.testing.assert_close(tokens_to_dense(tok, (4, 4)), d)
        # every token kept (in any order): the same numbers
        torch.testing.assert_close(shuffled[s], gather(tok, perm),
                                   atol=1e-5, rtol=1e-5)
        if s < 2:  # per-token stages: a masked token changes nothing
            torch.testing.assert_close(masked[s], gather(tok, perm[:, :5]),
                                       atol=1e-5, rtol=1e-5)


def test_gradient_checkpointing_gives_the_same_gradients():
    torch.manual_seed(0)
    plain = HiViTBackbone(arch=TINY_ARCH, img_size=64)
    cp = HiViTBackbone(arch=TINY_ARCH, img_size=64, with_cp=True)
    cp.load_state_dict(plain.state_dict())
    neck, neck_cp = (ITPNPyramid(in_channels=(16, 32, 64), out_channels=32,
                                 fpn_depth=1, num_outs=3, with_cp=c)
                     for c in (False, True))
    neck_cp.load_state_dict(neck.state_dict())
    img = torch.randn(2, 3, 64, 64)
    ids_keep = torch.rand(2, 16).argsort(1)[:, :4]
    for kwargs in (dict(), dict(ids_keep=ids_keep)):
        for bb, nk in ((plain, neck), (cp, neck_cp)):
            bb.zero_grad()
            nk.zero_grad()
            sum(o.square().mean() for o in nk(bb(img, **kwargs))).backward()
        for (name, p), q in zip(plain.named_parameters(), cp.parameters()):
            if p.requires_grad:
                torch.testing.assert_close(q.grad, p.grad, msg=name)
        for p, q in zip(neck.parameters(), neck_cp.parameters()):
            torch.testing.assert_close(q.grad, p.grad)


def test_teacher_dtype_autocasts_only_the_teacher():
    MessageHub.get_current_instance().update_info('max_iters', 100)
    cfg = tiny_itpn_cfg()
    model = MODELS.build(cfg)
    model.teacher.update_parameters(model.backbone)
    cfg_bf16 = dict(cfg, teacher_dtype='bf16')
    model_bf16 = MODELS.build(cfg_bf16)
    model_bf16.load_state_dict(model.state_dict())
    img = torch.randn(2, 3, 64, 64)
    t32 = model.teacher_targets(img)
    t16 = model_bf16.teacher_targets(img)
    for a, b in zip(t32, t16):
        assert a.dtype == torch.float32 and b.dtype == torch.bfloat16
        assert not b.requires_grad
        torch.testing.assert_close(b.float(), a, atol=0.1, rtol=0.05)
    ids_keep, ids_restore, mask = model.random_masking(2, 16, 'cpu')
    losses = model_bf16.forward_mim(img, ids_keep, ids_restore, mask)
    sum(losses.values()).backward()  # student stays fp32 with fp32 grads
    assert model_bf16.backbone.patch_embed.proj.weight.grad.dtype == \
        torch.float32
    with pytest.raises(ValueError, match='teacher_dtype'):
        MODELS.build(dict(cfg, teacher_dtype='int8'))


@pytest.mark.parametrize('masked', [False, True])
def test_backbone_compiles_without_graph_breaks(masked):
    torch._dynamo.reset()
    bb = HiViTBackbone(arch=TINY_ARCH, img_size=64).eval()
    img = torch.randn(2, 3, 64, 64)
    kwargs = dict(ids_keep=torch.rand(2, 16).argsort(1)[:, :4]) \
        if masked else dict()
    explain = torch._dynamo.explain(bb)(img, **kwargs)
    assert explain.graph_break_count == 0, explain.break_reasons
    assert explain.graph_count == 1


def test_row_sliced_checkpointing_gives_the_same_gradients():
    torch.manual_seed(0)
    plain = HiViTBlock(16, mlp_ratio=4)
    cp = HiViTBlock(16, mlp_ratio=4, with_cp=True)
    cp.load_state_dict(plain.state_dict())
    cp.mlp_chunk_elems = 64 * 7  # 7 rows per slice, uneven split
    x = torch.randn(2, 5, 4, 4, 16)
    grads = []
    for blk in (plain, cp):
        xi = x.clone().requires_grad_()
        y = blk(xi)
        (y * torch.arange(16.)).square().mean().backward()
        grads.append([xi.grad] + [p.grad for p in blk.parameters()])
        if blk is cp:  # really sliced: the output is a cat of slices
            assert y.grad_fn.next_functions[0][0].name() == 'CatBackward0'
    for g, h in zip(*grads):
        torch.testing.assert_close(h, g, atol=1e-6, rtol=1e-5)
