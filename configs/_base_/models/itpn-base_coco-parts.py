# The parts shared by the official iTPN-B COCO detectors
# (det/configs/itpn/*.py of github.com/sunsmarterjie/iTPN), used by
# ./mask-rcnn_itpn-base.py and ./cascade-mask-rcnn_itpn-base.py as
# {{_base_.itpn_backbone}} etc.
#
# The official detection backbone holds HiViT and the pyramid in one class
# (neck=None there); here they are mmitpn.HiViTBackbone and the
# mmitpn.ITPNPyramid neck, loaded from one pre-training checkpoint. Official
# values: img_size 224 (position embedding and relative positions are
# resized to each input), ape on, rpe off (iTPN-B), LayerNorm eps 1e-5 (the
# det backbone leaves torch's default; pre-training used 1e-6), pyramid
# depth 1 (a depth-2 pre-training pyramid loads without its second blocks,
# as the official strict=False load silently did), 5 levels, the strides 32
# and 64 average-pooled from stride 16.
pretrained = 'checkpoints/itpn-base_pixel_pretrain.pth'
itpn_backbone = dict(
    _delete_=True,
    type='mmitpn.HiViTBackbone',
    arch='itpn-base',
    img_size=224,
    drop_path_rate=0.05,
    pos_embed_type='learnable',
    rpe_type=None,
    norm_eps=1e-5,
    out_indices=(0, 1, 2),
    init_cfg=dict(
        type='Pretrained', checkpoint=pretrained, prefix='backbone.'))
itpn_neck = dict(
    _delete_=True,
    type='mmitpn.ITPNPyramid',
    in_channels=(128, 256, 512),
    out_channels=256,
    fpn_depth=1,
    num_outs=5,
    extra_pool='avg',
    norm_eps=1e-5,
    # the second block of each fusion of a depth-2 pre-training pyramid
    allow_partial_load=('blocks_8.1.', 'blocks_4.1.'),
    init_cfg=dict(type='Pretrained', checkpoint=pretrained, prefix='neck.'))
# 4conv1fc box head with SyncBN, GIoU (x10) on decoded boxes; the cascade
# has one per stage, with the stage's target_stds (IoU 0.5 / 0.6 / 0.7)
itpn_bbox_head = dict(
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
    norm_cfg=dict(type='SyncBN', requires_grad=True),
    loss_cls=dict(
        type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
    loss_bbox=dict(type='GIoULoss', loss_weight=10.0))
itpn_cascade_bbox_heads = [
    dict(
        itpn_bbox_head,
        bbox_coder=dict(itpn_bbox_head['bbox_coder'], target_stds=stds))
    for stds in ([0.1, 0.1, 0.2, 0.2], [0.05, 0.05, 0.1, 0.1],
                 [0.033, 0.033, 0.067, 0.067])
]
# What the official CLIP-B detectors change in the backbone
# (det/configs/itpn/clip_itpn_base_3x_ld090_dp030.py:23-26,
# cascade_CLIP_itpn_base_3x.py:23-26): layer scale 0.1 on every block, rpe
# off although the CLIP pre-training has Swin tables (dropped on load, as
# the official strict=False load did; its mask token is ignored).
itpn_clip_pretrained = 'checkpoints/itpn-base_clip_pretrain.pth'
itpn_clip_backbone = dict(
    layer_scale_init_value=0.1,
    layer_scale_stages=(0, 1, 2),
    allow_partial_load=tuple(
        f'stages.2.{j}.attn.relative_position_bias_table' for j in range(24)),
    init_cfg=dict(checkpoint=itpn_clip_pretrained))
