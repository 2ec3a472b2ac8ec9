# Cascade Mask R-CNN 3x from the CLIP-target iTPN-B (rpe and layer scale 0.1
# on, as in its pre-training, so the checkpoint's relative position tables
# load). Official recipe: lr 1e-4, drop path 0.2, layer decay 0.9.
_base_ = './itpn-base-pixel_cascade-mask-rcnn_8xb8-amp-3x_coco.py'
pretrained = 'checkpoints/itpn-base_clip_pretrain.pth'
model = dict(
    backbone=dict(
        use_rpe=True,
        layer_scale_init_value=0.1,
        init_cfg=dict(checkpoint=pretrained)),
    neck=dict(init_cfg=dict(checkpoint=pretrained)))
