"""Hook driving the moving-average teacher of iTPN's MFM."""
import math
from contextlib import nullcontext
from typing import Optional

import torch
from mmengine.dist import all_reduce, is_distributed
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmitpn.registry import HOOKS

try:
    from torch.distributed.fsdp import FullyShardedDataParallel
except ImportError:  # torch built without distributed support
    FullyShardedDataParallel = None


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
    weights, so the teachers stay identical across ranks; whether a loss is
    finite is agreed between the ranks, so they skip or stop together.

    Under FSDP (:class:`~torch.distributed.fsdp.FullyShardedDataParallel`,
    e.g. ``tools/train.py --strategy fsdp``) the teacher must be an ignored
    module of the wrapper (``ignored_modules=['teacher']``, which
    :func:`mmitpn.utils.setup_fsdp` sets): every rank keeps the
    whole teacher, and the hook updates it inside
    ``FullyShardedDataParallel.summon_full_params`` (no write-back), i.e.
    from the gathered, unsharded student.

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

    @staticmethod
    def _is_fsdp(runner) -> bool:
        return FullyShardedDataParallel is not None and isinstance(
            runner.model, FullyShardedDataParallel)

    def _full_student(self, runner):
        """Context in which ``model.backbone`` holds its full parameters.

        Args:
            runner (Runner): The runner; under FSDP every rank must enter.

        Returns:
            ContextManager: ``summon_full_params`` (read-only) of the FSDP
            model, else a context that does nothing.
        """
        if self._is_fsdp(runner):
            return FullyShardedDataParallel.summon_full_params(
                runner.model, writeback=False)
        return nullcontext()

    def _check_teacher_unsharded(self, runner, model) -> None:
        """Raise if FSDP sharded the teacher (it must be ignored by FSDP).

        A sharded teacher's parameters, outside ``summon_full_params``,
        differ in shape from the full student's inside it.

        Args:
            runner (Runner): The runner; every rank must call this.
            model (nn.Module): The unwrapped model.
        """
        teacher = {
            name: tuple(param.shape)
            for name, param in model.teacher.module.named_parameters()
        }
        with self._full_student(runner):
            student = {
                name: tuple(param.shape)
                for name, param in model.backbone.named_parameters()
            }
        for name, shape in teacher.items():
            if student.get(name, shape) != shape:
                raise RuntimeError(
                    f'EMATeacherHook: FSDP sharded the teacher ({name}: '
                    f'{shape} vs {student[name]}); add '
                    "ignored_modules=['teacher'] to the FSDP model_wrapper "
                    '(as `tools/train.py --strategy fsdp` does).')

    def before_train(self, runner) -> None:
        model = self._unwrap(runner)
        # CosineEMA reads the schedule length from the message hub
        runner.message_hub.update_info('max_iters', runner.max_iters)
        if self._is_fsdp(runner):
            self._check_teacher_unsharded(runner, model)
        if int(model.teacher.steps) == 0:
            with self._full_student(runner):
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
            finite = math.isfinite(loss)
            if is_distributed():  # skip or stop on every rank together
                flag = torch.tensor([float(finite)])
                all_reduce(flag, op='min')
                finite = bool(flag.item())
            if not finite:
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
            with self._full_student(runner):
                model.teacher.update_parameters(model.backbone)
