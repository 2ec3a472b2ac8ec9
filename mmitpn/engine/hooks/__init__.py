from .checked_load_hook import CheckedLoadHook
from .crash_safe_checkpoint_hook import CrashSafeCheckpointHook
from .data_check_hook import DataCheckHook
from .ema_teacher_hook import EMATeacherHook
from .frozen_param_summary_hook import FrozenParamSummaryHook
from .iter_seed_hook import IterSeedHook
from .weights_only_load_hook import WeightsOnlyLoadHook

__all__ = [
    'CheckedLoadHook', 'CrashSafeCheckpointHook', 'DataCheckHook',
    'EMATeacherHook',
    'FrozenParamSummaryHook', 'IterSeedHook', 'WeightsOnlyLoadHook'
]
