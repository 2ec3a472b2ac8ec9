# Cascade Mask R-CNN of the official iTPN-B COCO configs: backbone, pyramid
# and box heads as ./mask-rcnn_itpn-base.py, three cascade stages, the FCN
# mask head without a norm layer.
_base_ = [
    'mmdet::_base_/models/cascade-mask-rcnn_r50_fpn.py',
    './itpn-base_coco-parts.py',
]
model = dict(
    data_preprocessor=dict(pad_size_divisor=32),
    backbone={{_base_.itpn_backbone}},
    neck={{_base_.itpn_neck}},
    roi_head=dict(bbox_head={{_base_.itpn_cascade_bbox_heads}}))
