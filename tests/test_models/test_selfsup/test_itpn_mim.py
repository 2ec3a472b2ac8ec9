import pytest
import torch
from conftest import ToyImages, tiny_itpn_cfg
from mmengine.logging import MessageHub
from mmpretrain.structures import DataSample

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


def test_explicit_mask_from_data_samples():
    model = MODELS.build(tiny_itpn_cfg(mfm=False))
    data = batch()
    masks = []
    for ds in data['data_samples']:
        m = torch.zeros(4, 4, dtype=torch.bool)
        m.view(-1)[torch.randperm(16)[:12]] = True
        ds.set_field(m, 'mask')
        masks.append(m)
    data = model.data_preprocessor(data, True)
    ids_keep, ids_restore, mask = model.ids_from_mask(torch.stack(masks))
    assert ids_keep.shape == (2, 4)
    expected = model.forward_mim(data['inputs'], ids_keep, ids_restore,
                                 mask)
    got = model(**data, mode='loss')
    torch.testing.assert_close(got['loss_pixel'], expected['loss_pixel'])
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
