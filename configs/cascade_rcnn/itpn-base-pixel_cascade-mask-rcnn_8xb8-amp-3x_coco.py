# Cascade Mask R-CNN 3x on COCO from an iTPN-B pixel (+ MFM) pre-training
# checkpoint (official recipe: lr 1e-4, drop path 0.2, layer decay 0.9,
# 36 epochs with steps 27 / 33, batch 64, fp16). As in the Mask R-CNN
# configs, the pre-trained pyramid IS the neck (5 levels, strides 4-64), and
# backbone AND pyramid load from the checkpoint. The three cascade box heads
# are 4conv1fc with SyncBN and GIoU (x10) on decoded boxes; the mask head is
# mmdet's FCN head, as in the official config. On one non-distributed
# process MMEngine reverts SyncBN to BN (and logs it).
_base_ = [
    'mmdet::_base_/models/cascade-mask-rcnn_r50_fpn.py',
    '../_base_/datasets/coco_instance_detr_aug.py',
    'mmdet::_base_/default_runtime.py',
    '../_base_/schedules/itpn_det_adamw.py',
]
pretrained = 'checkpoints/itpn-base_pixel-mfm_pretrain.pth'
norm_cfg = dict(type='SyncBN', requires_grad=True)
# (target_stds of the box coder) of the three stages, IoU 0.5 / 0.6 / 0.7
cascade_stds = ([0.1, 0.1, 0.2, 0.2], [0.05, 0.05, 0.1, 0.1],
                [0.033, 0.033, 0.067, 0.067])
model = dict(
    data_preprocessor=dict(pad_size_divisor=64),
    backbone=dict(
        _delete_=True,
        type='mmitpn.HiViTBackbone',
        arch='itpn-base',
        img_size=224,
        drop_path_rate=0.2,
        pos_embed_type='learnable',
        out_indices=(0, 1, 2),
        with_cp=False,
        init_cfg=dict(
            type='Pretrained', checkpoint=pretrained, prefix='backbone.')),
    neck=dict(
        _delete_=True,
        type='mmitpn.ITPNPyramid',
        in_channels=(128, 256, 512),
        out_channels=256,
        fpn_depth=2,
        num_outs=5,
        init_cfg=dict(
            type='Pretrained', checkpoint=pretrained, prefix='neck.')),
    roi_head=dict(bbox_head=[
        dict(
            type='Shared4Conv1FCBBoxHead',
            in_channels=256,
            conv_out_channels=256,
            fc_out_channels=1024,
            roi_feat_size=7,
            num_classes=80,
            bbox_coder=dict(
                type='DeltaXYWHBBoxCoder',
                target_means=[0., 0., 0., 0.],
                target_stds=stds),
            reg_class_agnostic=False,
            reg_decoded_bbox=True,
            norm_cfg=norm_cfg,
            loss_cls=dict(
                type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
            loss_bbox=dict(type='GIoULoss', loss_weight=10.0))
        for stds in cascade_stds
    ]))

max_epochs = 36
train_cfg = dict(max_epochs=max_epochs)
optim_wrapper = dict(
    optimizer=dict(lr=1e-4), paramwise_cfg=dict(layer_decay_rate=0.9))
param_scheduler = [
    dict(
        type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
        end=500),
    dict(
        type='MultiStepLR',
        begin=0,
        end=max_epochs,
        by_epoch=True,
        milestones=[27, 33],
        gamma=0.1)
]
