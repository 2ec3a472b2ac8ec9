from .checked_load_hook import CheckedLoadHook
from .ema_teacher_hook import EMATeacherHook
from .iter_seed_hook import IterSeedHook

__all__ = ['CheckedLoadHook', 'EMATeacherHook', 'IterSeedHook']
