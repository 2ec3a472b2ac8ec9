import pytest
import torch

from mmitpn.models import ITPNFeatureHead


def make_inputs(B=2, N=16, L=4, F=32):
    pyramid = [torch.randn(B, L, k, k, F) for k in (4, 2, 1)]
    targets = [torch.randn(B, N, k, k, c) for k, c in ((4, 16), (2, 32),
                                                       (1, 64))]
    noise = torch.rand(B, N)
    ids_restore = noise.argsort(1).argsort(1)
    mask = torch.ones(B, N)
    mask[:, :L] = 0
    mask = torch.gather(mask, 1, ids_restore)
    return pyramid, ids_restore, targets, mask


@pytest.mark.parametrize('criterion', ['l2', 'smooth_l1', 'cosine'])
def test_losses_per_level(criterion):
    head = ITPNFeatureHead(32, (16, 32, 64), embed_dims=32, depth=1,
                           num_heads=2, img_size=64, criterion=criterion)
    losses = head.loss(*make_inputs())
    assert set(losses) == {'loss_mfm_s4', 'loss_mfm_s8', 'loss_mfm_s16'}
    assert all(v.ndim == 0 and torch.isfinite(v) for v in losses.values())


def test_loss_only_on_masked_patches():
    head = ITPNFeatureHead(32, (16, 32, 64), embed_dims=32, depth=1,
                           num_heads=2, img_size=64)
    pyramid, ids_restore, targets, mask = make_inputs()
    base = head.loss(pyramid, ids_restore, targets, mask)
    visible = mask[0] == 0
    changed = [t.clone() for t in targets]
    for t in changed:
        t[0, visible] += 5.
    again = head.loss(pyramid, ids_restore, changed, mask)
    for k in base:
        torch.testing.assert_close(base[k], again[k])


def test_zero_weights_and_errors():
    head = ITPNFeatureHead(32, (16, 32, 64), loss_weights=(0, 0, 0),
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
    fast = ITPNFeatureHead(32, (16, 32, 64), embed_dims=32, depth=2,
                           num_heads=2, img_size=64, criterion=criterion)
    plain = ITPNFeatureHead(32, (16, 32, 64), embed_dims=32, depth=2,
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
