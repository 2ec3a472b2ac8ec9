# Mask R-CNN 1x on COCO from an iTPN-B pixel (+ MFM) pre-training
# checkpoint: an mmitpn pre-training checkpoint or the output of
# tools/model_converters/itpn_to_mmitpn.py. Backbone AND pyramid load.
_base_ = [
    '../_base_/models/mask-rcnn_itpn-base.py',
    '../_base_/datasets/coco_instance_detr_aug.py',
    'mmdet::_base_/default_runtime.py',
    '../_base_/schedules/itpn_det_adamw.py',
]
pretrained = 'checkpoints/itpn-base_pixel-mfm_pretrain.pth'
model = dict(
    backbone=dict(
        drop_path_rate=0.05,
        init_cfg=dict(
            type='Pretrained', checkpoint=pretrained, prefix='backbone.')),
    neck=dict(
        init_cfg=dict(
            type='Pretrained', checkpoint=pretrained, prefix='neck.')))
optim_wrapper = dict(optimizer=dict(lr=2e-4),
                     paramwise_cfg=dict(layer_decay_rate=0.9))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
         end=500),
    dict(type='MultiStepLR', begin=0, end=12, by_epoch=True,
         milestones=[9, 11], gamma=0.1)
]
