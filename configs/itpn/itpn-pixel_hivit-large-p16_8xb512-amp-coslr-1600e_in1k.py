# iTPN-L pixel pre-training, 1600 epochs (IN-1K 86.7; the pre-training of
# the iTPN-L pixel ADE20K row, 56.1, CVPR 2023 Table 2 "Eps.").
_base_ = './itpn-pixel_hivit-large-p16_8xb512-amp-coslr-400e_in1k.py'
train_cfg = dict(max_epochs=1600)
