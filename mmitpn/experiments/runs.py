"""Runs of a config in this process, as ``tools/train.py`` and
``tools/test.py`` run it.

The config runs as it is: ``Runner.from_cfg(cfg)``, or its ``runner_type``
through MMEngine's ``RUNNERS`` as the hosts' train scripts do, after the
edits a command line makes (work dir, ``--cfg-options``, ``--resume``, the
checkpoint to test, ``--show-dir``). Nothing of the process is swapped: not
``sys.argv``, not the working directory, not ``os.environ``; relative paths
of a config (data roots, checkpoints) are relative to the working
directory, as with the tools. Several runs in one process are kept apart
as MMEngine keeps runs apart: by their experiment's name (see
:func:`build_runner`).
"""
import argparse
import gc
import logging
import numbers
import os
from pathlib import Path
from typing import Optional, Sequence, Union

from mmengine.config import Config, DictAction

from mmitpn.utils.run_setup import prepare_test, prepare_train, set_work_dir

PathLike = Union[str, Path]
#: The configs of a checkout, beside the package.
CONFIGS_ROOT = Path(__file__).resolve().parents[2] / 'configs'


class StaleWorkDirError(RuntimeError):
    """A work dir holds an unfinished run of another config."""


def find_config(name: str, root: Optional[PathLike] = None) -> Path:
    """Path of a config by its file name.

    The demo configs live in ``configs/itpn/`` or in a folder per task; the
    file name is what identifies them. ``configs/itpn/`` wins a tie.

    Args:
        name (str): File name, e.g. ``'itpn-tiny_mask-rcnn_1xb4-6e_demo.py'``.
        root (str | Path, optional): Folder searched recursively. Defaults
            to :data:`CONFIGS_ROOT`.

    Returns:
        Path: The config file.
    """
    root = Path(root or CONFIGS_ROOT)
    hits = sorted(root.glob(f'**/{name}'),
                  key=lambda p: (p.parent.name != 'itpn', str(p)))
    if not hits:
        raise FileNotFoundError(f'No config named {name} under {root}; is '
                                f'the checkout complete?')
    return hits[0]


def parse_options(options: Sequence[str]) -> dict:
    """``KEY=VALUE`` strings as ``--cfg-options`` of the tools reads them
    (MMEngine's ``DictAction``: ``a=1`` is an int, ``a=[1,2]`` a list,
    ``a=None`` None).

    Args:
        options (Sequence[str]): ``KEY=VALUE`` strings.

    Returns:
        dict: ``{KEY: value}``, for ``Config.merge_from_dict``.
    """
    bad = [o for o in options if '=' not in o]
    if bad:
        raise ValueError(f'Config option {bad[0]!r}: expected KEY=VALUE '
                         f'(e.g. train_cfg.max_epochs=1).')
    namespace = argparse.Namespace()
    DictAction(option_strings=[], dest='options')(None, namespace,
                                                  list(options))
    return namespace.options


def load_config(config: PathLike,
                work_dir: Optional[PathLike] = None,
                options: Sequence[str] = ()) -> Config:
    """A config with a command line's edits, as ``tools/train.py`` makes
    them.

    Args:
        config (str | Path): The config file.
        work_dir (str | Path, optional): The run's work dir. None keeps the
            config's, else ``./work_dirs/<config name>``. Defaults to None.
        options (Sequence[str]): ``KEY=VALUE`` overrides, merged in order
            (see :func:`parse_options`). Defaults to ().

    Returns:
        Config: The config; its launcher is ``'none'`` (one process).
    """
    cfg = Config.fromfile(str(config))
    cfg.launcher = 'none'
    if options:
        cfg.merge_from_dict(parse_options(options))
    set_work_dir(cfg, str(config),
                 None if work_dir is None else str(work_dir))
    return cfg


def final_checkpoint(config: PathLike, options: Sequence[str] = ()) -> str:
    """File name of the checkpoint a training of ``config`` ends with.

    Args:
        config (str | Path): The config file.
        options (Sequence[str]): ``KEY=VALUE`` overrides (those that change
            the schedule matter). Defaults to ().

    Returns:
        str: ``epoch_<max_epochs>.pth`` or ``iter_<max_iters>.pth``.
    """
    train_cfg = load_config(config, options=options).train_cfg
    if 'max_epochs' in train_cfg:
        return f'epoch_{train_cfg.max_epochs}.pth'
    return f'iter_{train_cfg.max_iters}.pth'


def check_work_dir(work_dir: PathLike, config: PathLike) -> None:
    """Refuse a work dir that holds an unfinished run of another config
    (an earlier version of the demo, say): resuming it would continue that
    run under this config's schedule.

    Args:
        work_dir (str | Path): The run's work dir.
        config (str | Path): The config to train in it.

    Raises:
        StaleWorkDirError: ``work_dir`` has a ``last_checkpoint`` and the
            config dumps of its runs (``*.py``) are of other configs.
    """
    work_dir = Path(work_dir)
    if not (work_dir / 'last_checkpoint').exists():
        return
    dumps = sorted(p.name for p in work_dir.glob('*.py'))
    if dumps and Path(config).name not in dumps:
        raise StaleWorkDirError(
            f'{work_dir} holds a run of {", ".join(dumps)}, not of '
            f'{Path(config).name} (an earlier demo?); resuming it would mix '
            f'two schedules. Delete that folder (tools/demo.py --force does) '
            f'or pass another --work-dir.')


