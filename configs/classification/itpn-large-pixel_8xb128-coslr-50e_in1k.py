# ImageNet-1K fine-tuning of an iTPN-L pixel (+ MFM) pre-training checkpoint
# (official recipe: 50 epochs, layer decay 0.55 re-scaled per layer as
# 0.55 ** (13 / 45), drop path 0.2; otherwise as the iTPN-B config).
_base_ = './itpn-base-pixel_8xb128-coslr-100e_in1k.py'
pretrained = 'checkpoints/itpn-large_pixel-mfm_pretrain.pth'
model = dict(
    backbone=dict(
        arch='itpn-large',
        drop_path_rate=0.2,
        init_cfg=dict(checkpoint=pretrained)),
    head=dict(in_channels=768))
optim_wrapper = dict(paramwise_cfg=dict(layer_decay_rate=0.55**(13 / 45)))

max_epochs = 50
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
train_cfg = dict(max_epochs=max_epochs)
