# Mask R-CNN 3x from the CLIP-target iTPN-B (rpe and layer scale on,
# official recipe: lr 1.5e-4, drop path 0.3).
_base_ = './itpn-base-pixel_mask-rcnn_8xb8-amp-3x_coco.py'
pretrained = 'checkpoints/itpn-base_clip_pretrain.pth'
model = dict(
    backbone=dict(
        drop_path_rate=0.3,
        use_rpe=True,
        layer_scale_init_value=0.1,
        init_cfg=dict(checkpoint=pretrained)),
    neck=dict(init_cfg=dict(checkpoint=pretrained)))
optim_wrapper = dict(optimizer=dict(lr=1.5e-4))
