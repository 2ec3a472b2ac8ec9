# Paper rows' pre-training: iTPN-B, pixel supervision, 400 epochs (IN-1K
# 85.1, COCO and ADE20K rows), the official itpn_pixel recipe: batch 4096 =
# 8 GPUs x 512, lr 1.5e-4 x 4096 / 256, AdamW (0.9, 0.95), wd 0.05 (none on
# 1-D parameters), 40 warm-up epochs, cosine to 0, AMP, random crops
# (0.2-1, bicubic) and flips (mmpretrain's imagenet_bs512_mae.py). The
# learned position embedding starts from the sin-cos table.
_base_ = [
    '../_base_/models/itpn-pixel_hivit-base-p16.py',
    'mmpretrain::_base_/datasets/imagenet_bs512_mae.py',
    'mmpretrain::_base_/default_runtime.py',
    '../_base_/schedules/itpn_pixel_pretrain.py',
]
default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=3))
randomness = dict(seed=0, diff_rank_seed=True)
resume = True
