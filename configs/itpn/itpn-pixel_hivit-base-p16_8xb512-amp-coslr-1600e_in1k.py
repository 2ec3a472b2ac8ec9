# iTPN-B pixel pre-training, 1600 epochs (IN-1K 85.5; the pre-training of
# the iTPN-B pixel COCO and ADE20K rows, CVPR 2023 Table 2 "Eps."): the
# 400-epoch recipe, longer (the cosine follows max_epochs).
_base_ = './itpn-pixel_hivit-base-p16_8xb512-amp-coslr-400e_in1k.py'
train_cfg = dict(max_epochs=1600)
