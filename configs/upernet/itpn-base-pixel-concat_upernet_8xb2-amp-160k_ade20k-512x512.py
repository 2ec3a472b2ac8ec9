# The official iTPN UPerNet variant: every pyramid level is concatenated
# with the backbone map of the same stride before UPerHead, so the head
# inputs are 256 + (128, 256, 512, 512) = (384, 512, 768, 768) channels
# (ITPNPyramid(concat_inputs=True).out_widths), and the head is 768 wide,
# as in the official config. Everything else as the default config.
_base_ = './itpn-base-pixel_upernet_8xb2-amp-160k_ade20k-512x512.py'
model = dict(
    neck=dict(concat_inputs=True),
    decode_head=dict(in_channels=[384, 512, 768, 768], channels=768),
    auxiliary_head=dict(in_channels=768))
