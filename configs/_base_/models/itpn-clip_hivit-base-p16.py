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
    # The official teacher's input, quirk included: it receives the crop
    # as ToTensor gives it, p / 255 in [0, 1] (itpn_clip/datasets.py:48-49,
    # 60), and its ScalingLayerForClip, written for [-1, 1] inputs, maps it
    # to ((p / 255 + 1) * 127.5).clamp(0, 255) / 255 = (p + 255) / 510
    # before CLIP's mean / std (clip/create_clip.py:46-48): CLIP sees the
    # image at half contrast, brightened, i.e. pixel values p / 2 + 127.5.
    # Given student_mean M and student_std S, CLIPTeacher maps the
    # student's input x = (p - m) / s to (p' - clip_mean) / clip_std with
    # p' = S * x + M; for the student's m = s = 127.5, M = 191.25 and
    # S = 63.75 give exactly p' = p / 2 + 127.5. With another student
    # normalisation (m, s), use M = 127.5 + m / 2, S = s / 2.
    teacher=dict(
        type='mmitpn.CLIPTeacher',
        weights='checkpoints/clip/ViT-B-16.pt',
        student_mean=(191.25, 191.25, 191.25),
        student_std=(63.75, 63.75, 63.75)),
    # The official student normalisation: timm's IMAGENET_INCEPTION_MEAN /
    # _STD, (0.5, 0.5, 0.5) on the 0-1 scale, since run_itpn_pretraining.py
    # (:116) leaves --imagenet_default_mean_and_std False
    # (itpn_clip/datasets.py:28-30, 41-46; not passed by the README).
    data_preprocessor=dict(
        type='mmpretrain.SelfSupDataPreprocessor',
        mean=[127.5, 127.5, 127.5],
        std=[127.5, 127.5, 127.5],
        to_rgb=True))
