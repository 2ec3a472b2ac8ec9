# iTPN-L (768 wide, 2 + 2 MLP blocks, 40 attention blocks), pixel + MFM.
_base_ = './itpn-pixel-mfm_hivit-base-p16_8xb512-amp-coslr-400e_in1k.py'
model = dict(
    backbone=dict(arch='itpn-large'),
    neck=dict(in_channels=(192, 384, 768)),
    mfm_head=dict(target_channels=(192, 384, 768)))
