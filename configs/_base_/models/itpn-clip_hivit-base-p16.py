# iTPN-B with a CLIP teacher (official ``itpn_clip``): HiViT (3, 3, 24)
# with rpe and layer scale 0.1, BEiT block masks replaced by a mask token at
# stage 3, pyramid head + side head (stage-3 block int(0.75 * 24) = 18)
# regressing OpenAI CLIP ViT-B/16 patch tokens (512-d), plus MFM: each
# pyramid level reconstructs the CLIP token of the masked patches.
# The teacher weights are read from a local file, never downloaded: put
# OpenAI's ViT-B-16.pt there (or override model.teacher.weights).
model = dict(
    type='mmitpn.ITPNCLIP',
    backbone=dict(
        type='mmitpn.HiViTBackbone',
        arch='itpn-base',
        img_size=224,
        drop_path_rate=0.1,
        pos_embed_type='sincos',
        use_rpe=True,
        layer_scale_init_value=0.1,
        use_mask_token=True),
    neck=dict(
        type='mmitpn.ITPNPyramid',
        in_channels=(128, 256, 512),
        out_channels=256,
        fpn_depth=2,
        num_outs=3),
    head=dict(
        type='mmitpn.CLIPDistillHead',
        in_channels=256,
        level_sizes=(4, 2, 1),
        embed_dims=512,
        target_dims=512),
    side_head=dict(
        type='mmitpn.CLIPDistillHead',
        in_channels=512,
        level_sizes=(1, ),
        embed_dims=512,
        target_dims=512,
        depth=2,
        num_heads=8),
    side_block=None,  # int(0.75 * depth), as officially
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
        # the same loss as the CLIP heads, on the same LayerNorm-ed targets
        criterion='smooth_l1',
        loss_weights=(1., 1., 1.),
        norm_target=True),
    teacher=dict(
        type='mmitpn.CLIPTeacher',
        weights='checkpoints/clip/ViT-B-16.pt',
        student_mean=(123.675, 116.28, 103.53),
        student_std=(58.395, 57.12, 57.375)),
    data_preprocessor=dict(
        type='mmpretrain.SelfSupDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        to_rgb=True))
