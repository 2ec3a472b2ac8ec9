# The integral demo's pre-training (tools/demo.py): the quick-start config
# itpn-tiny_pixel-mfm_1xb32-20e_demo.py for 200 epochs (3200 iterations,
# about 10 minutes on a 2-core CPU). With 20 epochs the demo's detector is
# no better than one trained from scratch; with 200 it clearly is (README,
# demo section).
_base_ = './itpn-tiny_pixel-mfm_1xb32-20e_demo.py'

train_cfg = dict(max_epochs=200)
default_hooks = dict(
    logger=dict(interval=16), checkpoint=dict(interval=20))
