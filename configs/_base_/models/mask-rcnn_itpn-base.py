# Mask R-CNN with the integrally pre-trained HiViT + iTPN pyramid: the
# pyramid IS the neck (5 levels, strides 4-64; no FPN), as in the official
# detection code. Heads follow the official recipe: 4conv1fc box head with
# SyncBN and GIoU (x10), FCN mask head with SyncBN. On one non-distributed
# process MMEngine reverts SyncBN to BN (and logs it).
_base_ = 'mmdet::_base_/models/mask-rcnn_r50_fpn.py'
norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    data_preprocessor=dict(pad_size_divisor=64),
    backbone=dict(
        _delete_=True,
        type='mmitpn.HiViTBackbone',
        arch='itpn-base',
        img_size=224,
        drop_path_rate=0.05,
        pos_embed_type='learnable',
        out_indices=(0, 1, 2),
        with_cp=False),
    neck=dict(
        _delete_=True,
        type='mmitpn.ITPNPyramid',
        in_channels=(128, 256, 512),
        out_channels=256,
        fpn_depth=2,
        num_outs=5),
    roi_head=dict(
        bbox_head=dict(
            _delete_=True,
            type='Shared4Conv1FCBBoxHead',
            in_channels=256,
            conv_out_channels=256,
            fc_out_channels=1024,
            roi_feat_size=7,
            num_classes=80,
            bbox_coder=dict(
                type='DeltaXYWHBBoxCoder',
                target_means=[0., 0., 0., 0.],
                target_stds=[0.1, 0.1, 0.2, 0.2]),
            reg_class_agnostic=False,
            reg_decoded_bbox=True,
            norm_cfg=norm_cfg,
            loss_cls=dict(
                type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
            loss_bbox=dict(type='GIoULoss', loss_weight=10.0)),
        mask_head=dict(norm_cfg=norm_cfg)))
