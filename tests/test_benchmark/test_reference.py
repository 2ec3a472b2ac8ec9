"""mmitpn.benchmark.reference: mmpretrain's models and mmitpn's with the
same architecture and weights, and the equality check before timing."""
import pytest
import torch

from mmitpn.benchmark import reference as ref_mod
from mmitpn.benchmark.reference import (QUICK, OutputsDiffer,
                                        build_ours_backbone, build_ours_mim,
                                        build_ours_neck, build_ref_itpn,
                                        check_equal, copy_weights,
                                        hivit_block_names,
                                        map_mmpretrain_to_mmitpn,
                                        pixel_models, ref_pyramid_dense,
                                        seeded_masks)


def test_weight_mapping_covers_every_tensor_both_ways():
    a = QUICK
    ref = build_ref_itpn(a)
    ours = build_ours_mim(a, mfm=False)
    mapped = map_mmpretrain_to_mmitpn(ref.state_dict(), a['depths'])
    own = ours.state_dict()
    # every mmitpn tensor comes from mmpretrain, nothing is left over
    assert set(mapped) == set(own)
    for k, v in mapped.items():
        assert v.shape == own[k].shape, k
    # pyramid output blocks and level embeddings are reversed
    sd = ref.state_dict()
    assert torch.equal(mapped['neck.out_blocks.0.mlp.fc1.weight'],
                       sd['neck.fpn_modules.2.mlp.fc1.weight'])
    assert torch.equal(mapped['head.decoder.level_embeds.0.proj.weight'],
                       sd['neck.decoder_embed.2.1.weight'])
    assert torch.equal(mapped['head.decoder.level_embeds.2.norm.weight'],
                       sd['neck.decoder_embed.0.0.weight'])
    assert torch.equal(mapped['head.decoder.blocks.0.mlp.fc1.weight'],
                       sd['neck.decoder_blocks.0.ffn.layers.0.0.weight'])
    assert torch.equal(mapped['neck.align_4.weight'],
                       sd['neck.align_dim_8to4.weight'])
    assert torch.equal(mapped['neck.split_16to8.reduction.weight'],
                       sd['neck.split_16to8.reduction.weight'])


def test_hivit_block_names_double_the_stems():
    """mmpretrain builds 2 x depth MLP blocks per stem stage."""
    assert hivit_block_names((1, 1, 2)) == [
        'stages.0.0', 'stages.0.1', 'merges.0', 'stages.1.0', 'stages.1.1',
        'merges.1', 'stages.2.0', 'stages.2.1'
    ]


def test_seeded_masks_are_the_models_mae_masks_from_a_fixed_seed():
    model = build_ours_mim(QUICK, mfm=False)
    cpu = torch.device('cpu')
    ids_keep, ids_restore, mask = seeded_masks(model, 3, 16, cpu)
    assert ids_keep.shape == (3, 4) and mask.sum(1).eq(12).all()
    # the kept patches are the visible ones; ids_restore inverts the shuffle
    kept = torch.zeros(3, 16).scatter_(1, ids_keep, 1.)
    assert torch.equal(kept, 1 - mask)
    assert torch.equal(seeded_masks(model, 3, 16, cpu)[0], ids_keep)
    assert not torch.equal(seeded_masks(model, 3, 16, cpu, seed=1)[0],
                           ids_keep)
    # the global RNG is neither used nor moved
    state = torch.get_rng_state()
    seeded_masks(model, 3, 16, cpu)
    assert torch.equal(torch.get_rng_state(), state)


