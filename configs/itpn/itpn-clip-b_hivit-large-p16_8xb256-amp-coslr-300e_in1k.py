# Paper row's pre-training: iTPN-L/16 distilling OpenAI CLIP ViT-B/16, 300
# epochs (IN-1K 87.0 after fine-tuning, CVPR 2023 paper, Table 1). The
# official itpn_clip README command "Pre-train iTPN-L/16 using CLIP-B"
# (README.md:58-73): clip_tpn_large_2240_patch16_224, --clip_path
# ViT-B-16.pt, --drop_path 0.2, --second_input_size 224, otherwise the
# iTPN-B recipe (batch 32 x 64 GPUs, lr 1.5e-3, betas (0.9, 0.98), layer
# scale 0.1). The targets are CLIP-B's 512-d tokens (--teacher_dim 512,
# run_itpn_pretraining.py:38-39); the teacher sees the student's 224-px
# crop. Put OpenAI's ViT-B-16.pt at the teacher's path.
_base_ = './itpn-clip-l_hivit-large-p16_8xb256-amp-coslr-300e_in1k.py'
model = dict(
    head=dict(target_dims=512),
    side_head=dict(target_dims=512),
    teacher=dict(weights='checkpoints/clip/ViT-B-16.pt', img_size=224))
