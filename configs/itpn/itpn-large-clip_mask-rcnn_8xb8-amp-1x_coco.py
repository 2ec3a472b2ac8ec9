# Paper row: Mask R-CNN 1x, iTPN-L CLIP pre-training, 55.2 box / 48.2 mask
# AP. The official recipe of
# det/configs/itpn/clip_itpn_large_1x_ld095_dp020.py:
# iTPN-L (768 wide, 2 + 2 MLP and 40 attention blocks), drop path 0.2,
# lr 2e-4, layer decay 0.95 (official COCO rule, num_layers 44), 12 epochs,
# layer scale 0.1 on every backbone block, and ViTDet's decomposed relative
# positions (rel_pos_h / rel_pos_w per attention block, 2 * 14 - 1 long,
# interpolated to each input) instead of a Swin table: they are new (the
# CLIP pre-training has a Swin table, which is not loaded).
# The pre-training of this paper row (CVPR 2023, Table 2, "Eps."):
# iTPN-L CLIP-L, 300 epochs:
# configs/itpn/itpn-clip-l_hivit-large-p16_8xb256-amp-coslr-300e_in1k.py
_base_ = './itpn-base-pixel_mask-rcnn_8xb8-amp-1x_coco.py'
pretrained = 'checkpoints/itpn-large_clip_pretrain.pth'
model = dict(
    backbone=dict(
        arch='itpn-large',
        drop_path_rate=0.2,
        rpe_type='decomposed',
        layer_scale_init_value=0.1,
        layer_scale_stages=(0, 1, 2),
        # drop the CLIP checkpoint's Swin tables (official: strict=False)
        allow_partial_load=tuple(
            f'stages.2.{j}.attn.relative_position_bias_table'
            for j in range(40)),
        # activation checkpointing for 8 images per GPU: without it each
        # block keeps its decomposed position bias, 12 x 4200^2 fp16
        # values per 1344x800 image, for the backward pass (126 GiB for 8
        # images; configs/itpn/README.md, "Memory"). The official config
        # ran 2 images per GPU without it (use_checkpoint=False, :28;
        # samples_per_gpu=2 of det/configs/_base_/datasets/
        # coco_instance.py:32); the computation is the same.
        with_cp=True,
        init_cfg=dict(checkpoint=pretrained)),
    neck=dict(
        in_channels=(192, 384, 768),
        with_cp=True,
        init_cfg=dict(checkpoint=pretrained)))
optim_wrapper = dict(
    paramwise_cfg=dict(layer_decay_rate=0.95, num_layers=44))
