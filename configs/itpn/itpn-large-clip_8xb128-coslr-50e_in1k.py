# Paper rows: ImageNet-1K fine-tuning of iTPN-L/16 after CLIP pre-training,
# 87.8 (CLIP-L teacher, 300 epochs) and 87.0 (CLIP-B teacher, 300 epochs)
# top-1 (CVPR 2023 paper, Table 1). The official command "Fine-tune
# iTPN-L/16" of itpn_clip/README.md (:155-174): total batch 1024 = 8 GPUs x
# 128 here; officially 8 nodes x 8 GPUs (README.md:156) x --batch_size 16
# (:159), the launcher's WORLD_SIZE overriding --world_size 4 (:158;
# utils/utils.py:302-305); lr 2e-4 absolute (:164), drop path 0.25 (:166),
# 50 epochs (:167), layer decay 0.55 (:169, 0.55 ** (13 / 45) per block),
# 5 warm-up epochs (:171), mixup 0.8 / cutmix 1.0 (:172-173), wd 0.05
# (:174); model itpn_large_2240_patch16_224 (:163; modeling_finetune.py:
# 374-377: width 768, 2 + 2 MLP and 40 attention blocks of 12 heads,
# LayerNorm eps 1e-6); everything else as the iTPN-B CLIP config
# (run_itpn_finetuning.py's defaults: layer scale 0.1, Swin rpe, min_lr
# 1e-6, mean = std = 0.5, fp16).
_base_ = './itpn-base-clip_16xb128-coslr-100e_in1k.py'
pretrained = 'checkpoints/itpn-large_clip_pretrain.pth'
model = dict(
    backbone=dict(
        arch='itpn-large',
        drop_path_rate=0.25,
        init_cfg=dict(checkpoint=pretrained)),
    head=dict(in_channels=768))
train_dataloader = dict(batch_size=128)
optim_wrapper = dict(
    optimizer=dict(lr=2e-4), paramwise_cfg=dict(layer_decay_rate=0.55))
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
        eta_min_ratio=1e-6 / 2e-4,
        by_epoch=True,
        begin=5,
        convert_to_iter_based=True)
]
train_cfg = dict(max_epochs=50)
# lr 2e-4 is for the total batch of 1024 (with --auto-scale-lr)
auto_scale_lr = dict(base_batch_size=1024)
