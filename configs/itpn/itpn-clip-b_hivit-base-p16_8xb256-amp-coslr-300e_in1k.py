# Paper row's pre-training: iTPN-B distilling OpenAI CLIP ViT-B/16, 300
# epochs (IN-1K 85.9; the CLIP-B COCO and ADE20K rows used the 800-epoch
# one, CVPR 2023 Table 2 "Eps."), the official
# itpn_clip recipe (README.md and run_itpn_pretraining.py's defaults): batch
# 2048 = 8 GPUs x 256, lr 1.5e-3, AdamW (0.9, 0.98), wd 0.05 (none on 1-D
# parameters and the position embedding: the model's no_weight_decay), 5
# warm-up epochs, cosine to 1e-5, AMP; ColorJitter(0.4, 0.4, 0.4), flip,
# random crops of scale 0.08-1 (the script never passes its min-crop flag),
# BEiT block masks (75 of 14x14 patches). The teacher sees the student's
# crop: the official second crop is the same box at the same 224 px, only
# resampled with Lanczos instead of bicubic (itpn_clip/datasets.py:32-39,
# transforms.py:162-166, run_itpn_pretraining.py:103).
_base_ = [
    '../_base_/models/itpn-clip_hivit-base-p16.py',
    'mmpretrain::_base_/datasets/imagenet_bs256_beitv2.py',
    '../_base_/default_runtime_mmpretrain.py',
]
# Activation checkpointing: 256 images per GPU need an estimated 79 GiB
# without it, 18 GiB with it (iTPN-L: 118 / 47-70 GiB); the same result,
# one more forward pass of compute (configs/itpn/README.md, "Memory").
# The official runs had 32 images per GPU (itpn_clip/README.md:14).
model = dict(backbone=dict(with_cp=True), neck=dict(with_cp=True))

# One 224 view, normalised for the student as officially (mean = std =
# 0.5 on the 0-1 scale: the model's data_preprocessor); CLIPTeacher maps it
# to the official teacher input (see the model config). The beitv2 base
# packs a second view for a tokenizer and normalises it separately: not
# used here.
data_preprocessor = dict(
    _delete_=True,
    type='mmpretrain.SelfSupDataPreprocessor',
    mean=[127.5, 127.5, 127.5],
    std=[127.5, 127.5, 127.5],
    to_rgb=True)
train_pipeline = [
    dict(type='mmitpn.SeedAugmentation'),
    dict(type='mmitpn.CheckedLoadImageFromFile'),
    dict(type='ColorJitter', brightness=0.4, contrast=0.4, saturation=0.4),
    dict(type='RandomFlip', prob=0.5),
    dict(
        type='RandomResizedCrop',
        scale=224,
        crop_ratio_range=(0.08, 1.0),
        backend='pillow',
        interpolation='bicubic'),
    # BEiT block-wise masking: 75 of 14x14 patches, blocks of >= 16,
    # aspect 0.3-3.33
    dict(
        type='BEiTMaskGenerator',
        input_size=14,
        num_masking_patches=75,
        min_num_patches=16),
    # PackInputs packs 'mask' as a tensor by itself (algorithm_keys=['mask']
    # would overwrite it with the numpy array)
    dict(type='PackInputs')
]
train_dataloader = dict(
    batch_size=256,
    sampler=dict(
        _delete_=True,
        type='mmitpn.SeededSampler',
        sampler=dict(type='DefaultSampler', shuffle=True)),
    dataset=dict(pipeline=train_pipeline))

optim_wrapper = dict(
    type='AmpOptimWrapper',
    loss_scale='dynamic',
    # betas (0.9, 0.98) for 300 epochs, (0.9, 0.999) for 800
    optimizer=dict(
        type='AdamW', lr=1.5e-3, betas=(0.9, 0.98), weight_decay=0.05),
    paramwise_cfg=dict(
        flat_decay_mult=0.,
        custom_keys={'backbone.pos_embed': dict(decay_mult=0.)}))
# the cosine ends with the last epoch of train_cfg (left to the runner)
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=1e-4,
        by_epoch=True,
        begin=0,
        end=5,
        convert_to_iter_based=True),
    dict(
        type='CosineAnnealingLR',
        eta_min=1e-5,
        by_epoch=True,
        begin=5,
        convert_to_iter_based=True)
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=300)
default_hooks = dict(
    checkpoint=dict(interval=1, max_keep_ckpts=3))
randomness = dict(seed=0, diff_rank_seed=True)
resume = True
# lr 1.5e-3 is for a total batch of 2048 (with --auto-scale-lr)
auto_scale_lr = dict(base_batch_size=2048)
