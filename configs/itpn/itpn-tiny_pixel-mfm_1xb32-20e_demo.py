# Quick start: integral pre-training (pixel MIM + MFM with an EMA teacher)
# of a tiny iTPN on the embedded demo images (tools/data/make_demo_data.py),
# about a minute on a 2-core CPU (320 iterations; the losses visibly fall).
# Same components as the ImageNet configs, smaller widths. The integral demo
# (tools/demo.py) pre-trains 10x longer with the 200e config inheriting this.
_base_ = ['../_base_/default_runtime_mmpretrain.py']

img_size = 96
arch = dict(embed_dims=128, depths=(1, 1, 2), num_heads=4)
model = dict(
    type='mmitpn.ITPNMIM',
    backbone=dict(type='mmitpn.HiViTBackbone', arch=arch, img_size=img_size),
    neck=dict(
        type='mmitpn.ITPNPyramid',
        in_channels=(32, 64, 128),
        out_channels=64,
        fpn_depth=1,
        num_outs=3),
    head=dict(
        type='mmitpn.ITPNPixelHead',
        fpn_channels=64,
        embed_dims=64,
        depth=1,
        num_heads=4,
        img_size=img_size),
    mfm_head=dict(
        type='mmitpn.ITPNFeatureHead',
        fpn_channels=64,
        target_channels=(32, 64, 128),
        embed_dims=64,
        depth=1,
        num_heads=4,
        img_size=img_size,
        loss_weights=(0.5, 0.5, 0.5)),
    teacher=dict(type='mmpretrain.CosineEMA', momentum=0.01,
                 end_momentum=0.),
    mask_ratio=0.75,
    data_preprocessor=dict(
        type='mmpretrain.SelfSupDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        to_rgb=True))

train_dataloader = dict(
    batch_size=32,
    num_workers=2,
    persistent_workers=True,
    # augmentation seeded by (seed, epoch, index): exact resume
    sampler=dict(
        type='mmitpn.SeededSampler',
        sampler=dict(type='DefaultSampler', shuffle=True)),
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        type='mmpretrain.CustomDataset',
        data_root='data/demo/pretrain',
        data_prefix='train',
        with_label=False,
        pipeline=[
            dict(type='mmitpn.SeedAugmentation'),
            dict(type='mmitpn.CheckedLoadImageFromFile'),
            dict(
                type='RandomResizedCrop',
                scale=img_size,
                crop_ratio_range=(0.4, 1.0),
                backend='pillow',
                interpolation='bicubic'),
            dict(type='RandomFlip', prob=0.5),
            dict(type='PackInputs')
        ]))

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(
        type='AdamW', lr=1.5e-3, betas=(0.9, 0.95), weight_decay=0.05),
    paramwise_cfg=dict(
        custom_keys={
            'norm': dict(decay_mult=0.),
            'bias': dict(decay_mult=0.),
            'pos_embed': dict(decay_mult=0.),
            'mask_token': dict(decay_mult=0.),
        }))
# the cosine ends with the last epoch of train_cfg (its `end` is left to
# the runner), so the 200-epoch demo sets max_epochs only
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=1e-3,
        by_epoch=True,
        begin=0,
        end=1,
        convert_to_iter_based=True),
    dict(
        type='CosineAnnealingLR',
        eta_min=1e-5,
        by_epoch=True,
        begin=1,
        convert_to_iter_based=True)
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=20)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=4),
    checkpoint=dict(interval=5, max_keep_ckpts=2))
custom_hooks = [dict(type='mmitpn.EMATeacherHook')]
randomness = dict(seed=0)
