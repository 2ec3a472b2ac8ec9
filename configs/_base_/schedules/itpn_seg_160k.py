# mmseg's 160k-iteration schedule; mmseg keeps its default hooks in the
# schedule files, so the registered parts of mmitpn's guarantees are added
# here (see configs/_base_/default_runtime_mmdet.py).
_base_ = 'mmseg::_base_/schedules/schedule_160k.py'
default_hooks = dict(
    checkpoint=dict(type='mmitpn.CrashSafeCheckpointHook'),
    weights_only_load=dict(type='mmitpn.WeightsOnlyLoadHook'),
    iter_seed=dict(type='mmitpn.IterSeedHook'),
    data_check=dict(type='mmitpn.DataCheckHook'),
    frozen_params=dict(type='mmitpn.FrozenParamSummaryHook'))
