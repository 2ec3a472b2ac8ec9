# UPerNet on ADE20K (512x512 crops, 160k iterations, batch 16 = 8 GPUs x 2)
# from an iTPN-B pixel (+ MFM) pre-training checkpoint; backbone AND pyramid
# load from it. Official recipe: AdamW lr 3e-5, wd 0.05, layer-wise lr
# decay, 1500 linear warm-up iterations then poly (power 1) to 0, drop path
# 0.1, relative position bias on (its tables are new: pixel pre-training has
# none), pyramid depth 2, 4 levels (the 4th max-pooled from the 3rd), slide
# inference 512 / 341, fp16.
#
# The pyramid outputs feed UPerHead directly (4 x 256 channels). The
# official code also concatenates every level with the backbone map of the
# same stride (256 + (128, 256, 512, 512) channels): that variant is
# ./itpn-base-pixel-concat_upernet_8xb2-amp-160k_ade20k-512x512.py.
_base_ = [
    'mmseg::_base_/models/upernet_r50.py',
    'mmseg::_base_/datasets/ade20k.py',
    'mmseg::_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_160k.py',
]
pretrained = 'checkpoints/itpn-base_pixel-mfm_pretrain.pth'
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
        # the crop's 32x32 grid, as in the official config: the 14x14
        # position embedding (and rpe tables, if any) of the checkpoint are
        # resized once when loaded
        img_size=crop_size,
        drop_path_rate=0.1,
        pos_embed_type='learnable',
        use_rpe=True,
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
        init_cfg=dict(
            type='Pretrained', checkpoint=pretrained, prefix='neck.')),
    decode_head=dict(
        in_channels=[256, 256, 256, 256],
        in_index=[0, 1, 2, 3],
        channels=512,
        num_classes=150),
    auxiliary_head=dict(in_channels=256, in_index=2, num_classes=150),
    test_cfg=dict(mode='slide', crop_size=crop_size, stride=(341, 341)))

# The official constructor re-scales the decay rate per layer as
# rate ** (13 / (num_layers + 2)) with num_layers = 30 for iTPN-B (so the
# whole backbone decays as much as a 12-block ViT does with `rate`); this
# constructor takes the per-layer factor itself.
optim_wrapper = dict(
    _delete_=True,
    type='AmpOptimWrapper',
    loss_scale='dynamic',
    constructor='mmitpn.ITPNLayerDecayOptimWrapperConstructor',
    optimizer=dict(
        type='AdamW', lr=3e-5, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=dict(layer_decay_rate=0.90**(13 / 32)))
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

train_dataloader = dict(batch_size=2)
val_dataloader = dict(batch_size=1)
test_dataloader = val_dataloader
auto_scale_lr = dict(enable=False, base_batch_size=16)