def test_reference_backbone_takes_the_given_masks():
    """The given masks decide which patches mmpretrain's backbone keeps:
    the stage-3 tokens of a run keeping patches P are the same as a run
    keeping every patch, read at P."""
    a = QUICK
    ref = build_ref_itpn(a).eval()
    img = torch.randn(2, 3, 64, 64)
    n = 16
    every = torch.arange(n).expand(2, n)
    ref.backbone.set_masks(every, every, torch.zeros(2, n))
    with torch.no_grad():
        full = ref.backbone(img)[0][-1]
    ids_keep, ids_restore, mask = seeded_masks(build_ours_mim(a, mfm=False),
                                               2, n, torch.device('cpu'))
    ref.backbone.set_masks(ids_keep, ids_restore, mask)
    with torch.no_grad():
        feats, got_mask, got_restore = ref.backbone(img)
    assert torch.equal(got_mask, mask) and torch.equal(got_restore,
                                                       ids_restore)
    # stage 3 has attention: tokens see each other, so only the MLP stages
    # (per patch) are comparable; stage 1 keeps 4x4 tokens per patch
    with torch.no_grad():
        ref.backbone.set_masks(every, every, torch.zeros(2, n))
        full1 = ref.backbone(img)[0][0]
    idx = ids_keep[:, :, None, None, None].expand(-1, -1, *full1.shape[2:])
    assert torch.allclose(feats[0], full1.gather(1, idx), atol=1e-6)
    assert full.shape[1] == n and feats[-1].shape[1] == ids_keep.shape[1]


def test_dense_pyramid_of_both_sides_agree_and_differ_when_broken():
    """mmpretrain's token path + rearrange gives mmitpn's dense pyramid,
    for a non-square image; a perturbed mmitpn weight shows."""
    a = QUICK
    ref = build_ref_itpn(a).eval()
    bb, neck = build_ours_backbone(a).eval(), build_ours_neck(a).eval()
    copy_weights(ref, bb, a['depths'], 'backbone.')
    copy_weights(ref, neck, a['depths'], 'neck.')
    img = torch.randn(1, 3, 96, 160)
    with torch.no_grad():
        theirs = ref_pyramid_dense(ref.backbone, ref.neck, img)
        ours = neck(bb(img))
        assert [t.shape for t in theirs] == [o.shape for o in ours]
        assert ref_mod.max_diff(theirs, ours) < 1e-4
        neck.out_blocks[0].mlp.fc2.weight.mul_(1.05)
        assert ref_mod.max_diff(theirs, neck(bb(img))) > 1e-3


def test_check_equal_records_and_stops():
    notes = []
    check_equal(3e-6, 'x', notes)
    assert notes == ['x: max diff 3.00e-06 (tol 1e-04)']
    with pytest.raises(OutputsDiffer, match=r'Outputs differ \(y\).*not '
                       'timing unequal models'):
        check_equal(2e-4, 'y', notes)
    with pytest.raises(OutputsDiffer):
        check_equal(float('nan'), 'z', notes)


def test_pixel_models_agree_and_the_check_catches_a_wrong_weight(
        monkeypatch):
    notes = []
    built = pixel_models(QUICK, torch.device('cpu'), None, notes,
                         check_batch=2)
    assert notes[0].startswith('b: pixel predictions: max diff')
    assert notes[1].startswith('b: pixel loss (relative): max diff')
    # the MFM model holds the same student and a teacher copied from it
    sd_pix, sd_mfm = built['pix'].state_dict(), built['mfm'].state_dict()
    w = 'backbone.stages.2.0.attn.qkv.weight'
    assert torch.equal(sd_pix[w], sd_mfm[w])
    assert torch.equal(built['mfm'].teacher.module.state_dict()[
        w[len('backbone.'):]], sd_pix[w])

    real = ref_mod.copy_weights

    def off_by_5_percent(ref, ours, depths, prefix=''):
        real(ref, ours, depths, prefix)
        with torch.no_grad():
            ours.head.decoder.pred.weight.mul_(1.05)

    monkeypatch.setattr(ref_mod, 'copy_weights', off_by_5_percent)
    with pytest.raises(OutputsDiffer, match='pixel predictions'):
        pixel_models(QUICK, torch.device('cpu'), None, [], check_batch=2,
                     with_mfm=False)
