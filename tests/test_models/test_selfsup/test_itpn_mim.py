import pytest
import torch
from conftest import TINY_ARCH, ToyImages, tiny_itpn_cfg
from mmengine.logging import MessageHub
from mmpretrain.structures import DataSample

from mmitpn.models import HiViTBackbone
from mmitpn.models.layers import tokens_to_dense
from mmitpn.registry import MODELS


def batch(n=2):
    ds = ToyImages(n)
    items = [ds[i] for i in range(n)]
    return dict(inputs=torch.stack([x['inputs'] for x in items]),
                data_samples=[x['data_samples'] for x in items])


def test_pixel_and_mfm_losses_and_no_teacher_grad():
    model = MODELS.build(tiny_itpn_cfg())
    model.teacher.update_parameters(model.backbone)
    data = model.data_preprocessor(batch(), True)
    losses = model(**data, mode='loss')
    assert set(losses) == {
        'loss_pixel', 'loss_mfm_s4', 'loss_mfm_s8', 'loss_mfm_s16'
    }
    sum(losses.values()).backward()
    assert all(p.grad is None and not p.requires_grad
               for p in model.teacher.parameters())
    assert model.backbone.patch_embed.proj.weight.grad is not None
    assert not model.teacher.module.training
    model.train()
    assert not model.teacher.module.training


def test_pixel_only_model_has_no_teacher():
    model = MODELS.build(tiny_itpn_cfg(mfm=False))
    assert model.teacher is None
    data = model.data_preprocessor(batch(), True)
    assert set(model(**data, mode='loss')) == {'loss_pixel'}
    cfg = tiny_itpn_cfg()
    cfg['mfm_head']['loss_weights'] = (0, 0, 0)
    assert MODELS.build(cfg).teacher is None


