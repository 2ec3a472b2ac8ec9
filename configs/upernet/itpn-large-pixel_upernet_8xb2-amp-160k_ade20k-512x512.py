# UPerNet on ADE20K from an iTPN-L pixel (+ MFM) pre-training checkpoint:
# 768 wide, 2 + 2 MLP and 40 attention blocks; layer decay 0.95 (re-scaled
# per layer as 0.95 ** (13 / (44 + 2)), see the iTPN-B config), drop path
# 0.2.
_base_ = './itpn-base-pixel_upernet_8xb2-amp-160k_ade20k-512x512.py'
pretrained = 'checkpoints/itpn-large_pixel-mfm_pretrain.pth'
model = dict(
    backbone=dict(
        arch='itpn-large',
        drop_path_rate=0.2,
        init_cfg=dict(checkpoint=pretrained)),
    neck=dict(
        in_channels=(192, 384, 768), init_cfg=dict(checkpoint=pretrained)))
optim_wrapper = dict(paramwise_cfg=dict(layer_decay_rate=0.95**(13 / 46)))
