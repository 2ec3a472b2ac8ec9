# Paper row: ImageNet-1K fine-tuning of iTPN-L after pixel pre-training,
# 86.3 (400) / 86.7 (1600) top-1. The official iTPN-L command of
# itpn_pixel/FINETUNE.md: 50 epochs, base lr 1e-3 (x 1024 / 256), layer
# decay 0.55 (0.55 ** (13 / 45) per block), drop path 0.2; otherwise as the
# iTPN-B config.
_base_ = './itpn-base-pixel_8xb128-coslr-100e_in1k.py'
pretrained = 'checkpoints/itpn-large_pixel_pretrain.pth'
model = dict(
    backbone=dict(
        arch='itpn-large',
        drop_path_rate=0.2,
        init_cfg=dict(checkpoint=pretrained)),
    head=dict(in_channels=768))
optim_wrapper = dict(
    optimizer=dict(lr=1e-3 * 1024 / 256),
    paramwise_cfg=dict(layer_decay_rate=0.55))
# the cosine's floor follows the lr: min_lr 5e-6 / lr
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=1e-4,
        by_epoch=True,
        begin=0,
        end=5,
        convert_to_iter_based=True),
    dict(
        type='CosineAnnealingLR',
        eta_min_ratio=5e-6 / (1e-3 * 1024 / 256),
        by_epoch=True,
        begin=5,
        convert_to_iter_based=True)
]
train_cfg = dict(max_epochs=50)
