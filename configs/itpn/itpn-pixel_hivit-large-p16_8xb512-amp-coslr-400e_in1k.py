# iTPN-L pixel pre-training, 400 epochs (itpn_large_dec512d8b: 768 wide,
# 2 + 2 MLP and 40 attention blocks; IN-1K 86.3; the ADE20K row used the
# 1600-epoch one, CVPR 2023 Table 2 "Eps.").
_base_ = './itpn-pixel_hivit-base-p16_8xb512-amp-coslr-400e_in1k.py'
model = dict(
    backbone=dict(arch='itpn-large'), neck=dict(in_channels=(192, 384, 768)))
