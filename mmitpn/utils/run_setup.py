"""What a command line does to a config before the runner exists, shared
by ``tools/train.py``, ``tools/test.py`` and :mod:`mmitpn.experiments`."""
import logging
import os.path as osp
from typing import Optional

from mmengine.logging import print_log

from .config_checks import check_config, check_dataloaders, fix_dataloaders
from .safe_load import use_weights_only_load


def set_work_dir(cfg, config: str, work_dir: Optional[str] = None) -> None:
    """``work_dir`` priority: given > the config's > ``./work_dirs/<config
    stem>``.

    Args:
        cfg (mmengine.Config): The config, edited in place.
        config (str): The config file (for the default name).
        work_dir (str, optional): The command line's ``--work-dir``.
    """
    if work_dir is not None:
        cfg.work_dir = str(work_dir)
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(str(config)))[0])


def _log(notes) -> None:
    for note in notes:
        print_log(note, logger='current', level=logging.WARNING)


def prepare_train(cfg,
                  resume: Optional[str] = None,
                  allow_unsafe: bool = False) -> None:
    """The edits and checks of a training command line.

    - ``resume``: ``'auto'`` resumes from the newest complete checkpoint of
      the work dir (picked by :class:`mmitpn.engine.hooks.
      WeightsOnlyLoadHook`), a path from that file; either adds the hook
      to configs that lack it (MMEngine's checkpoints need its allow-list);
    - ``allow_unsafe``: the per-run opt-in for trusted legacy files;
    - what a user changes first (a shorter schedule, zero workers): fixed
      where it has one meaning, else one line naming the value and the fix
      (:func:`mmitpn.utils.config_checks.check_config`);
    - an annotation file that leaves a data set empty fails here, before
      the host fails while building it (the config's ``DataCheckHook``
      checks again at ``before_run`` for every other door).

    Args:
        cfg (mmengine.Config): The config, edited in place.
        resume (str, optional): None, ``'auto'`` or a checkpoint path.
        allow_unsafe (bool): ``--allow-unsafe-load``. Defaults to False.
    """
    from mmitpn.datasets import check_dataset_files
    if resume is not None:
        cfg.resume = True
        cfg.load_from = None if resume == 'auto' else resume
    if resume is not None or allow_unsafe:
        use_weights_only_load(cfg, allow_unsafe=allow_unsafe)
    _log(check_config(cfg))
    check_dataset_files(cfg)


def prepare_test(cfg, checkpoint: str, allow_unsafe: bool = False) -> None:
    """The edits and checks of a test command line: the checkpoint loads
    through :class:`mmitpn.engine.hooks.WeightsOnlyLoadHook` (added when
    the config lacks it), and zero workers with persistent ones or bad
    batch sizes are fixed or end in one line.

    Args:
        cfg (mmengine.Config): The config, edited in place.
        checkpoint (str): The checkpoint to test.
        allow_unsafe (bool): ``--allow-unsafe-load``. Defaults to False.
    """
    cfg.load_from = str(checkpoint)
    _log(fix_dataloaders(cfg))
    check_dataloaders(cfg)
    use_weights_only_load(cfg, allow_unsafe=allow_unsafe)
