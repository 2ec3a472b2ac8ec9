# Official iTPN pixel pre-training recipe (spec section 3): batch 4096,
# lr 1.5e-4 x bs / 256, AdamW (0.9, 0.95), wd 0.05 (none on norms, biases,
# position embeddings, mask tokens), 40 warm-up epochs, cosine to 0, AMP.
# Set max_epochs in the leaf config (cosine length follows it). Runtime
# keys (default_hooks, randomness, resume) go in the leaf too: mmengine
# refuses a key defined by two bases (mmpretrain's default_runtime has them).
max_epochs = 400
warmup_epochs = 40
optim_wrapper = dict(
    type='AmpOptimWrapper',
    loss_scale='dynamic',
    optimizer=dict(
        type='AdamW',
        lr=1.5e-4 * 4096 / 256,
        betas=(0.9, 0.95),
        weight_decay=0.05),
    paramwise_cfg=dict(
        custom_keys={
            'norm': dict(decay_mult=0.),
            'bias': dict(decay_mult=0.),
            'pos_embed': dict(decay_mult=0.),
            'mask_token': dict(decay_mult=0.),
            'gamma': dict(decay_mult=0.),
        }))
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=1e-4,
        by_epoch=True,
        begin=0,
        end=warmup_epochs,
        convert_to_iter_based=True),
    dict(
        type='CosineAnnealingLR',
        T_max=max_epochs - warmup_epochs,
        eta_min=0.,
        by_epoch=True,
        begin=warmup_epochs,
        end=max_epochs,
        convert_to_iter_based=True)
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs)
auto_scale_lr = dict(base_batch_size=4096)
