# The official iTPN COCO 3x schedule: 36 epochs, steps at epochs 27 and 33
# (optimiser as ./itpn_det_adamw.py; the 3x configs set their lr).
_base_ = './itpn_det_adamw.py'
train_cfg = dict(max_epochs=36)
param_scheduler = [
    dict(
        type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
        end=500),
    dict(
        type='MultiStepLR',
        begin=0,
        end=36,
        by_epoch=True,
        milestones=[27, 33],
        gamma=0.1)
]
