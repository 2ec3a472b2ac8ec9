"""Hook driving the moving-average teacher of iTPN's MFM."""
import math
from typing import Optional

import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmitpn.registry import HOOKS


@HOOKS.register_module()
class EMATeacherHook(Hook):
    """Update a model's moving-average teacher after every iteration.

    The model (after unwrapping DDP / FSDP / DeepSpeed wrappers) must have a
    ``teacher`` (an mmengine ``BaseAveragedModel`` such as mmpretrain's
    ``CosineEMA``) and a ``backbone`` (the student it averages). The
    averaging itself is mmengine's; this hook only decides when:

    - ``before_train``: a teacher that was never updated (``steps == 0``)
      becomes a copy of the student, so it starts from the student's
      (possibly pre-trained) weights; a resumed teacher is left as loaded
      (it lives in the model's state dict, so checkpoints carry it and its
      step counter, which also drives the momentum schedule);
    - ``after_train_iter``: one EMA step from the student, unless the loss
      of the iteration is not finite, in which case training stops with
      the loss terms and the teacher keeps its last good weights.

    Every rank applies the same update to the same (synchronised) student
    weights, so the teachers stay identical across ranks.

    Args:
        interval (int): Update every ``interval`` iterations (the averaged
            model's own ``interval`` also applies). Defaults to 1.
        stop_on_nonfinite (bool): Raise on a non-finite loss instead of
            skipping the update silently. Defaults to True.
    """
    priority = 'ABOVE_NORMAL'  # before checkpointing (NORMAL / VERY_LOW)

    def __init__(self, interval: int = 1,
                 stop_on_nonfinite: bool = True) -> None:
        if interval < 1:
            raise ValueError(f'interval must be >= 1, got {interval}.')
        self.interval = interval
        self.stop_on_nonfinite = stop_on_nonfinite

    @staticmethod
    def _unwrap(runner):
        model = runner.model
        if is_model_wrapper(model):
            model = model.module
        if getattr(model, 'teacher', None) is None:
            raise RuntimeError(
                f'EMATeacherHook needs a model with a teacher, but '
                f'{type(model).__name__} has none (for ITPNMIM: set mfm_head '
                f'with a non-zero loss weight, or remove the hook).')
        return model

    def before_train(self, runner) -> None:
        model = self._unwrap(runner)
        # CosineEMA reads the schedule length from the message hub
        runner.message_hub.update_info('max_iters', runner.max_iters)
        if int(model.teacher.steps) == 0:
            model.teacher.update_parameters(model.backbone)
            runner.logger.info('EMATeacherHook: teacher initialised as a '
                               'copy of the student backbone.')
        else:
            runner.logger.info(f'EMATeacherHook: resuming the teacher at '
                               f'step {int(model.teacher.steps)}.')

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch=None,
                         outputs: Optional[dict] = None) -> None:
        model = self._unwrap(runner)
        if outputs is not None and 'loss' in outputs:
            loss = outputs['loss']
            loss = float(loss.detach()) if isinstance(loss,
                                                      torch.Tensor) else loss
            if not math.isfinite(loss):
                terms = ', '.join(
                    f'{k}={float(v):.4g}' for k, v in outputs.items()
                    if k.startswith('loss'))
                msg = (f'Non-finite loss at iteration {runner.iter + 1} '
                       f'({terms}); the EMA teacher was not updated. Resume '
                       f'from the last checkpoint with a lower lr or AMP '
                       f'off.')
                if self.stop_on_nonfinite:
                    raise FloatingPointError(msg)
                runner.logger.warning(msg)
                return
        if self.every_n_train_iters(runner, self.interval):
            model.teacher.update_parameters(model.backbone)
