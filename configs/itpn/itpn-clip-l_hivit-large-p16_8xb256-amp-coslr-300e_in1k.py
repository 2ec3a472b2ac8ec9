# Paper rows' pre-training: iTPN-L/16 distilling OpenAI CLIP ViT-L/14, 300
# epochs (IN-1K 87.8; the CLIP-L COCO and ADE20K rows), the official
# itpn_clip README command (clip_tpn_large_2240_patch16_224,
# --second_input_size 196): drop path 0.2, the teacher at 196 px (14x14
# tokens, CLIP's position embedding interpolated), 768-d targets; otherwise
# the iTPN-B recipe. Put OpenAI's ViT-L-14.pt at the teacher's path.
_base_ = './itpn-clip-b_hivit-base-p16_8xb256-amp-coslr-300e_in1k.py'
model = dict(
    backbone=dict(arch='itpn-large', drop_path_rate=0.2),
    neck=dict(in_channels=(192, 384, 768)),
    head=dict(embed_dims=768, target_dims=768),
    side_head=dict(
        in_channels=768, embed_dims=768, target_dims=768, num_heads=12),
    teacher=dict(weights='checkpoints/clip/ViT-L-14.pt', img_size=196))
