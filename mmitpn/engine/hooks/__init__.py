from .ema_teacher_hook import EMATeacherHook

__all__ = ['EMATeacherHook']
