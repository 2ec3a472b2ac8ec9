# iTPN-B integral pre-training: HiViT (3, 3, 24) + pyramid, pixel MIM
# (official decoder: 512 wide, 8 blocks, 16 heads) + masked feature
# modeling against an EMA teacher. mfm_head=None gives the official pixel
# model exactly.
model = dict(
    type='mmitpn.ITPNMIM',
    backbone=dict(
        type='mmitpn.HiViTBackbone',
        arch='itpn-base',
        img_size=224,
        drop_path_rate=0.,
        pos_embed_type='sincos',
        use_rpe=False),
    neck=dict(
        type='mmitpn.ITPNPyramid',
        in_channels=(128, 256, 512),
        out_channels=256,
        fpn_depth=2,
        num_outs=3),
    head=dict(
        type='mmitpn.ITPNPixelHead',
        fpn_channels=256,
        embed_dims=512,
        depth=8,
        num_heads=16,
        img_size=224,
        norm_pix=True),
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
    teacher=dict(type='mmpretrain.CosineEMA', momentum=0.004,
                 end_momentum=0.),
    mask_ratio=0.75,
    data_preprocessor=dict(
        type='mmpretrain.SelfSupDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        to_rgb=True))
