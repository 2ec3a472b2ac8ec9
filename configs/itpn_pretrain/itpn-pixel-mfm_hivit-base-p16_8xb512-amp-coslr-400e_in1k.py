# iTPN-B, pixel MIM + MFM (EMA teacher), ImageNet-1K, 400 epochs,
# 8 GPUs x 512 images (the official batch of 4096).
_base_ = [
    '../_base_/models/itpn-pixel-mfm_hivit-base-p16.py',
    'mmpretrain::_base_/datasets/imagenet_bs512_mae.py',
    'mmpretrain::_base_/default_runtime.py',
    '../_base_/schedules/itpn_pixel_pretrain.py',
]
custom_hooks = [dict(type='mmitpn.EMATeacherHook')]
default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=3))
randomness = dict(seed=0, diff_rank_seed=True)
resume = True
