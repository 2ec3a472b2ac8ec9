# Paper row: Mask R-CNN 1x, iTPN-B pixel pre-training, 53.0 box / 46.5 mask
# AP on COCO val. The official recipe of
# det/configs/itpn/pixel_itpn_base_1x_ld090_dp005.py: drop path 0.05,
# AdamW lr 2e-4, layer decay 0.90 (official COCO rule, num_layers 30),
# 12 epochs (steps 9, 11), batch 64, fp16, pyramid depth 1, rpe off.
# Expects an iTPN-B pixel pre-training checkpoint (mmitpn's, or the official
# one converted with tools/model_converters/itpn_to_mmitpn.py).
# The pre-training of this paper row (CVPR 2023, Table 2, "Eps."):
# iTPN-B pixel, 1600 epochs:
# configs/itpn/itpn-pixel_hivit-base-p16_8xb512-amp-coslr-1600e_in1k.py
_base_ = [
    '../_base_/models/mask-rcnn_itpn-base.py',
    '../_base_/datasets/coco_instance_detr_aug.py',
    '../_base_/default_runtime_mmdet.py',
    '../_base_/schedules/itpn_det_adamw.py',
]
