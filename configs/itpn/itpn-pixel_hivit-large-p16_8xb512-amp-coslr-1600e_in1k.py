# iTPN-L pixel pre-training, 1600 epochs (IN-1K 86.7).
_base_ = './itpn-pixel_hivit-large-p16_8xb512-amp-coslr-400e_in1k.py'
train_cfg = dict(max_epochs=1600)
