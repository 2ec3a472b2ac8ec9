# Paper row: Mask R-CNN 3x, iTPN-B CLIP pre-training, 54.1 box / 47.5 mask
# AP. The official recipe of det/configs/itpn/clip_itpn_base_3x_ld090_dp030.py:
# as the pixel 3x config (drop path 0.3, lr 1.5e-4, 36 epochs), with layer
# scale 0.1 on every backbone block (init_values=0.1) and rpe OFF, although
# the CLIP pre-training has it: its relative position tables and its mask
# token are not loaded (the official strict=False load dropped them too).
# The pre-training of this paper row (CVPR 2023, Table 2, "Eps."):
# iTPN-B CLIP-B, 800 epochs:
# configs/itpn/itpn-clip-b_hivit-base-p16_8xb256-amp-coslr-800e_in1k.py
_base_ = './itpn-base-pixel_mask-rcnn_8xb8-amp-3x_coco.py'
model = dict(
    backbone={{_base_.itpn_clip_backbone}},
    neck=dict(init_cfg=dict(checkpoint={{_base_.itpn_clip_pretrained}})))
