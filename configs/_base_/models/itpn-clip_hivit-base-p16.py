# iTPN-B with a CLIP teacher, the official model (itpn_clip/
# modeling_pretrain.py:307-312, clip_tpn_base_3324_patch16_224): HiViT
# (3, 3, 24) with Swin relative position bias, layer scale 0.1 on EVERY
# backbone block (the MLP-only stage-1/2 blocks get the MLP-branch scale;
# :78-100), a learned position embedding initialised trunc-normal(0.02)
# (:55-58), drop path 0.1 rising over all 30 blocks (:74); BEiT block
# masks replaced by a mask token at stage 3 (:238-242); a pyramid of depth
# 1 (:311) without layer scale (:109-148); pyramid head + side head
# (output of stage-3 block int(0.75 * 24) = 18, :255) regressing OpenAI
# CLIP ViT-B/16 patch tokens (512-d), smooth-L1 on all tokens (:304).
# An official CLIP pre-training converted by
# tools/model_converters/itpn_to_mmitpn.py loads into this model with no
# missing and no unexpected key
# (tests/test_configs/test_official_checkpoints_load.py).
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
    # Official decoder_embed (LayerNorm eps 1e-6 + Linear 256 -> 512, 128,
    # 32 for strides 16, 8, 4), summed, norm (eps 1e-6), lm_head 512 -> 512
    # (itpn_clip/modeling_pretrain.py:155-175, 293-304)
    head=dict(
        type='mmitpn.CLIPDistillHead',
        in_channels=256,
        level_sizes=(4, 2, 1),
        embed_dims=512,
        target_dims=512),
    # Official cls_pt_layers + norm_cls + lm_cls_head
    # (itpn_clip/modeling_pretrain.py:173-187): two BlockWithRPE on the
    # stage-3 tokens themselves (no input embedding), built with the
    # defaults of modeling_finetune.py:81-82 (torch's LayerNorm, eps 1e-5;
    # rpe=True: a Swin table of the 14x14 grid), layer scale init_values
    # (0.1, run_itpn_pretraining.py:49 and the README) and drop path
    # dpr_cls[6 + i], i = 18, 19, of linspace(0, 0.1, 3 + 3 + 24)
    # (modeling_pretrain.py:75, 184); norm_cls is norm_layer, eps 1e-6
    # (modeling_pretrain.py:176, 312).
    side_head=dict(
        type='mmitpn.CLIPDistillHead',
        in_channels=512,
        level_sizes=(1, ),
        embed_dims=512,
        target_dims=512,
        depth=2,
        num_heads=8,
        embed_inputs=False,
        block_cfg=dict(
            layer_scale_init_value=0.1,
            rpe_size=(14, 14),
            norm_eps=1e-5,
            drop_path=(0.1 * 24 / 29, 0.1 * 25 / 29))),
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
