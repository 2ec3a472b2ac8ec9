# Paper row: ImageNet-1K fine-tuning of iTPN-B after pixel pre-training,
# 85.1 (400-epoch pre-training) / 85.5 (1600) top-1. The official recipe of
# itpn_pixel/FINETUNE.md with main_finetune.py's defaults: batch 1024,
# AdamW lr 4e-4 x 1024 / 256, betas (0.9, 0.999), wd 0.05, layer decay 0.60
# as itpn_pixel/util/lr_decay.py computes it (rule 'official_in1k': merges
# not counted, 0.60 ** (13 / 31) per block), drop path 0.15, Swin relative
# position bias (itpn_base builds rpe=True; new, pixel pre-training has
# none), 100 epochs, 5 linear warm-up epochs then cosine to 5e-6, fp16,
# mixup 0.8, cutmix 1.0, label smoothing 0.1, RandAugment m9, random erasing
# 0.25 (mmpretrain's imagenet_bs64_swin_224.py pipeline).
#
# Only the backbone loads from the checkpoint (prefix 'backbone.'); the
# pyramid is not used for classification. `backbone.norm` (final_norm) and
# the head are new. (The official model puts this LayerNorm after the
# average pooling, mmitpn before it.)
_base_ = [
    'mmpretrain::_base_/datasets/imagenet_bs64_swin_224.py',
    'mmpretrain::_base_/schedules/imagenet_bs1024_adamw_swin.py',
    '../_base_/default_runtime_mmpretrain.py',
]
pretrained = 'checkpoints/itpn-base_pixel_pretrain.pth'
model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='mmitpn.HiViTBackbone',
        arch='itpn-base',
        img_size=224,
        out_indices=(-1, ),
        final_norm=True,
        pos_embed_type='learnable',
        rpe_type='swin',
        drop_path_rate=0.15,
        # the final norm is new (no pre-training has it)
        allow_partial_load=True,
        init_cfg=dict(
            type='Pretrained', checkpoint=pretrained, prefix='backbone.')),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=1000,
        in_channels=512,
        loss=dict(
            type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
        init_cfg=[dict(type='TruncNormal', layer='Linear', std=2e-5)]),
    train_cfg=dict(augments=[
        dict(type='Mixup', alpha=0.8),
        dict(type='CutMix', alpha=1.0)
    ]))

train_dataloader = dict(batch_size=128)
val_dataloader = dict(batch_size=128)
test_dataloader = val_dataloader

optim_wrapper = dict(
    _delete_=True,
    type='AmpOptimWrapper',
    loss_scale='dynamic',
    constructor='mmitpn.ITPNLayerDecayOptimWrapperConstructor',
    optimizer=dict(
        type='AdamW',
        lr=4e-4 * 1024 / 256,
        betas=(0.9, 0.999),
        weight_decay=0.05),
    paramwise_cfg=dict(
        layer_decay_rate=0.60, layer_decay_rule='official_in1k'))
# The cosine runs to the last epoch of train_cfg (its `end` is left to the
# runner). Its floor is min_lr 5e-6 times each group's lr scale, as the
# official lr_sched.py scales it: eta_min_ratio = 5e-6 / lr.
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
        eta_min_ratio=5e-6 / (4e-4 * 1024 / 256),
        by_epoch=True,
        begin=5,
        convert_to_iter_based=True)
]
train_cfg = dict(by_epoch=True, max_epochs=100, val_interval=1)
auto_scale_lr = dict(base_batch_size=1024)
default_hooks = dict(
    checkpoint=dict(interval=1, max_keep_ckpts=3))
randomness = dict(seed=0, diff_rank_seed=True)
