_base_ = './itpn-pixel-mfm_hivit-base-p16_8xb512-amp-coslr-400e_in1k.py'
train_cfg = dict(max_epochs=1600)
