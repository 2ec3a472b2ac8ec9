# COCO instance segmentation with the DETR-style multi-scale augmentation of
# the official iTPN detection configs, 8 images per GPU.
_base_ = 'mmdet::_base_/datasets/coco_instance.py'
train_pipeline = [
    # augmentation seeded by (seed, epoch, index), with the sampler below
    dict(type='mmitpn.SeedAugmentation'),
    dict(type='mmitpn.CheckedLoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomFlip', prob=0.5),
    dict(
        type='RandomChoice',
        transforms=[[
            dict(
                type='RandomChoiceResize',
                scales=[(1333, s) for s in range(480, 801, 32)],
                keep_ratio=True)
        ],
                    [
                        dict(
                            type='RandomChoiceResize',
                            scales=[(1333, 400), (1333, 500), (1333, 600)],
                            keep_ratio=True),
                        dict(
                            type='RandomCrop',
                            crop_type='absolute_range',
                            crop_size=(384, 600),
                            allow_negative_crop=True),
                        dict(
                            type='RandomChoiceResize',
                            scales=[(1333, s) for s in range(480, 801, 32)],
                            keep_ratio=True)
                    ]]),
    dict(type='PackDetInputs')
]
train_dataloader = dict(
    batch_size=8,
    sampler=dict(
        _delete_=True,
        type='mmitpn.SeededSampler',
        sampler=dict(type='DefaultSampler', shuffle=True)),
    dataset=dict(pipeline=train_pipeline))
