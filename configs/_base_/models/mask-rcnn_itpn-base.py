# Mask R-CNN of the official iTPN-B COCO configs: the pyramid IS the neck
# (no FPN), the box head 4conv1fc with SyncBN and GIoU, the FCN mask head
# WITHOUT a norm layer (mmdet's default), images padded to 32. On one
# non-distributed process MMEngine reverts SyncBN to BN (and logs it).
_base_ = [
    'mmdet::_base_/models/mask-rcnn_r50_fpn.py',
    './itpn-base_coco-parts.py',
]
model = dict(
    data_preprocessor=dict(pad_size_divisor=32),
    backbone={{_base_.itpn_backbone}},
    neck={{_base_.itpn_neck}},
    roi_head=dict(bbox_head={{_base_.itpn_bbox_head}}))
