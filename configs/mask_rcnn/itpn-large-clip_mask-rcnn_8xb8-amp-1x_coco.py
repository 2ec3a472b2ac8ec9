_base_ = './itpn-large-pixel_mask-rcnn_8xb8-amp-1x_coco.py'
pretrained = 'checkpoints/itpn-large_clip_pretrain.pth'
model = dict(
    backbone=dict(
        use_rpe=True,
        layer_scale_init_value=0.1,
        init_cfg=dict(checkpoint=pretrained)),
    neck=dict(init_cfg=dict(checkpoint=pretrained)))
