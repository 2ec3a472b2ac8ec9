# Paper row: UPerNet, iTPN-L CLIP pre-training, 57.7 mIoU. The official
# seg/configs/itpn/clip_upernet_itpn_large_12_512_slide_160k_ade20k_pt2ft.py:
# the pixel-L recipe (drop path 0.2, layer decay 0.95, num_layers 44) with
# layer scale 0.1 on every backbone block.
# The pre-training of this paper row (CVPR 2023, Table 2, "Eps."):
# iTPN-L CLIP-L, 300 epochs:
# configs/itpn/itpn-clip-l_hivit-large-p16_8xb256-amp-coslr-300e_in1k.py
_base_ = './itpn-large-pixel_upernet_8xb2-amp-160k_ade20k-512x512.py'
pretrained = 'checkpoints/itpn-large_clip_pretrain.pth'
model = dict(
    backbone=dict(
        layer_scale_init_value=0.1,
        layer_scale_stages=(0, 1, 2),
        init_cfg=dict(checkpoint=pretrained)),
    neck=dict(init_cfg=dict(checkpoint=pretrained)))
