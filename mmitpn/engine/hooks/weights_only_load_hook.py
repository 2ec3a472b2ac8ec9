"""Checkpoints the runner loads cannot run code."""
import contextlib
import logging
from typing import List

from mmengine.hooks import Hook
from mmengine.logging import print_log

from mmitpn.registry import HOOKS
from mmitpn.utils.safe_load import check_loadable, checkpoint_globals
from ..resume import find_resumable_checkpoint


def _local_checkpoints(node, found: List[str]) -> List[str]:
    """The local files named by ``checkpoint`` / ``pretrained`` keys of
    ``init_cfg`` dicts."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ('checkpoint', 'pretrained') and \
                    isinstance(value, str) and '://' not in value:
                found.append(value)
            else:
                _local_checkpoints(value, found)
    elif isinstance(node, (list, tuple)):
        for value in node:
            _local_checkpoints(value, found)
    return found


@HOOKS.register_module()
class WeightsOnlyLoadHook(Hook):
    """Load every checkpoint of a run with ``weights_only=True`` and
    mmitpn's allow-list, and resume from the newest complete checkpoint.

    MMEngine 0.10 calls ``torch.load`` without ``weights_only``, which
    PyTorch >= 2.6 turns into ``weights_only=True``: safe, but the
    checkpoints MMEngine itself writes (message hub, numpy scalars) are
    refused. From ``before_run`` until the loop starts (the span in which
    the runner initialises the weights, ``load_from`` and resumes), this
    hook allows exactly :data:`mmitpn.utils.safe_load.CHECKPOINT_GLOBALS`,
    and restores PyTorch's list afterwards. Before anything loads it checks
    each local file the run will read (``load_from`` / the resumed file,
    the ``init_cfg`` checkpoints of the model's modules): a missing, truncated or
    code-running file stops the run with one line naming the file and the
    fix.

    With ``resume=True`` and no ``load_from`` it resumes from
    :func:`~mmitpn.engine.resume.find_resumable_checkpoint` (the newest
    *complete* checkpoint, passing over truncated ones) instead of
    MMEngine's ``last_checkpoint`` pointer alone.

    Args:
        allow_unsafe_load (bool): The explicit, per-run opt-in for trusted
            legacy files: the globals they ask for beyond the allow-list
            are allowed for this run, logged at WARNING. Defaults to False.
    """

    priority = 'VERY_HIGH'

    def __init__(self, allow_unsafe_load: bool = False) -> None:
        self.allow_unsafe_load = allow_unsafe_load
        self._stack = None

    def _files(self, runner) -> List[str]:
        files = [runner._load_from] if runner._load_from else []
        # init_cfg checkpoints load in training only (Runner.train
        # initialises the weights, val / test do not)
        if runner._train_loop is not None and \
                not isinstance(runner._train_loop, dict):
            init_cfgs = [getattr(m, 'init_cfg', None)
                         for m in runner.model.modules()]
            files += _local_checkpoints([c for c in init_cfgs if c], [])
        return list(dict.fromkeys(files))

    def before_run(self, runner) -> None:
        """Pick the checkpoint to resume, check the files, open the
        allow-list.

        Args:
            runner (Runner): The runner.
        """
        if runner._resume and runner._load_from is None:
            runner._load_from = find_resumable_checkpoint(runner.work_dir)
            if runner._load_from is None:
                print_log(f'resume: no complete checkpoint in '
                          f'{runner.work_dir}; starting a new run.',
                          logger='current', level=logging.WARNING)
        extra: List[str] = []
        for path in self._files(runner):
            if runner._has_loaded and path == runner._load_from:
                continue
            extra += check_loadable(path, self.allow_unsafe_load)
        self._close()
        self._stack = contextlib.ExitStack()
        self._stack.enter_context(checkpoint_globals(sorted(set(extra))))

    def _close(self) -> None:
        if self._stack is not None:
            stack, self._stack = self._stack, None
            stack.close()

    def before_train(self, runner) -> None:
        """Close the allow-list: loading is over.

        Args:
            runner (Runner): The runner.
        """
        self._close()

    def before_val(self, runner) -> None:
        """Close the allow-list (``runner.val()``).

        Args:
            runner (Runner): The runner.
        """
        self._close()

    def before_test(self, runner) -> None:
        """Close the allow-list (``runner.test()``).

        Args:
            runner (Runner): The runner.
        """
        self._close()

    def after_run(self, runner) -> None:
        """Close the allow-list if a loop never started.

        Args:
            runner (Runner): The runner.
        """
        self._close()

