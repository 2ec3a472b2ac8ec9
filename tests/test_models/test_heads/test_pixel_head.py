import torch

from mmitpn.models import ITPNPixelHead
from mmitpn.models.layers import masked_patch_ids


def test_masked_patch_ids():
    mask = torch.tensor([[0, 1, 1, 0], [1, 0, 0, 1]])
    assert masked_patch_ids(mask).tolist() == [[1, 2], [0, 3]]
    assert masked_patch_ids(torch.tensor([[0, 1, 1], [1, 0, 0]])) is None
    assert masked_patch_ids(torch.zeros(2, 3)) is None


def test_predicting_masked_patches_only_gives_the_same_loss():
    """The default fast path equals mmpretrain's full-prediction loss
    (``predict_masked_only=False``), values and gradients; with unequal
    mask counts it falls back to the full prediction."""
    B, N, L, F = 2, 16, 4, 32
    fast = ITPNPixelHead(F, embed_dims=32, depth=2, num_heads=2, img_size=64)
    plain = ITPNPixelHead(F, embed_dims=32, depth=2, num_heads=2,
                          img_size=64, predict_masked_only=False)
    plain.load_state_dict(fast.state_dict())
    pyramid = [torch.randn(B, L, k, k, F, requires_grad=True)
               for k in (4, 2, 1)]
    img = torch.randn(B, 3, 64, 64)
    ids_restore = torch.rand(B, N).argsort(1).argsort(1)
    mask = torch.gather(
        torch.cat([torch.zeros(B, L), torch.ones(B, N - L)], 1), 1,
        ids_restore)
    got = fast.loss(pyramid, ids_restore, img, mask)
    want = plain.loss(pyramid, ids_restore, img, mask)
    torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-5)
    g_got = torch.autograd.grad(got, pyramid)
    g_want = torch.autograd.grad(want, pyramid)
    for a, b in zip(g_got, g_want):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)


def test_loss_equals_hand_computation():
    """Normalised-pixel MSE over the masked patches: each target patch is
    its 16x16x3 pixels in (row, col, channel) order, minus their mean,
    over sqrt(unbiased variance + 1e-6), as in the official MAE code."""
    B, N, L, F = 2, 16, 4, 32
    head = ITPNPixelHead(F, embed_dims=32, depth=1, num_heads=2, img_size=64,
                         predict_masked_only=False)
    pyramid = [torch.randn(B, L, k, k, F) for k in (4, 2, 1)]
    img = torch.randn(B, 3, 64, 64) * 2 + 1
    ids_restore = torch.rand(B, N).argsort(1).argsort(1)
    mask = torch.gather(
        torch.cat([torch.zeros(B, L), torch.ones(B, N - L)], 1), 1,
        ids_restore)
    loss = head.loss(pyramid, ids_restore, img, mask)
    pred = head.predict(pyramid, ids_restore)
    assert pred.shape == (B, N, 16 * 16 * 3)
    total, count = 0., 0
    for b in range(B):
        for n in range(N):
            if not mask[b, n]:
                continue
            r, c = 16 * (n // 4), 16 * (n % 4)
            t = img[b, :, r:r + 16, c:c + 16].permute(1, 2, 0).reshape(-1)
            t = (t - t.mean()) / (t.var(unbiased=True) + 1e-6)**.5
            total = total + ((pred[b, n] - t)**2).mean()
            count += 1
    torch.testing.assert_close(loss, total / count, atol=1e-6, rtol=1e-5)
