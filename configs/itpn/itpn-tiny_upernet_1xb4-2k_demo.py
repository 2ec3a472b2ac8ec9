# Quick start, step 2 (segmentation): fine-tune the tiny iTPN pre-trained by
# configs/itpn/itpn-tiny_pixel-mfm_1xb32-200e_demo.py with UPerNet on
# the embedded ADE20K-style shapes (tools/data/make_demo_data.py: 128x128
# images, labels 0 = ignored background, 1..3 = circle / square / triangle,
# read with reduce_zero_label); minutes on a 2-core CPU. The recipe of the
# iTPN-B config at a small scale (whole-image inference instead of slide).
# Without a checkpoint, train from scratch with
#   --cfg-options model.backbone.init_cfg=None model.neck.init_cfg=None
# SyncBN of the heads is reverted to BN by MMEngine on one process.
# Unlike the paper recipe it keeps the LayerNorm eps of its pre-training
# (1e-6), feeds the pyramid maps alone (no concatenation) to UPerHead and
# resizes the position embedding once, on load.
_base_ = './itpn-base-pixel_upernet_8xb2-amp-160k_ade20k-512x512.py'
pretrained = 'work_dirs/demo/pretrain/epoch_200.pth'
classes = ('circle', 'square', 'triangle')
crop_size = (128, 128)
width = 64  # pyramid width
data_preprocessor = dict(size=crop_size)
model = dict(
    data_preprocessor=data_preprocessor,
    backbone=dict(
        # the tiny arch of the demo pre-training (replaces the arch name)
        arch=dict(
            _delete_=True, embed_dims=128, depths=(1, 1, 2), num_heads=4),
        img_size=crop_size,
        pos_embed_size=None,  # resized once to the crop's grid on load
        norm_eps=1e-6,
        init_cfg=dict(checkpoint=pretrained)),
    neck=dict(
        in_channels=(32, 64, 128),
        out_channels=width,
        fpn_depth=1,
        concat_inputs=False,
        norm_eps=1e-6,
        init_cfg=dict(checkpoint=pretrained)),
    decode_head=dict(
        in_channels=[width] * 4,
        channels=width,
        pool_scales=(1, 2, 4),
        num_classes=len(classes)),
    auxiliary_head=dict(
        in_channels=width, channels=32, num_classes=len(classes)),
    test_cfg=dict(_delete_=True, mode='whole'))

data_root = 'data/demo/ade'
metainfo = dict(
    classes=classes, palette=[[220, 20, 60], [0, 128, 255], [0, 200, 80]])
train_pipeline = [
    dict(type='mmitpn.SeedAugmentation'),
    dict(type='mmitpn.CheckedLoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='mmitpn.CheckSegLabels', num_classes=len(classes)),
    dict(
        type='RandomResize',
        scale=(512, 128),
        ratio_range=(0.5, 2.0),
        keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(512, 128), keep_ratio=True),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs')
]
dataset = dict(
    type='BaseSegDataset',
    data_root=data_root,
    metainfo=metainfo,
    img_suffix='.jpg',
    seg_map_suffix='.png',
    reduce_zero_label=True)
train_dataloader = dict(
    batch_size=4,
    num_workers=2,
    dataset=dict(
        **dataset,
        data_prefix=dict(
            img_path='images/training', seg_map_path='annotations/training'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    dataset=dict(
        **dataset,
        data_prefix=dict(
            img_path='images/validation',
            seg_map_path='annotations/validation'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader

# fp32 (no AMP) so that it runs anywhere; same layer-wise lr decay, a
# larger lr for the short schedule.
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    constructor='mmitpn.ITPNLayerDecayOptimWrapperConstructor',
    optimizer=dict(
        type='AdamW', lr=2e-4, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=dict(layer_decay_rate=0.9))
max_iters = 2000
param_scheduler = [
    dict(
        type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0,
        end=100),
    dict(
        type='PolyLR',
        eta_min=0.0,
        power=1.0,
        begin=100,
        end=max_iters,
        by_epoch=False)
]
train_cfg = dict(max_iters=max_iters, val_interval=500)
auto_scale_lr = dict(enable=False, base_batch_size=4)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10, log_metric_by_epoch=False),
    checkpoint=dict(
        by_epoch=False, interval=500,
        max_keep_ckpts=2))
randomness = dict(seed=0)
