# Paper rows: ImageNet-1K fine-tuning of iTPN-B after CLIP-B pre-training,
# 85.9 (300-epoch pre-training) / 86.2 (800) top-1 (CVPR 2023 paper,
# Table 1). The official command "Fine-tune iTPN-B" of itpn_clip/README.md
# (:127-146) with run_itpn_finetuning.py's defaults (github.com/
# sunsmarterjie/iTPN):
# - total batch 2048 = 16 GPUs x 128 here; officially 8 nodes x 8 GPUs
#   (README.md:128) x --batch_size 32 (:131): the launcher's WORLD_SIZE
#   (64) overrides the command's --world_size 4 (:130;
#   utils/utils.py:302-305);
# - AdamW lr 5e-4 (README.md:136), absolute: the optimizer takes args.lr
#   with no batch scaling (run_itpn_finetuning.py:407-412); eps 1e-8 (:76),
#   betas torch's (0.9, 0.999) (--opt_betas None, :78); wd 0.05 (README.md:
#   146), constant (--weight_decay_end None, :420-423); none on 1-D
#   parameters, absolute_pos_embed and the rpe tables (utils/lr_decay.py:36,
#   modeling_finetune.py:297-298);
# - layer decay 0.60 (README.md:141) as utils/lr_decay.py:16-84 computes
#   it (rule 'official_in1k', the same code as itpn_pixel's);
# - 100 epochs (:139), 20 warm-up epochs (:143) rising per iteration from 0
#   (utils/utils.py:446-454), then a cosine to --min_lr 1e-6 (:96), each
#   group at lr_scale times the schedule (engine_for_finetuning.py:60):
#   eta_min_ratio = 1e-6 / 5e-4;
# - drop path 0.1 (README.md:138), layer scale 0.1 on every block
#   (--layer_scale_init_value 0.1, :54, passed at :307; the MLP-only blocks
#   scale their MLP branch: modeling_finetune.py:101-108), Swin relative
#   position bias (--rel_pos_bias, :49-51), learned position embedding
#   (:52-53), LayerNorm eps 1e-6 (modeling_finetune.py:363);
# - mixup 0.8, cutmix 1.0 (README.md:144-145) with label smoothing 0.1
#   (:109, :294-297), RandAugment rand-m9-mstd0.5-inc1 (:107), random
#   erasing 0.25 (:118), bicubic crops (:111), fp16 autocast with dynamic
#   loss scaling (engine_for_finetuning.py:75, run_itpn_finetuning.py:413);
# - inputs normalised with mean = std = 0.5 (timm's inception statistics:
#   --imagenet_default_mean_and_std is False, :160; datasets.py:127-130,
#   143-144, 167), as in CLIP pre-training; RandAugment pads with 128 and
#   random erasing draws N(0, 1) in the normalised space, as timm derives
#   them from that mean (datasets.py:134-145; mmpretrain's RandomErasing
#   clips the draw to the pixel range, timm's does not);
# - the head starts trunc-normal(0.02) (modeling_finetune.py:285-289).
#
# Only the backbone loads from the checkpoint (prefix 'backbone.'); the
# CLIP pre-training's mask token and heads are not used, the final norm
# and the classifier are new. (Officially this LayerNorm follows the
# average pooling, modeling_finetune.py:353-354; here it precedes it, as in
# the pixel fine-tuning configs.)
_base_ = './itpn-base-pixel_8xb128-coslr-100e_in1k.py'
pretrained = 'checkpoints/itpn-base_clip_pretrain.pth'
data_preprocessor = dict(mean=[127.5, 127.5, 127.5], std=[127.5, 127.5, 127.5])
model = dict(
    backbone=dict(
        drop_path_rate=0.1,
        layer_scale_init_value=0.1,
        layer_scale_stages=(0, 1, 2),
        init_cfg=dict(checkpoint=pretrained)),
    head=dict(init_cfg=[dict(type='TruncNormal', layer='Linear', std=0.02)]))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='RandomResizedCrop',
        scale=224,
        backend='pillow',
        interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(
        type='RandAugment',
        policies='timm_increasing',
        num_policies=2,
        total_level=10,
        magnitude_level=9,
        magnitude_std=0.5,
        hparams=dict(pad_val=[128, 128, 128], interpolation='bicubic')),
    dict(
        type='RandomErasing',
        erase_prob=0.25,
        mode='rand',
        min_area_ratio=0.02,
        max_area_ratio=1 / 3,
        fill_color=[127.5, 127.5, 127.5],
        fill_std=[127.5, 127.5, 127.5]),
    dict(type='PackInputs'),
]
train_dataloader = dict(batch_size=128, dataset=dict(pipeline=train_pipeline))

optim_wrapper = dict(
    optimizer=dict(lr=5e-4, eps=1e-8), paramwise_cfg=dict(layer_decay_rate=0.60))
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=1e-4,
        by_epoch=True,
        begin=0,
        end=20,
        convert_to_iter_based=True),
    dict(
        type='CosineAnnealingLR',
        eta_min_ratio=1e-6 / 5e-4,
        by_epoch=True,
        begin=20,
        convert_to_iter_based=True)
]
train_cfg = dict(max_epochs=100)
# lr 5e-4 is for the total batch of 2048 (with --auto-scale-lr)
auto_scale_lr = dict(base_batch_size=2048)
