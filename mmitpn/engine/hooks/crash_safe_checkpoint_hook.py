"""Checkpoints that a crash at any moment cannot take away."""
import logging
import os.path as osp
from typing import Optional

from mmengine.dist import is_main_process
from mmengine.hooks import CheckpointHook
from mmengine.logging import print_log

from mmitpn.registry import HOOKS
from ..atomic_backend import (ATOMIC_BACKEND, AtomicLocalBackend,
                              remove_orphaned_tmp_files)

#: The methods of MMEngine's ``CheckpointHook`` this hook wraps; if an
#: MMEngine release renames them the hook refuses to build instead of
#: silently losing its guarantee.
_WRAPPED = ('_save_checkpoint_with_step', '_save_best_checkpoint')


@HOOKS.register_module()
class CrashSafeCheckpointHook(CheckpointHook):
    """MMEngine's ``CheckpointHook`` that never leaves a run without a
    complete checkpoint.

    MMEngine removes the oldest checkpoint (``max_keep_ckpts``) and the
    previous best one *before* it writes the new file, and writes in place:
    a process killed during the save is left with a truncated file and
    possibly no other one. With this hook, on a local ``out_dir``:

    - each checkpoint is written to ``<name>.tmp-<pid>``, ``fsync``-ed and
      renamed into place (:class:`~mmitpn.engine.atomic_backend.
      AtomicLocalBackend`, used by this hook's saves only);
    - old checkpoints are removed only after the new one is complete and
      ``last_checkpoint`` names it; a save that fails removes nothing;
    - at the start of training the main process removes the orphaned
      ``*.tmp-<pid>`` files of an interrupted save (logged at WARNING).

    The shipped configs name it in ``default_hooks.checkpoint``. A remote
    ``out_dir`` or explicit ``backend_args`` get MMEngine's behaviour.

    Args:
        *args: Positional arguments of ``CheckpointHook`` (``interval``).
        backend_args (dict, optional): As ``CheckpointHook``; None picks
            the atomic local backend for a local ``out_dir``.
        **kwargs: Keyword arguments of ``CheckpointHook``
            (``interval``, ``by_epoch``, ``max_keep_ckpts``,
            ``save_best``, ``out_dir``, ...).
    """

    def __init__(self, *args, backend_args: Optional[dict] = None,
                 **kwargs) -> None:
        missing = [n for n in _WRAPPED if not hasattr(CheckpointHook, n)]
        if missing:
            raise RuntimeError(
                f'CrashSafeCheckpointHook: this MMEngine\'s CheckpointHook '
                f'has no {", ".join(missing)}; use MMEngine 0.10.x or '
                f'default_hooks.checkpoint.type="CheckpointHook" (saves '
                f'are then not crash-safe).')
        out_dir = kwargs.get('out_dir')
        local = out_dir is None or '://' not in str(out_dir)
        if backend_args is None and local and \
                kwargs.get('file_client_args') is None:
            backend_args = dict(backend=ATOMIC_BACKEND)
        super().__init__(*args, backend_args=backend_args, **kwargs)

    @property
    def _atomic(self) -> bool:
        return isinstance(getattr(self, 'file_backend', None),
                          AtomicLocalBackend)

    def before_train(self, runner) -> None:
        """Set up as MMEngine does, then remove orphaned temporary files.

        Args:
            runner (Runner): The runner.
        """
        super().before_train(runner)
        if self._atomic and is_main_process():
            removed = remove_orphaned_tmp_files(self.out_dir,
                                                runner.work_dir)
            if removed:
                print_log(
                    f'Removed {len(removed)} partial checkpoint file(s) of '
                    f'an interrupted save: '
                    f'{", ".join(osp.basename(p) for p in removed)}',
                    logger='current', level=logging.WARNING)

    def _save_checkpoint_with_step(self, runner, step, meta):
        if not self._atomic:
            return super()._save_checkpoint_with_step(runner, step, meta)
        with self.file_backend.deferred_removals():
            return super()._save_checkpoint_with_step(runner, step, meta)

    def _save_best_checkpoint(self, runner, metrics) -> None:
        if not self._atomic:
            return super()._save_best_checkpoint(runner, metrics)
        with self.file_backend.deferred_removals():
            return super()._save_best_checkpoint(runner, metrics)
