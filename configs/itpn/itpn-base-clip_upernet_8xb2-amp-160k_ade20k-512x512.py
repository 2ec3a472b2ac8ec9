# Paper row: UPerNet, iTPN-B CLIP pre-training, 54.7 mIoU. The official
# seg/configs/itpn/clip_upernet_itpn_base_12_512_slide_160k_ade20k_pt2ft.py:
# the pixel-B recipe with drop path 0.2, layer scale 0.1 on every backbone
# block (not on the pyramid), and num_layers=44 given to the layer-decay
# constructor for a 30-block backbone: an official quirk that changes every
# backbone lr (0.90 ** (13 / 46) per layer id), kept here.
# The pre-training of this paper row (CVPR 2023, Table 2, "Eps."):
# iTPN-B CLIP-B, 800 epochs:
# configs/itpn/itpn-clip-b_hivit-base-p16_8xb256-amp-coslr-800e_in1k.py
_base_ = './itpn-base-pixel_upernet_8xb2-amp-160k_ade20k-512x512.py'
pretrained = 'checkpoints/itpn-base_clip_pretrain.pth'
model = dict(
    backbone=dict(
        drop_path_rate=0.2,
        layer_scale_init_value=0.1,
        layer_scale_stages=(0, 1, 2),
        init_cfg=dict(checkpoint=pretrained)),
    neck=dict(init_cfg=dict(checkpoint=pretrained)))
optim_wrapper = dict(paramwise_cfg=dict(num_layers=44))
