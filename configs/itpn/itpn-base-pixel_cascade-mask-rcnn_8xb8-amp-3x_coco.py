# Paper row: Cascade Mask R-CNN 3x, iTPN-B pixel pre-training, 56.0 box /
# 48.5 mask AP. The official recipe of
# det/configs/itpn/cascade_pixel_itpn_base_3x.py: drop path 0.2, lr 1e-4,
# layer decay 0.90 (num_layers 30), 36 epochs (steps 27, 33), batch 64,
# fp16, pyramid depth 1, rpe off; three 4conv1fc SyncBN box heads with
# GIoU, the FCN mask head without norm.
# The pre-training of this paper row (CVPR 2023, Table 2, "Eps."):
# iTPN-B pixel, 1600 epochs:
# configs/itpn/itpn-pixel_hivit-base-p16_8xb512-amp-coslr-1600e_in1k.py
_base_ = [
    '../_base_/models/cascade-mask-rcnn_itpn-base.py',
    '../_base_/datasets/coco_instance_detr_aug.py',
    '../_base_/default_runtime_mmdet.py',
    '../_base_/schedules/itpn_det_adamw_3x.py',
]
model = dict(backbone=dict(drop_path_rate=0.2))
optim_wrapper = dict(optimizer=dict(lr=1e-4))
