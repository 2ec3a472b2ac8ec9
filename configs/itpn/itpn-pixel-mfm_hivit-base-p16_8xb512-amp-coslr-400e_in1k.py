# mmitpn's integral pre-training of iTPN-B (no paper row: the paper's MFM
# code was never released): the official pixel recipe
# (./itpn-pixel_hivit-base-p16_8xb512-amp-coslr-400e_in1k.py) plus masked
# feature modeling against an EMA teacher: each pyramid level reconstructs
# the teacher backbone's map of the same stride at the masked positions.
# mmitpn's choice: a fixed sin-cos position embedding.
_base_ = './itpn-pixel_hivit-base-p16_8xb512-amp-coslr-400e_in1k.py'
model = dict(
    backbone=dict(pos_embed_type='sincos'),
    mfm_head=dict(
        type='mmitpn.ITPNFeatureHead',
        fpn_channels=256,
        target_channels=(128, 256, 512),
        embed_dims=256,
        depth=2,
        num_heads=8,
        img_size=224,
        criterion='l2',
        loss_weights=(1., 1., 1.),
        norm_target=True),
    # weight of the new student weights, cosine 0.004 -> 0 over the run,
    # i.e. teacher momentum 0.996 -> 1 (BYOL's schedule)
    teacher=dict(
        type='mmpretrain.CosineEMA', momentum=0.004, end_momentum=0.))
custom_hooks = [dict(type='mmitpn.EMATeacherHook')]