def test_mfm_targets_are_the_teachers_maps_on_the_unmasked_image():
    """The MFM head gets, per level, the teacher backbone's stage map of
    the same stride (4, 8, 16) on the whole image, in token layout; here
    the teacher differs from the student, and the maps are recomputed by a
    separate backbone holding the teacher's weights."""
    model = MODELS.build(tiny_itpn_cfg())
    with torch.no_grad():
        for p in model.teacher.module.parameters():
            p.add_(0.2 * torch.randn_like(p))
    data = model.data_preprocessor(batch(), True)
    img = data['inputs']
    seen = {}
    real_loss = model.mfm_head.loss

    def spy(pyramid, ids_restore, targets, mask):
        seen.update(targets=targets, mask=mask)
        return real_loss(pyramid, ids_restore, targets, mask)

    model.mfm_head.loss = spy
    ids_keep, ids_restore, mask = model.random_masking(2, 16, 'cpu')
    losses = model.forward_mim(img, ids_keep, ids_restore, mask)
    teacher = HiViTBackbone(arch=TINY_ARCH, img_size=64).eval()
    teacher.load_state_dict(model.teacher.module.state_dict())
    student = HiViTBackbone(arch=TINY_ARCH, img_size=64).eval()
    student.load_state_dict(model.backbone.state_dict())
    with torch.no_grad():
        want = teacher(img)
        not_want = student(img)
    assert len(seen['targets']) == 3
    for tgt, t_map, s_map, k in zip(seen['targets'], want, not_want,
                                    (4, 2, 1)):
        assert tgt.shape == (2, 16, k, k, t_map.shape[1])
        # token (n, i, j) is the map's pixel (k (n // 4) + i, k (n % 4) + j)
        for n, i, j in ((0, 0, 0), (6, k - 1, 0), (15, k - 1, k - 1)):
            torch.testing.assert_close(
                tgt[:, n, i, j], t_map[:, :, k * (n // 4) + i,
                                       k * (n % 4) + j])
        torch.testing.assert_close(tokens_to_dense(tgt, (4, 4)), t_map)
        assert not torch.allclose(tokens_to_dense(tgt, (4, 4)), s_map,
                                  atol=1e-2)
    assert torch.equal(seen['mask'], mask)
    assert all(torch.isfinite(v) for v in losses.values())


def test_explicit_mask_from_data_samples():
    """A mask in the data samples is used as given: the loss equals the
    one of the masks built here by hand (visible patches in patch order,
    then the masked ones) and differs from another mask's."""
    model = MODELS.build(tiny_itpn_cfg(mfm=False))
    data = batch()
    masks = []
    for ds in data['data_samples']:
        m = torch.zeros(4, 4, dtype=torch.bool)
        m.view(-1)[torch.randperm(16)[:12]] = True
        ds.set_field(m, 'mask')
        masks.append(m.flatten())
    data = model.data_preprocessor(data, True)
    ids_keep, ids_restore = [], []
    for m in masks:
        order = [i for i in range(16) if not m[i]] + \
            [i for i in range(16) if m[i]]
        restore = [order.index(i) for i in range(16)]
        ids_keep.append(order[:4])
        ids_restore.append(restore)
    ids_keep, ids_restore = torch.tensor(ids_keep), torch.tensor(ids_restore)
    mask = torch.stack(masks).float()
    expected = model.forward_mim(data['inputs'], ids_keep, ids_restore,
                                 mask)
    seen = []
    real = model.forward_mim
    model.forward_mim = lambda *args: seen.append(args[1:]) or real(*args)
    got = model(**data, mode='loss')
    # the backbone keeps exactly the unmasked patches, in patch order
    assert torch.equal(seen[0][0], ids_keep)
    assert torch.equal(seen[0][1], ids_restore)
    assert torch.equal(seen[0][2], mask)
    torch.testing.assert_close(got['loss_pixel'], expected['loss_pixel'])
    other = model.forward_mim(data['inputs'], ids_keep.flip(0),
                              ids_restore.flip(0), mask.flip(0))
    assert not torch.allclose(got['loss_pixel'], other['loss_pixel'])
    bad = [DataSample(), DataSample()]
    bad[0].set_field(torch.zeros(4, 4, dtype=torch.bool), 'mask')
    bad[1].set_field(torch.ones(4, 4, dtype=torch.bool), 'mask')
    with pytest.raises(ValueError, match='same number of visible'):
        model(data['inputs'], bad, mode='loss')


def test_random_masking_is_a_function_of_the_iteration():
    model = MODELS.build(tiny_itpn_cfg(mfm=False)).train()
    hub = MessageHub.get_current_instance()
    hub.update_info('iter', 7)
    a = model.random_masking(2, 16, 'cpu')
    torch.manual_seed(123)  # the global RNG does not matter
    b = model.random_masking(2, 16, 'cpu')
    hub.update_info('iter', 8)
    c = model.random_masking(2, 16, 'cpu')
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not torch.equal(a[0], c[0])
    ids_keep, ids_restore, mask = a
    assert ids_keep.shape == (2, 4) and mask.sum() == 24
    assert torch.equal(mask.gather(1, ids_keep), torch.zeros(2, 4))


def test_bad_mask_ratio():
    cfg = tiny_itpn_cfg()
    cfg['mask_ratio'] = 1.0
    with pytest.raises(ValueError, match='mask_ratio'):
        MODELS.build(cfg)


def test_random_masking_with_a_generator_returns_named_parts():
    """With a generator the masks are a function of its seed (whatever the
    global RNG and the mode): the kept patches are the ones of the smallest
    noise the generator draws, ``mask`` is 1 exactly on the others and
    ``ids_restore`` gives every patch's position in [kept, masked]."""
    model = MODELS.build(tiny_itpn_cfg(mfm=False)).eval()
    masks = model.random_masking(
        2, 16, 'cpu', generator=torch.Generator().manual_seed(3))
    assert masks._fields == ('ids_keep', 'ids_restore', 'mask')
    torch.manual_seed(99)
    again = model.train().random_masking(
        2, 16, 'cpu', generator=torch.Generator().manual_seed(3))
    assert all(torch.equal(a, b) for a, b in zip(masks, again))
    noise = torch.rand(2, 16, generator=torch.Generator().manual_seed(3))
    for b in range(2):
        kept = masks.ids_keep[b].tolist()
        lowest = sorted(range(16), key=lambda i: float(noise[b, i]))[:4]
        assert kept == lowest  # in the order of the noise
        assert masks.mask[b].tolist() == [
            0. if i in kept else 1. for i in range(16)]
        for j, i in enumerate(kept):
            assert int(masks.ids_restore[b, i]) == j
        masked = [i for i in range(16) if i not in kept]
        assert sorted(masks.ids_restore[b, masked].tolist()) == list(
            range(4, 16))
    half = model.random_masking(2, 16, 'cpu', mask_ratio=0.5,
                                generator=torch.Generator().manual_seed(3))
    assert half.ids_keep.shape == (2, 8) and half.mask.sum() == 16
    with pytest.raises(ValueError, match='mask_ratio'):
        model.random_masking(2, 16, 'cpu', mask_ratio=1.)


def patchify_by_hand(img, p):
    """``(B, 3, H, W)`` -> ``(B, N, p * p * 3)``, pixels of a patch in
    (row, column, channel) order, patches row-major (MAE's layout)."""
    B, C, H, W = img.shape
    x = img.reshape(B, C, H // p, p, W // p, p)
    return x.permute(0, 2, 4, 3, 5, 1).reshape(B, (H // p) * (W // p),
                                               p * p * C)


def test_reconstruct_gives_the_pictures_of_the_masks():
    """``masked``: the input on visible patches, 0 on masked ones;
    ``reconstruction``: the head's per-patch prediction de-normalised with
    the mean / std of the same input patch; ``pasted``: the input on
    visible patches, the reconstruction on masked ones. A boolean mask
    gives the pictures of the same masks."""
    torch.manual_seed(0)
    model = MODELS.build(tiny_itpn_cfg(mfm=False)).eval()
    assert model.head.norm_pix
    img = torch.randn(2, 3, 64, 64) * 2 + 0.5
    masks = model.random_masking(2, 16, 'cpu',
                                 generator=torch.Generator().manual_seed(1))
    out = model.reconstruct(img, masks)
    assert out._fields == ('masked', 'reconstruction', 'pasted')
    with torch.no_grad():
        pred = model.head.predict(
            model.neck(model.backbone(img, ids_keep=masks.ids_keep)),
            masks.ids_restore)
    src = patchify_by_hand(img, 16)
    mean = src.mean(-1, keepdim=True)
    std = (src.var(-1, keepdim=True) + 1e-6).sqrt()
    got = {k: patchify_by_hand(v, 16) for k, v in out._asdict().items()}
    torch.testing.assert_close(got['reconstruction'], pred * std + mean,
                               atol=1e-5, rtol=1e-5)
    masked = masks.mask.bool()
    assert torch.equal(got['masked'][~masked], src[~masked])
    assert not got['masked'][masked].any()
    assert torch.equal(got['pasted'][~masked], src[~masked])
    assert torch.equal(got['pasted'][masked],
                       got['reconstruction'][masked])
    # a boolean (B, h, w) mask: its own ids, the same pictures up to the
    # order of the kept tokens
    again = model.reconstruct(img, masked.view(2, 4, 4))
    for a, b in zip(again, out):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
