# Official iTPN COCO fine-tuning optimiser and 1x schedule
# (det/configs/itpn/pixel_itpn_base_1x_ld090_dp005.py): AdamW lr 2e-4,
# betas (0.9, 0.999), wd 0.05, fp16; layer-wise lr decay 0.90 as the
# official LayerDecayOptimizerConstructor computes it for iTPN-B
# (num_layers=30, layer ids over the official block list, merges included:
# see mmitpn.ITPNLayerDecayOptimWrapperConstructor, rule 'official_coco');
# 12 epochs, 500 linear warm-up iterations, steps at epochs 9 and 11.
# Batch 64 = 8 GPUs x 8 images (the official 32 GPUs x 2).
_base_ = 'mmdet::_base_/schedules/schedule_1x.py'
optim_wrapper = dict(
    _delete_=True,
    type='AmpOptimWrapper',
    loss_scale='dynamic',
    constructor='mmitpn.ITPNLayerDecayOptimWrapperConstructor',
    optimizer=dict(
        type='AdamW', lr=2e-4, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=dict(
        layer_decay_rate=0.9, layer_decay_rule='official_coco',
        num_layers=30),
    clip_grad=None)
param_scheduler = [
    dict(
        type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
        end=500),
    dict(
        type='MultiStepLR',
        begin=0,
        end=12,
        by_epoch=True,
        milestones=[9, 11],
        gamma=0.1)
]
auto_scale_lr = dict(enable=False, base_batch_size=64)
