# Paper row: Cascade Mask R-CNN 3x, iTPN-B CLIP pre-training, 56.1 box /
# 48.6 mask AP. The official det/configs/itpn/cascade_CLIP_itpn_base_3x.py:
# the pixel cascade recipe (drop path 0.2, lr 1e-4, 36 epochs) with layer
# scale 0.1 on every backbone block and rpe off (the CLIP checkpoint's
# relative position tables and mask token are not loaded). That file also
# overrides the cascade roi_head with a single-stage StandardRoIHead dict,
# which mmcv cannot merge into the cascade base's list of box heads (it
# raises a TypeError): the cascade heads of the pixel file are used here.
# The pre-training of this paper row (CVPR 2023, Table 2, "Eps."):
# iTPN-B CLIP-B, 800 epochs:
# configs/itpn/itpn-clip-b_hivit-base-p16_8xb256-amp-coslr-800e_in1k.py
_base_ = './itpn-base-pixel_cascade-mask-rcnn_8xb8-amp-3x_coco.py'
model = dict(
    backbone={{_base_.itpn_clip_backbone}},
    neck=dict(init_cfg=dict(checkpoint={{_base_.itpn_clip_pretrained}})))
