# The integral demo's pre-training (tools/demo.py): the quick-start config
# itpn-tiny_pixel-mfm_1xb32-20e_demo.py for 200 epochs (3200 iterations,
# about 10 minutes on a 2-core CPU). With 20 epochs the demo's detector is
# no better than one trained from scratch; with 200 it clearly is (README,
# demo section).
_base_ = './itpn-tiny_pixel-mfm_1xb32-20e_demo.py'

max_epochs = 200
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=1e-3,
        by_epoch=True,
        begin=0,
        end=1,
        convert_to_iter_based=True),
    dict(
        type='CosineAnnealingLR',
        T_max=max_epochs - 1,
        eta_min=1e-5,
        by_epoch=True,
        begin=1,
        end=max_epochs,
        convert_to_iter_based=True)
]
train_cfg = dict(max_epochs=max_epochs)
default_hooks = dict(
    logger=dict(interval=16), checkpoint=dict(interval=20))
