# Paper row: UPerNet, iTPN-B pixel pre-training, 53.5 mIoU on ADE20K val.
# The official recipe of
# seg/configs/itpn/pixel_upernet_itpn_base_12_512_slide_160k_ade20k_pt2ft.py:
# 512x512 crops, 160k iterations, batch 16 = 8 GPUs x 2, fp16, AdamW lr 3e-5,
# wd 0.05, layer decay 0.90 as the official iTPNLayerDecayOptimizerConstructor
# computes it (rule 'official_ade20k', num_layers 30), 1500 linear warm-up
# iterations (from 1e-6), then poly (power 1) decay to 0,
# drop path 0.1, Swin relative position bias (new: pixel pre-training has
# none), pyramid depth 2, LayerNorm eps 1e-5 (the official seg backbone
# leaves torch's default), slide inference 512 / 341.
# UPerNet reads 4 levels, each the pyramid map CONCATENATED with the backbone
# map of the same stride, the 4th max-pooled from the 3rd:
# 256 + (128, 256, 512, 512) = (384, 512, 768, 768) channels into a 768-wide
# head, the auxiliary FCN head on the 3rd (768).
# The pre-training of this paper row (CVPR 2023, Table 2, "Eps."):
# iTPN-B pixel, 1600 epochs:
# configs/itpn/itpn-pixel_hivit-base-p16_8xb512-amp-coslr-1600e_in1k.py
_base_ = [
    'mmseg::_base_/models/upernet_r50.py',
    'mmseg::_base_/datasets/ade20k.py',
    'mmseg::_base_/default_runtime.py',
    '../_base_/schedules/itpn_seg_160k.py',
]
pretrained = 'checkpoints/itpn-base_pixel_pretrain.pth'
crop_size = (512, 512)
# HiViT needs sides that are multiples of 16: test images are padded (and
# the padding removed from the prediction), training crops to crop_size.
data_preprocessor = dict(size=crop_size, test_cfg=dict(size_divisor=16))
model = dict(
    data_preprocessor=data_preprocessor,
    pretrained=None,
    backbone=dict(
        _delete_=True,
        type='mmitpn.HiViTBackbone',
        arch='itpn-base',
        # the crop's 32x32 grid (rpe tables are made for it and resized on
        # load), while the position embedding keeps the 14x14 table of
        # pre-training and is interpolated at every forward, as officially
        # (seg/backbone/iTPN.py:213-215, 366)
        img_size=crop_size,
        pos_embed_size=224,
        drop_path_rate=0.1,
        pos_embed_type='learnable',
        rpe_type='swin',
        norm_eps=1e-5,
        out_indices=(0, 1, 2),
        init_cfg=dict(
            type='Pretrained', checkpoint=pretrained, prefix='backbone.')),
    neck=dict(
        type='mmitpn.ITPNPyramid',
        in_channels=(128, 256, 512),
        out_channels=256,
        fpn_depth=2,
        num_outs=4,
        extra_pool='max',
        concat_inputs=True,
        norm_eps=1e-5,
        init_cfg=dict(
            type='Pretrained', checkpoint=pretrained, prefix='neck.')),
    decode_head=dict(
        in_channels=[384, 512, 768, 768],
        in_index=[0, 1, 2, 3],
        channels=768,
        num_classes=150),
    auxiliary_head=dict(in_channels=768, in_index=2, num_classes=150),
    test_cfg=dict(mode='slide', crop_size=crop_size, stride=(341, 341)))

optim_wrapper = dict(
    _delete_=True,
    type='AmpOptimWrapper',
    loss_scale='dynamic',
    constructor='mmitpn.ITPNLayerDecayOptimWrapperConstructor',
    optimizer=dict(
        type='AdamW', lr=3e-5, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=dict(
        layer_decay_rate=0.90, layer_decay_rule='official_ade20k',
        num_layers=30))
# The official mmcv poly policy runs from iteration 0 with the warm-up
# factor on top; as in mmseg 1.x's own BEiT configs, the poly starts after
# the warm-up here: the lr is within 1.0095x (160000 / 158500) of the
# official one, but in the last 100 of the 160k iterations, where MMEngine's
# poly reaches 0 one iteration early (its chained schedulers do not compose
# an overlapping warm-up and poly exactly: up to 7 % off in the warm-up).
param_scheduler = [
    dict(
        type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0,
        end=1500),
    dict(
        type='PolyLR',
        eta_min=0.0,
        power=1.0,
        begin=1500,
        end=160000,
        by_epoch=False)
]

# mmseg's ADE20K pipeline, headed by the per-sample seed of the
# augmentation (with the sampler below): a resumed run is exact
train_pipeline = [
    dict(type='mmitpn.SeedAugmentation'),
    dict(type='mmitpn.CheckedLoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    # one line naming the file and the value for a label outside the 150
    # classes (instead of an IndexError in the loss)
    dict(type='mmitpn.CheckSegLabels', num_classes=150),
    dict(
        type='RandomResize',
        scale=(2048, 512),
        ratio_range=(0.5, 2.0),
        keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs')
]
train_dataloader = dict(
    batch_size=2,
    sampler=dict(
        _delete_=True,
        type='mmitpn.SeededSampler',
        sampler=dict(type='InfiniteSampler', shuffle=True)),
    dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(batch_size=1)
test_dataloader = val_dataloader
auto_scale_lr = dict(enable=False, base_batch_size=16)
