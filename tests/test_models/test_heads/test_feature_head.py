import pytest
import torch

from mmitpn.models import ITPNFeatureHead

CHANNELS = (16, 32, 64)


def make_inputs(B=2, N=16, L=4, F=32):
    pyramid = [torch.randn(B, L, k, k, F) for k in (4, 2, 1)]
    # targets with an offset and a scale, so that normalising them matters
    targets = [3 + 2 * torch.randn(B, N, k, k, c)
               for k, c in zip((4, 2, 1), CHANNELS)]
    noise = torch.rand(B, N)
    ids_restore = noise.argsort(1).argsort(1)
    mask = torch.ones(B, N)
    mask[:, :L] = 0
    mask = torch.gather(mask, 1, ids_restore)
    return pyramid, ids_restore, targets, mask


def layer_norm_by_hand(t, eps=1e-6):
    """Non-affine LayerNorm over the last dimension, biased variance."""
    mean = t.mean(-1, keepdim=True)
    var = ((t - mean)**2).mean(-1, keepdim=True)
    return (t - mean) / torch.sqrt(var + eps)


def criterion_by_hand(name, pred, tgt):
    """Per-sub-token loss ``(B, N, k*k)`` of ``(B, N, k*k, C)`` tensors."""
    if name == 'l2':
        return ((pred - tgt)**2).mean(-1)
    if name == 'smooth_l1':  # beta = 1
        d = (pred - tgt).abs()
        return torch.where(d < 1, 0.5 * d**2, d - 0.5).mean(-1)
    dot = (pred * tgt).sum(-1)
    cos = dot / (pred.norm(dim=-1) * tgt.norm(dim=-1)).clamp(min=1e-8)
    return 1 - cos


@pytest.mark.parametrize('predict_masked_only', [False, True])
@pytest.mark.parametrize('criterion', ['l2', 'smooth_l1', 'cosine'])
def test_loss_equals_hand_computation(criterion, predict_masked_only):
    """loss_s = w_s * mean over the masked patches of the batch of the
    criterion between the decoder's prediction and the non-affine
    LayerNorm-ed target, per level, with weights (1, 2, 0.5)."""
    weights = (1., 2., 0.5)
    head = ITPNFeatureHead(32, CHANNELS, embed_dims=32, depth=1,
                           num_heads=2, img_size=64, criterion=criterion,
                           loss_weights=weights,
                           predict_masked_only=predict_masked_only)
    pyramid, ids_restore, targets, mask = make_inputs()
    preds = []
    hooks = [d.register_forward_hook(lambda m, i, o: preds.append(o))
             for d in head.decoders]
    losses = head.loss(pyramid, ids_restore, targets, mask)
    for h in hooks:
        h.remove()
    assert set(losses) == {'loss_mfm_s4', 'loss_mfm_s8', 'loss_mfm_s16'}
    B, N = mask.shape
    masked = mask.bool()
    M = int(masked.sum())
    for pred, tgt, k, c, w, s in zip(preds, targets, (4, 2, 1), CHANNELS,
                                     weights, (4, 8, 16)):
        tgt = layer_norm_by_hand(tgt.reshape(B, N, k * k, c))[masked]
        if predict_masked_only:  # the decoder predicted the masked patches
            assert pred.shape[:2] == (B, M // B)  # (in patch order)
            pred = pred.reshape(M, k * k, c)
        else:
            pred = pred.reshape(B, N, k * k, c)[masked]
        per_patch = criterion_by_hand(criterion, pred, tgt).mean(-1)
        want = w * per_patch.sum() / M
        torch.testing.assert_close(losses[f'loss_mfm_s{s}'], want,
                                   atol=1e-6, rtol=1e-5)


def test_unnormalised_target_and_zero_weight():
    """norm_target=False compares the raw features; a level of weight 0
    has no loss term."""
    head = ITPNFeatureHead(32, CHANNELS, embed_dims=32, depth=1,
                           num_heads=2, img_size=64, norm_target=False,
                           loss_weights=(1., 0., 1.),
                           predict_masked_only=False)
    pyramid, ids_restore, targets, mask = make_inputs()
    losses = head.loss(pyramid, ids_restore, targets, mask)
    assert set(losses) == {'loss_mfm_s4', 'loss_mfm_s16'}
    B, N = mask.shape
    for dec, lvl, tgt, k, c, s in ((head.decoders[0], pyramid[0],
                                    targets[0], 4, 16, 4),
                                   (head.decoders[2], pyramid[2],
                                    targets[2], 1, 64, 16)):
        pred = dec([lvl], ids_restore).reshape(B, N, k * k * c)
        err = ((pred - tgt.reshape(B, N, -1))**2).mean(-1)
        want = (err * mask).sum() / mask.sum()
        torch.testing.assert_close(losses[f'loss_mfm_s{s}'], want)


def test_loss_only_on_masked_patches():
    head = ITPNFeatureHead(32, CHANNELS, embed_dims=32, depth=1,
                           num_heads=2, img_size=64)
    pyramid, ids_restore, targets, mask = make_inputs()
    base = head.loss(pyramid, ids_restore, targets, mask)
    visible = mask[0] == 0
    changed = [t.clone() for t in targets]
    for t in changed:
        t[0, visible] += 5 * torch.randn_like(t[0, visible])
    again = head.loss(pyramid, ids_restore, changed, mask)
    for k in base:
        torch.testing.assert_close(base[k], again[k])
    # while a change at a masked patch does change every level's loss
    for t in changed:
        t[0, ~visible] += 5 * torch.randn_like(t[0, ~visible])
    again = head.loss(pyramid, ids_restore, changed, mask)
    for k in base:
        assert not torch.allclose(base[k], again[k]), k


def test_zero_weights_and_errors():
    head = ITPNFeatureHead(32, CHANNELS, loss_weights=(0, 0, 0),
                           img_size=64, embed_dims=32, num_heads=2)
    assert not head.active
    with pytest.raises(ValueError, match='criterion'):
        ITPNFeatureHead(criterion='l3')
    head = ITPNFeatureHead(32, (16, 32, 128), embed_dims=32, depth=1,
                           num_heads=2, img_size=64)
    with pytest.raises(ValueError, match='target_channels'):
        head.loss(*make_inputs())


@pytest.mark.parametrize('criterion', ['l2', 'cosine'])
def test_predicting_masked_patches_only_gives_the_same_loss(criterion):
    """The fast path (last decoder block, norm and prediction on the masked
    patches only) is the plain computation, losses and gradients."""
    fast = ITPNFeatureHead(32, CHANNELS, embed_dims=32, depth=2,
                           num_heads=2, img_size=64, criterion=criterion)
    plain = ITPNFeatureHead(32, CHANNELS, embed_dims=32, depth=2,
                            num_heads=2, img_size=64, criterion=criterion,
                            predict_masked_only=False)
    plain.load_state_dict(fast.state_dict())
    pyramid, ids_restore, targets, mask = make_inputs()
    pyramid = [p.requires_grad_() for p in pyramid]
    got = fast.loss(pyramid, ids_restore, targets, mask)
    want = plain.loss(pyramid, ids_restore, targets, mask)
    for k in want:
        torch.testing.assert_close(got[k], want[k], atol=1e-6, rtol=1e-5)
    g_got = torch.autograd.grad(sum(got.values()), pyramid)
    g_want = torch.autograd.grad(sum(want.values()), pyramid)
    for a, b in zip(g_got, g_want):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)
