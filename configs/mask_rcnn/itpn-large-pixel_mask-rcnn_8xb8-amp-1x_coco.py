# iTPN-L: 768 wide, 2 + 2 MLP and 40 attention blocks; layer decay 0.95.
_base_ = './itpn-base-pixel_mask-rcnn_8xb8-amp-1x_coco.py'
pretrained = 'checkpoints/itpn-large_pixel-mfm_pretrain.pth'
model = dict(
    backbone=dict(
        arch='itpn-large',
        drop_path_rate=0.3,
        with_cp=True,
        init_cfg=dict(checkpoint=pretrained)),
    neck=dict(
        in_channels=(192, 384, 768), init_cfg=dict(checkpoint=pretrained)))
optim_wrapper = dict(paramwise_cfg=dict(layer_decay_rate=0.95))
