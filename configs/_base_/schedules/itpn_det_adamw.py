# Official iTPN COCO fine-tuning optimiser: AdamW (0.9, 0.999), wd 0.05
# (none on norms, biases, position embeddings, rpe tables, layer-scale),
# layer-wise lr decay over the backbone (pyramid and heads at full lr),
# mixed precision. Batch 64 = 8 GPUs x 8 images. Inherits mmdet's 1x loops
# and steps (a config may not list two bases that both set optim_wrapper).
_base_ = 'mmdet::_base_/schedules/schedule_1x.py'
optim_wrapper = dict(
    _delete_=True,
    type='AmpOptimWrapper',
    loss_scale='dynamic',
    constructor='mmitpn.ITPNLayerDecayOptimWrapperConstructor',
    optimizer=dict(
        type='AdamW', lr=2e-4, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=dict(layer_decay_rate=0.9),
    clip_grad=None)
auto_scale_lr = dict(enable=False, base_batch_size=64)
