# iTPN-B with a CLIP teacher, the official model (itpn_clip/
# modeling_pretrain.py, clip_tpn_base_3324_patch16_224): HiViT (3, 3, 24)
# with Swin relative position bias, layer scale 0.1 on EVERY backbone block
# (the MLP-only stage-1/2 blocks get the MLP-branch scale), a learned
# position embedding initialised trunc-normal(0.02), drop path 0.1; BEiT
# block masks replaced by a mask token at stage 3; a pyramid of depth 1;
# pyramid head + side head (stage-3 block int(0.75 * 24) = 18) regressing
# OpenAI CLIP ViT-B/16 patch tokens (512-d), smooth-L1 on all tokens.
# The teacher weights are read from a local file, never downloaded: put
# OpenAI's ViT-B-16.pt there (or override model.teacher.weights).
model = dict(
    type='mmitpn.ITPNCLIP',
    backbone=dict(
        type='mmitpn.HiViTBackbone',
        arch='itpn-base',
        img_size=224,
        drop_path_rate=0.1,
        pos_embed_type='learnable',
        pos_embed_init='trunc_normal',
        rpe_type='swin',
        layer_scale_init_value=0.1,
        layer_scale_stages=(0, 1, 2),
        use_mask_token=True),
    neck=dict(
        type='mmitpn.ITPNPyramid',
        in_channels=(128, 256, 512),
        out_channels=256,
        fpn_depth=1,
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
