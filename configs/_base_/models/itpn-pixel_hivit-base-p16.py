# iTPN-B pixel pre-training, the official model (itpn_pixel/models/
# models_itpn_mim.py, itpn_base_dec512d8b): HiViT (3, 3, 24) + pyramid of
# depth 2, MAE-style random masking (75 %), pixel decoder 512 wide, 8 blocks,
# 16 heads, normalised-pixel loss. The position embedding is LEARNED,
# initialised with the 2-D sin-cos table; no rpe, no drop path; no MFM
# head (ITPNMIM's mfm_head=None).
model = dict(
    type='mmitpn.ITPNMIM',
    backbone=dict(
        type='mmitpn.HiViTBackbone',
        arch='itpn-base',
        img_size=224,
        drop_path_rate=0.,
        pos_embed_type='learnable',
        pos_embed_init='sincos',
        rpe_type=None),
    neck=dict(
        type='mmitpn.ITPNPyramid',
        in_channels=(128, 256, 512),
        out_channels=256,
        fpn_depth=2,
        num_outs=3),
    head=dict(
        type='mmitpn.ITPNPixelHead',
        fpn_channels=256,
        embed_dims=512,
        depth=8,
        num_heads=16,
        img_size=224,
        norm_pix=True),
    mask_ratio=0.75,
    data_preprocessor=dict(
        type='mmpretrain.SelfSupDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        to_rgb=True))
