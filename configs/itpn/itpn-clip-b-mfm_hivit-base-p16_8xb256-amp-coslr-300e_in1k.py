# mmitpn's variant (no paper row): the official CLIP-B recipe
# (./itpn-clip-b_hivit-base-p16_8xb256-amp-coslr-300e_in1k.py) plus MFM:
# each pyramid level also reconstructs the CLIP tokens of the masked
# patches, with the same smooth-L1 loss on the same LayerNorm-ed targets.
_base_ = './itpn-clip-b_hivit-base-p16_8xb256-amp-coslr-300e_in1k.py'
model = dict(
    mfm_head=dict(
        type='mmitpn.ITPNFeatureHead',
        fpn_channels=256,
        target_channels=(512, 512, 512),
        level_sizes=(4, 2, 1),
        target_sizes=(1, 1, 1),
        embed_dims=256,
        depth=2,
        num_heads=8,
        img_size=224,
        criterion='smooth_l1',
        loss_weights=(1., 1., 1.),
        norm_target=True))
