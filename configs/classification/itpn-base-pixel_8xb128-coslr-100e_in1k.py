# ImageNet-1K fine-tuning of an iTPN-B pixel (+ MFM) pre-training checkpoint
# (official recipe: batch 1024, AdamW lr 4e-4 x 1024 / 256, wd 0.05, layer
# decay 0.60, drop path 0.15, 100 epochs with 5 warm-up epochs, mixup 0.8,
# cutmix 1.0, label smoothing 0.1, RandAugment m9, random erasing 0.25: the
# pipeline of mmpretrain's imagenet_bs64_swin_224.py).
#
# Only the backbone loads from the checkpoint (prefix 'backbone.'); the
# pyramid is not used for classification. `backbone.norm` (final_norm, the
# LayerNorm before pooling) and the head are new: they are not in any
# pre-training checkpoint, so MMEngine reports `backbone.norm.weight` and
# `backbone.norm.bias` as missing keys when it loads: that is expected.
# (The official model puts this LayerNorm after the average pooling.)
_base_ = [
    'mmpretrain::_base_/datasets/imagenet_bs64_swin_224.py',
    'mmpretrain::_base_/schedules/imagenet_bs1024_adamw_swin.py',
    'mmpretrain::_base_/default_runtime.py',
]
pretrained = 'checkpoints/itpn-base_pixel-mfm_pretrain.pth'
model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='mmitpn.HiViTBackbone',
        arch='itpn-base',
        img_size=224,
        out_indices=(-1, ),
        final_norm=True,
        pos_embed_type='learnable',
        use_rpe=False,  # as in the pixel pre-training (True for CLIP)
        drop_path_rate=0.15,
        init_cfg=dict(
            type='Pretrained', checkpoint=pretrained, prefix='backbone.')),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=1000,
        in_channels=512,
        loss=dict(
            type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
        init_cfg=[dict(type='TruncNormal', layer='Linear', std=2e-5)]),
    train_cfg=dict(augments=[
        dict(type='Mixup', alpha=0.8),
        dict(type='CutMix', alpha=1.0)
    ]))

train_dataloader = dict(batch_size=128)
val_dataloader = dict(batch_size=128)
test_dataloader = val_dataloader

# The official fine-tuning re-scales the decay rate per layer as
# rate ** (13 / num_layers), num_layers = blocks + 1 = 31 for iTPN-B (so
# the whole backbone decays as much as a 12-block ViT does with `rate`);
# this constructor takes the per-layer factor itself. No weight decay on
# norms, biases, position embeddings, rpe tables and layer-scale gammas.
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    constructor='mmitpn.ITPNLayerDecayOptimWrapperConstructor',
    optimizer=dict(
        type='AdamW',
        lr=4e-4 * 1024 / 256,
        betas=(0.9, 0.999),
        weight_decay=0.05),
    paramwise_cfg=dict(layer_decay_rate=0.60**(13 / 31)))

max_epochs = 100
warmup_epochs = 5
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
        eta_min=1e-6,
        by_epoch=True,
        begin=warmup_epochs,
        end=max_epochs,
        convert_to_iter_based=True)
]
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=1)
auto_scale_lr = dict(base_batch_size=1024)
default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=3))
randomness = dict(seed=0, diff_rank_seed=True)
