# UPerNet on ADE20K from the CLIP-target iTPN-B (rpe and layer scale 0.1 on,
# as in its pre-training, so its relative position tables load). Official
# recipe: drop path 0.2; its constructor was given num_layers=44, i.e. a
# per-layer decay of 0.90 ** (13 / 46), kept here for reproduction.
_base_ = './itpn-base-pixel_upernet_8xb2-amp-160k_ade20k-512x512.py'
pretrained = 'checkpoints/itpn-base_clip_pretrain.pth'
model = dict(
    backbone=dict(
        drop_path_rate=0.2,
        layer_scale_init_value=0.1,
        init_cfg=dict(checkpoint=pretrained)),
    neck=dict(init_cfg=dict(checkpoint=pretrained)))
optim_wrapper = dict(paramwise_cfg=dict(layer_decay_rate=0.90**(13 / 46)))
