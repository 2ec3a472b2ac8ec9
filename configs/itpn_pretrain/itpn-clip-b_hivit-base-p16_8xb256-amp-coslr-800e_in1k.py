# iTPN-B distilling CLIP ViT-B/16 (+ MFM), 800 epochs: AdamW betas
# (0.9, 0.999) instead of (0.9, 0.98), cosine over 790 epochs.
_base_ = './itpn-clip-b_hivit-base-p16_8xb256-amp-coslr-300e_in1k.py'
max_epochs = 800
warmup_epochs = 10
optim_wrapper = dict(optimizer=dict(betas=(0.9, 0.999)))
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
        eta_min=1e-5,
        by_epoch=True,
        begin=warmup_epochs,
        end=max_epochs,
        convert_to_iter_based=True)
]
train_cfg = dict(max_epochs=max_epochs)