def build_runner(cfg: Config):
    """The runner of a config, as the hosts' train scripts build it.

    Registers the modules of the config's host first
    (:func:`mmitpn.utils.register_host_modules`). A fixed visualizer name
    (mmdet's and mmseg's runtimes name theirs ``'visualizer'``) is dropped,
    so the runner names it after its experiment, as it names its logger
    and message hub: MMEngine keeps one visualizer per name in a process,
    and a second run of the process would get the first run's (drawing
    and logging into the first run's folder).

    Args:
        cfg (Config): The config.

    Returns:
        mmengine.runner.Runner: ``Runner.from_cfg(cfg)``, or the config's
        ``runner_type`` built by ``RUNNERS``.
    """
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner

    from mmitpn.utils import register_host_modules
    register_host_modules(cfg)
    if isinstance(cfg.get('visualizer', None), dict):
        cfg.visualizer.pop('name', None)
    if 'runner_type' not in cfg:
        return Runner.from_cfg(cfg)
    return RUNNERS.build(cfg)


def _release(runner) -> None:
    """Close what a finished runner holds open in this process: its log
    files, and (once collected) its data-loader worker processes.

    Args:
        runner (mmengine.runner.Runner): The runner, not used afterwards.
    """
    for handler in list(runner.logger.handlers):
        if isinstance(handler, logging.FileHandler):
            handler.close()
            runner.logger.removeHandler(handler)


def train(config: PathLike,
          work_dir: PathLike,
          options: Sequence[str] = (),
          resume: bool = True) -> bool:
    """Train a config in this process (``tools/train.py CONFIG --work-dir
    WORK_DIR [--resume] --cfg-options OPTIONS``).

    Args:
        config (str | Path): The config file.
        work_dir (str | Path): The run's work dir.
        options (Sequence[str]): ``KEY=VALUE`` overrides. Defaults to ().
        resume (bool): Continue from the last checkpoint of ``work_dir``,
            if there is one (``--resume`` without a path). Defaults to
            True.

    Returns:
        bool: Whether it resumed an earlier run.
    """
    cfg = load_config(config, work_dir, options)
    resumed = resume and (Path(cfg.work_dir) / 'last_checkpoint').exists()
    # the edits and checks of tools/train.py (--resume: MMEngine's
    # automatic resume through the weights-only hook)
    prepare_train(cfg, 'auto' if resume else None)
    runner = build_runner(cfg)
    try:
        runner.train()
    finally:
        _release(runner)
        del runner
        gc.collect()
    return resumed


def test(config: PathLike,
         checkpoint: PathLike,
         work_dir: PathLike,
         options: Sequence[str] = (),
         show_dir: Optional[str] = None,
         allow_partial: bool = False) -> dict:
    """Test a checkpoint of a config in this process (``tools/test.py
    CONFIG CHECKPOINT --work-dir WORK_DIR [--show-dir D] --cfg-options
    OPTIONS``).

    Args:
        config (str | Path): The config file.
        checkpoint (str | Path): The checkpoint to test.
        work_dir (str | Path): The test's work dir (logs, metrics JSON).
        options (Sequence[str]): ``KEY=VALUE`` overrides. Defaults to ().
        show_dir (str, optional): Draw the predictions into this folder
            (the host's visualization hook; mmdet puts it under
            ``work_dir/<timestamp>/``). Defaults to None.
        allow_partial (bool): Accept a checkpoint that does not fill the
            model (:class:`mmitpn.engine.hooks.CheckedLoadHook`). Defaults
            to False.

    Returns:
        dict: The metrics of the test, numbers as Python floats.
    """
    from mmitpn.engine.hooks import CheckedLoadHook
    from mmitpn.utils import get_host_scope, trigger_visualization_hook
    cfg = load_config(config, work_dir, options)
    prepare_test(cfg, checkpoint)
    if show_dir:
        trigger_visualization_hook(cfg, get_host_scope(cfg),
                                   show_dir=show_dir)
    runner = build_runner(cfg)
    # a checkpoint that does not fill the model stops the test instead of
    # giving random metrics
    runner.register_hook(CheckedLoadHook(allow_partial=allow_partial))
    try:
        metrics = runner.test()
    finally:
        _release(runner)
        del runner
        gc.collect()
    return {k: float(v) if isinstance(v, numbers.Real) else v
            for k, v in metrics.items()}


def use_all_cores() -> int:
    """Give torch every core, unless ``OMP_NUM_THREADS`` says otherwise
    (the demo's data-loader workers only decode small images).

    Returns:
        int: torch's intra-op threads now.
    """
    import torch
    if 'OMP_NUM_THREADS' not in os.environ:
        torch.set_num_threads(os.cpu_count() or 1)
    return torch.get_num_threads()
