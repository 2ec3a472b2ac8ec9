# Official iTPN pixel pre-training recipe (itpn_pixel/main_pretrain.py,
# PRETRAIN.md): batch 4096, lr 1.5e-4 x bs / 256, AdamW (0.9, 0.95), wd
# 0.05 on every parameter but the 1-D ones (biases, norms: timm's
# add_weight_decay; the learned position embedding and the mask token are
# decayed), 40 warm-up epochs, cosine to 0 at the last epoch of train_cfg
# (its `end` is left to the runner: a config of another length sets
# max_epochs only), AMP. Runtime keys (default_hooks, randomness, resume) go
# in the leaf: mmengine refuses a key defined by two bases.
optim_wrapper = dict(
    type='AmpOptimWrapper',
    loss_scale='dynamic',
    optimizer=dict(
        type='AdamW',
        lr=1.5e-4 * 4096 / 256,
        betas=(0.9, 0.95),
        weight_decay=0.05),
    paramwise_cfg=dict(flat_decay_mult=0.))
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=1e-4,
        by_epoch=True,
        begin=0,
        end=40,
        convert_to_iter_based=True),
    dict(
        type='CosineAnnealingLR',
        eta_min=0.,
        by_epoch=True,
        begin=40,
        convert_to_iter_based=True)
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=400)
auto_scale_lr = dict(base_batch_size=4096)
