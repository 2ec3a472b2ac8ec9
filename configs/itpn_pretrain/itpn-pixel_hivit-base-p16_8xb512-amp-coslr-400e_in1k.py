# The official pixel-only iTPN-B (no MFM, no teacher): the golden-parity
# model, for comparison with the MFM configs.
_base_ = './itpn-pixel-mfm_hivit-base-p16_8xb512-amp-coslr-400e_in1k.py'
model = dict(mfm_head=None)
custom_hooks = []
