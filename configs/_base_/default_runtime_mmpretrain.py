# mmpretrain's default runtime plus the registered parts that give a run
# mmitpn's guarantees, whatever starts it (tools/train.py, mmpretrain's own
# train script, mim, Runner.from_cfg): weights-only checkpoint loading,
# crash-safe checkpoint rotation, per-iteration seeds (exact resume),
# dataset checks, one log line for frozen parameters. README: "What a
# config gets".
_base_ = 'mmpretrain::_base_/default_runtime.py'
default_hooks = dict(
    checkpoint=dict(type='mmitpn.CrashSafeCheckpointHook'),
    weights_only_load=dict(type='mmitpn.WeightsOnlyLoadHook'),
    iter_seed=dict(type='mmitpn.IterSeedHook'),
    data_check=dict(type='mmitpn.DataCheckHook'),
    frozen_params=dict(type='mmitpn.FrozenParamSummaryHook'))
