# Paper row: UPerNet, iTPN-L pixel pre-training, 56.1 mIoU. The official
# seg/configs/itpn/pixel_upernet_itpn_large_12_512_slide_160k_ade20k_pt2ft.py:
# iTPN-L (768 wide, 2 + 2 MLP and 40 attention blocks), drop path 0.2,
# layer decay 0.95 (num_layers 44), UPerNet on 256 + (192, 384, 768, 768) =
# (448, 640, 1024, 1024) channels, the auxiliary head on 1024.
# The pre-training of this paper row (CVPR 2023, Table 2, "Eps."):
# iTPN-L pixel, 1600 epochs:
# configs/itpn/itpn-pixel_hivit-large-p16_8xb512-amp-coslr-1600e_in1k.py
_base_ = './itpn-base-pixel_upernet_8xb2-amp-160k_ade20k-512x512.py'
pretrained = 'checkpoints/itpn-large_pixel_pretrain.pth'
model = dict(
    backbone=dict(
        arch='itpn-large',
        drop_path_rate=0.2,
        init_cfg=dict(checkpoint=pretrained)),
    neck=dict(
        in_channels=(192, 384, 768), init_cfg=dict(checkpoint=pretrained)),
    decode_head=dict(in_channels=[448, 640, 1024, 1024]),
    auxiliary_head=dict(in_channels=1024))
optim_wrapper = dict(
    paramwise_cfg=dict(layer_decay_rate=0.95, num_layers=44))
