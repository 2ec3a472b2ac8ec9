# Paper row: Mask R-CNN 3x, iTPN-B pixel pre-training, 54.0 box / 47.4 mask
# AP. The official recipe of
# det/configs/itpn/pixel_itpn_base_3x_ld090_dp030.py:
# drop path 0.3, lr 1.5e-4, layer decay 0.90 (num_layers 30). That file
# keeps the 1x schedule of its base (12 epochs, steps 9, 11): a slip, the
# paper's row is 3x, so this config runs 36 epochs with steps 27, 33 as the
# official 3x files do.
# The pre-training of this paper row (CVPR 2023, Table 2, "Eps."):
# iTPN-B pixel, 1600 epochs:
# configs/itpn/itpn-pixel_hivit-base-p16_8xb512-amp-coslr-1600e_in1k.py
_base_ = [
    '../_base_/models/mask-rcnn_itpn-base.py',
    '../_base_/datasets/coco_instance_detr_aug.py',
    '../_base_/default_runtime_mmdet.py',
    '../_base_/schedules/itpn_det_adamw_3x.py',
]
model = dict(backbone=dict(drop_path_rate=0.3))
optim_wrapper = dict(optimizer=dict(lr=1.5e-4))
