# Paper rows' pre-training: iTPN-L/16 distilling OpenAI CLIP ViT-L/14, 300
# epochs (IN-1K 87.8; the CLIP-L COCO and ADE20K rows), the official
# itpn_clip README command (clip_tpn_large_2240_patch16_224,
# --second_input_size 196): drop path 0.2, the teacher at 196 px (14x14
# tokens, CLIP's position embedding interpolated), 768-d targets
# (run_itpn_pretraining.py:38-39, --teacher_dim 768 for CLIP-L); otherwise
# the iTPN-B recipe. Put OpenAI's ViT-L-14.pt at the teacher's path.
#
# The teacher's 196-px view: officially a second crop of the SAME box (same
# colour jitter and flip) resized to 196 px with Lanczos
# (itpn_clip/datasets.py:32-39, transforms.py:162-166,
# run_itpn_pretraining.py:103 --second_interpolation lanczos); here
# CLIPTeacher resizes the student's 224-px bicubic crop to 196 px
# (bicubic). The two differ by resampling only (one interpolation vs two,
# Lanczos vs bicubic kernels), not by content. (mmpretrain's
# RandomResizedCropAndInterpolationWithTwoPic + TwoNormDataPreprocessor
# would give the exact second view, but ITPNCLIP feeds its teacher the
# student's view.)
_base_ = './itpn-clip-b_hivit-base-p16_8xb256-amp-coslr-300e_in1k.py'
# itpn_clip/modeling_pretrain.py:322-327: embed_dim 768, mlp_depth1 =
# mlp_depth2 = 2, depth 40, 12 heads, fpn_dim 256, fpn_depth 1
model = dict(
    backbone=dict(arch='itpn-large', drop_path_rate=0.2),
    neck=dict(in_channels=(192, 384, 768)),
    head=dict(embed_dims=768, target_dims=768),
    # side head on the output of block int(0.75 * 40) = 30; its drop path
    # dpr_cls[4 + i], i = 30, 31, of linspace(0, 0.2, 2 + 2 + 40)
    # (modeling_pretrain.py:75, 184)
    side_head=dict(
        in_channels=768,
        embed_dims=768,
        target_dims=768,
        num_heads=12,
        block_cfg=dict(drop_path=(0.2 * 34 / 43, 0.2 * 35 / 43))),
    teacher=dict(weights='checkpoints/clip/ViT-L-14.pt', img_size=196))
