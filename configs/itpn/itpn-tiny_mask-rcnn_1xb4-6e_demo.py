# Quick start, step 2: fine-tune the tiny iTPN pre-trained by
# configs/itpn/itpn-tiny_pixel-mfm_1xb32-200e_demo.py with Mask R-CNN
# on the embedded COCO-format shapes (tools/data/make_demo_data.py: 160x160
# images, circle / square / triangle); minutes on a 2-core CPU. The recipe
# of the iTPN-B 1x config at a small scale: backbone AND pyramid load from
# the pre-training checkpoint, the pyramid is the neck (5 levels).
# Without a checkpoint, train from scratch with
#   --cfg-options model.backbone.init_cfg=None model.neck.init_cfg=None
# SyncBN of the heads is reverted to BN by MMEngine on one process.
# Unlike the paper recipe it keeps the LayerNorm eps of its pre-training
# (1e-6), a SyncBN mask head and padding to 64 (the settings its README
# numbers were measured with).
# 6 epochs: a short schedule is where pre-training shows; on this easy set
# longer ones (train_cfg.max_epochs=12) bring random initialisation to the
# same mAP.
_base_ = './itpn-base-pixel_mask-rcnn_8xb8-amp-1x_coco.py'
pretrained = 'work_dirs/demo/pretrain/epoch_200.pth'
classes = ('circle', 'square', 'triangle')
width = 64  # pyramid width = the width of every head input
model = dict(
    data_preprocessor=dict(pad_size_divisor=64),
    backbone=dict(
        # the tiny arch of the demo pre-training (replaces the arch name)
        arch=dict(
            _delete_=True, embed_dims=128, depths=(1, 1, 2), num_heads=4),
        img_size=96,
        drop_path_rate=0.05,
        norm_eps=1e-6,
        init_cfg=dict(checkpoint=pretrained)),
    neck=dict(
        in_channels=(32, 64, 128),
        out_channels=width,
        fpn_depth=1,
        norm_eps=1e-6,
        init_cfg=dict(checkpoint=pretrained)),
    rpn_head=dict(in_channels=width, feat_channels=width),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=width),
        bbox_head=dict(
            in_channels=width,
            conv_out_channels=width,
            fc_out_channels=256,
            num_classes=len(classes)),
        mask_roi_extractor=dict(out_channels=width),
        mask_head=dict(
            in_channels=width,
            conv_out_channels=width,
            num_classes=len(classes),
            norm_cfg=dict(type='SyncBN', requires_grad=True))),
    # a few objects per small image: fewer proposals and RoIs keep a CPU
    # step short (the 4-conv box head runs on every sampled RoI)
    train_cfg=dict(
        rpn_proposal=dict(nms_pre=1000, max_per_img=300),
        rcnn=dict(sampler=dict(num=64))),
    test_cfg=dict(rpn=dict(nms_pre=500, max_per_img=300)))

data_root = 'data/demo/coco/'
metainfo = dict(
    classes=classes, palette=[(220, 20, 60), (0, 128, 255), (0, 200, 80)])
train_pipeline = [
    dict(type='mmitpn.SeedAugmentation'),
    dict(type='mmitpn.CheckedLoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', scale=(160, 160), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(160, 160), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor'))
]
train_dataloader = dict(
    batch_size=4,
    num_workers=2,
    dataset=dict(
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/instances_train.json',
        data_prefix=dict(img='train/'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=4,
    num_workers=2,
    dataset=dict(
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/instances_val.json',
        data_prefix=dict(img='val/'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(
    ann_file=data_root + 'annotations/instances_val.json',
    metric=['bbox', 'segm'])
test_evaluator = val_evaluator

# fp32 (no AMP) so that it runs anywhere; same layer-wise lr decay.
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    constructor='mmitpn.ITPNLayerDecayOptimWrapperConstructor',
    # a higher lr than the COCO recipe: 240 iterations on a tiny set
    optimizer=dict(
        type='AdamW', lr=1e-3, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=dict(layer_decay_rate=0.9))
max_epochs = 6
train_cfg = dict(max_epochs=max_epochs, val_interval=2)
param_scheduler = [
    dict(
        type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
        end=100),
    dict(
        type='MultiStepLR',
        begin=0,
        end=max_epochs,
        by_epoch=True,
        milestones=[4, 5],
        gamma=0.1)
]
auto_scale_lr = dict(enable=False, base_batch_size=4)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=dict(interval=2, max_keep_ckpts=2))
randomness = dict(seed=0)
