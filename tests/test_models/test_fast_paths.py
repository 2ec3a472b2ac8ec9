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
                                  RowSlicedBlocks, dense_to_tokens,
                                  tokens_to_dense)
from mmitpn.registry import MODELS


def test_sdpa_attention_matches_explicit_softmax():
    attn = Attention(32, 4).eval()
    x = torch.randn(2, 37, 32)
    qkv = attn.qkv(x).view(2, 37, 3, 4, 8).permute(2, 0, 3, 1, 4)
    q, k, v = qkv
    w = (q * 8**-0.5 @ k.transpose(-2, -1)).softmax(-1)
    ref = attn.proj((w @ v).transpose(1, 2).reshape(2, 37, 32))
    torch.testing.assert_close(attn(x), ref, atol=1e-6, rtol=1e-5)


def count_calls(obj, name):
    """Wrap ``obj.name`` (a method) so that its calls are counted in the
    returned list's length."""
    calls = []
    real = getattr(obj, name)

    def counted(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    setattr(obj, name, counted)
    return calls


def mlp_only_blocks(n=2, layer_scale=0., **kwargs):
    """``n`` MLP-only blocks of width 16 (hidden 64) with random layer
    scales (so that a scale left out shows)."""
    blocks = RowSlicedBlocks([
        HiViTBlock(16, mlp_ratio=4, layer_scale_init_value=layer_scale,
                   **kwargs) for _ in range(n)
    ])
    with torch.no_grad():
        for blk in blocks:
            if blk.gamma2 is not None:
                blk.gamma2.uniform_(0.5, 1.5)
    return blocks


@pytest.mark.parametrize('layer_scale', [0., 0.1])
def test_row_sliced_inference_mlp_is_exact(layer_scale):
    torch.manual_seed(0)
    blocks = mlp_only_blocks(layer_scale=layer_scale).eval()
    x = torch.randn(2, 6, 4, 4, 16)
    rows = x.numel() // 16  # 192
    calls = [count_calls(blk, '_forward') for blk in blocks]
    with torch.no_grad():
        plain = blocks(x)
        assert [len(c) for c in calls] == [1, 1]  # 2**24: one slice
        blocks.max_elems = 64 * 5  # 5 rows per slice: uneven split
        sliced = blocks(x)
    # the sliced path ran: each block once per 5 rows
    slices = -(-rows // 5)
    assert [len(c) for c in calls] == [1 + slices] * 2
    # the same ops per row; a GEMM over fewer rows may only round
    # differently
    torch.testing.assert_close(sliced, plain, atol=1e-6, rtol=1e-6)
    # by hand: x + mlp(norm2(x)) * gamma2, block after block
    want = x
    for blk in blocks:
        gamma = 1. if blk.gamma2 is None else blk.gamma2
        want = want + blk.mlp(blk.norm2(want)) * gamma
    torch.testing.assert_close(sliced, want.detach(), atol=1e-5, rtol=1e-5)
    # with autograd (and no checkpointing) the blocks never slice
    y = blocks(x.requires_grad_())
    assert [len(c) for c in calls] == [2 + slices] * 2
    assert y.grad_fn is not None
    torch.testing.assert_close(y, plain, atol=0, rtol=0)


def test_row_slicing_waits_for_drop_path_and_refuses_attention():
    """Drop path draws one mask per sample: in training with active drop
    path the blocks run whole; in eval they slice."""
    blocks = mlp_only_blocks(drop_path=0.5)
    blocks.max_elems = 64 * 5
    x = torch.randn(2, 6, 4, 4, 16)
    calls = count_calls(blocks[0], '_forward')
    with torch.no_grad():
        blocks.train()(x)
        assert len(calls) == 1
        blocks.eval()(x)
        assert len(calls) == 1 + -(-192 // 5)
    with pytest.raises(ValueError, match='MLP-only'):
        RowSlicedBlocks([HiViTBlock(16, num_heads=2)])


def test_row_sliced_inference_of_backbone_and_pyramid(monkeypatch):
    bb = HiViTBackbone(arch=TINY_ARCH, img_size=64).eval()
    neck = ITPNPyramid(in_channels=(16, 32, 64), out_channels=32,
                       fpn_depth=1, num_outs=5).eval()
    img = torch.randn(1, 3, 96, 128)
    # (monkeypatch restores the real method after the test)
    monkeypatch.setattr(HiViTBlock, '_forward', HiViTBlock._forward)
    calls = count_calls(HiViTBlock, '_forward')
    with torch.inference_mode():
        plain = neck(bb(img))
        blocks = len(calls)  # one call per block
        monkeypatch.setattr(RowSlicedBlocks, 'max_elems', 1000)
        sliced = neck(bb(img))
    n_blocks = sum(isinstance(m, HiViTBlock)
                   for m in [*bb.modules(), *neck.modules()])
    assert blocks == n_blocks
    # the sliced path ran: e.g. the stride-4 level (24 x 32 rows, 48
    # hidden) in slices of 1000 // 48 = 20 rows
    assert len(calls) - blocks > 2 * n_blocks
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


def rel_error(got, want):
    """Relative RMS error ||got - want|| / ||want||."""
    return float((got.float() - want).norm() / want.norm())


def test_teacher_dtype_autocasts_only_the_teacher():
    """teacher_dtype='bf16': the targets are the teacher's (not the
    student's) maps within bf16 rounding (relative RMS error < 2 %, so a
    5 % scale error fails), the student stays fp32."""
    MessageHub.get_current_instance().update_info('max_iters', 100)
    cfg = tiny_itpn_cfg()
    model = MODELS.build(cfg)
    with torch.no_grad():  # a teacher unlike the student
        for p in model.teacher.module.parameters():
            p.add_(0.2 * torch.randn_like(p))
    model_bf16 = MODELS.build(dict(cfg, teacher_dtype='bf16'))
    model_bf16.load_state_dict(model.state_dict())
    # the reference: a plain fp32 backbone holding the teacher's weights
    ref = HiViTBackbone(arch=TINY_ARCH, img_size=64).eval()
    ref.load_state_dict(model.teacher.module.state_dict())
    img = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        want = ref(img)
        student = model.backbone.eval()(img)
    t32 = model.teacher_targets(img)
    t16 = model_bf16.teacher_targets(img)
    for a, b, w, s in zip(t32, t16, want, student):
        assert a.dtype == torch.float32 and b.dtype == torch.bfloat16
        assert not b.requires_grad
        a, b = tokens_to_dense(a, (4, 4)), tokens_to_dense(b, (4, 4))
        torch.testing.assert_close(a, w, atol=1e-5, rtol=1e-5)
        err = rel_error(b, w)
        assert 1e-4 < err < 0.02, err  # bf16 rounding, nothing more
        assert rel_error(s, w) > 0.1  # the student is far off
    model.train()
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


@pytest.mark.parametrize('masked', [False, True])
def test_compiled_backbone_gives_the_eager_outputs(masked):
    """torch.compile (one graph; the aot_eager backend: the graph TorchDynamo
    and AOTAutograd capture, run without code generation, which keeps this
    test to seconds on a CPU) gives the eager stage maps and gradients;
    the inductor backend is compared on a GPU below."""
    torch._dynamo.reset()
    bb = HiViTBackbone(arch=TINY_ARCH, img_size=64).eval()
    img = torch.randn(2, 3, 64, 64)
    kwargs = dict(ids_keep=torch.rand(2, 16).argsort(1)[:, :4]) \
        if masked else dict()
    compiled = torch.compile(bb, backend='aot_eager', fullgraph=True)
    want = bb(img, **kwargs)
    got = compiled(img, **kwargs)
    assert len(got) == 3
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, atol=1e-5, rtol=1e-4)
    g_want = torch.autograd.grad(sum(o.square().sum() for o in want),
                                 bb.patch_embed.proj.weight)
    g_got = torch.autograd.grad(sum(o.square().sum() for o in got),
                                bb.patch_embed.proj.weight)
    torch.testing.assert_close(g_got, g_want, atol=1e-4, rtol=1e-4)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA GPU')
def test_gpu_inductor_compiled_backbone_gives_the_eager_outputs():
    torch._dynamo.reset()
    bb = HiViTBackbone(arch=TINY_ARCH, img_size=64).cuda().eval()
    img = torch.randn(2, 3, 64, 64, device='cuda')
    compiled = torch.compile(bb, fullgraph=True)
    with torch.no_grad():
        want = bb(img)
        got = compiled(img)
    for g, w in zip(got, want):
        assert rel_error(g, w) < 1e-2  # (TF32 may differ in the kernels)


def test_row_sliced_checkpointing_gives_the_same_gradients():
    torch.manual_seed(0)
    plain = mlp_only_blocks(layer_scale=0.1)
    cp = mlp_only_blocks(layer_scale=0.1, with_cp=True)
    cp.load_state_dict(plain.state_dict())
    cp.max_elems = 64 * 7  # 7 rows per slice, uneven split
    x = torch.randn(2, 5, 4, 4, 16)
    grads = []
    calls = count_calls(cp[1], '_forward')
    for blocks in (plain, cp):
        xi = x.clone().requires_grad_()
        y = blocks(xi)
        if blocks is cp:  # really sliced: 160 rows in 23 slices of <= 7
            assert len(calls) == 23
            assert y.grad_fn.next_functions[0][0].name() == 'CatBackward0'
        (y * torch.arange(16.)).square().mean().backward()
        grads.append([xi.grad] + [p.grad for p in blocks.parameters()])
    assert len(calls) == 46  # each slice recomputed once in the backward
    for g, h in zip(*grads):
        torch.testing.assert_close(h, g, atol=1e-6, rtol=1e-5)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA GPU')
@pytest.mark.parametrize('dtype', [torch.float32, torch.bfloat16,
                                   torch.float16])
def test_gpu_sdpa_attention_and_backbone_on_cuda(dtype):
    """The fused attention on CUDA (flash / memory-efficient kernels under
    autocast) gives the explicit softmax of an fp32 reference; the whole
    backbone with relative position bias gives the CPU's maps."""
    tol = 1e-2 if dtype == torch.float32 else 3e-2
    attn = Attention(64, 4).cuda().eval()
    x = torch.randn(2, 197, 64, device='cuda')
    qkv = attn.qkv(x).view(2, 197, 3, 4, 16).permute(2, 0, 3, 1, 4)
    q, k, v = qkv
    w = (q * 16**-0.5 @ k.transpose(-2, -1)).softmax(-1)
    ref = attn.proj((w @ v).transpose(1, 2).reshape(2, 197, 64))
    with torch.no_grad(), torch.autocast('cuda', dtype=dtype,
                                         enabled=dtype != torch.float32):
        got = attn(x)
    assert rel_error(got, ref.detach()) < tol

    bb = HiViTBackbone(arch=TINY_ARCH, img_size=64, use_rpe=True).eval()
    img = torch.randn(2, 3, 96, 128)
    with torch.no_grad():
        want = bb(img)
        bb.cuda()
        with torch.autocast('cuda', dtype=dtype,
                            enabled=dtype != torch.float32):
            out = bb(img.cuda())
    for o, w_ in zip(out, want):
        assert o.is_cuda
        # (fp32 on CUDA may run TF32 convolutions and products)
        assert rel_error(o.cpu(), w_) < tol
