"""Checks of what a user changes first in a config, with one-line errors.

A shorter schedule, less data or zero data-loader workers end, unchecked,
deep inside MMEngine or torch: ``ValueError: end should be larger than
begin`` from a scheduler, ``persistent_workers option needs num_workers >
0`` from the DataLoader. These functions take the config (and, once the
dataloader exists, its length), fix what has one meaning, and raise one
line naming the value and the fix for the rest:

- :func:`check_schedule`: every parameter scheduler against the training
  length (``end`` defaults as MMEngine's runner sets it; epoch-based ones
  converted to iterations with the epoch length when it is known); returns
  warnings for schedules that run but not as the recipe meant;
- :func:`fix_dataloaders`: ``persistent_workers`` / ``prefetch_factor``
  with ``num_workers=0`` are switched off (what the user means);
- :func:`check_dataloaders`: the values no fix can guess;
- :func:`check_config`: all of them.

The tools call them before the runner is built (the dataloaders are built
before any hook runs).
"""
from typing import List, Optional

INF = float('inf')


class ConfigCheckError(ValueError):
    """A config value that cannot run, with its fix (one line)."""


def _schedulers(cfg) -> list:
    scheds = cfg.get('param_scheduler')
    if scheds is None:
        return []
    if isinstance(scheds, dict):
        # a dict of lists (one per optimizer) or one scheduler
        if 'type' in scheds:
            return [('param_scheduler', scheds)]
        return [(f'param_scheduler.{k}[{i}]', s)
                for k, v in scheds.items() for i, s in enumerate(v)]
    return [(f'param_scheduler[{i}]', s) for i, s in enumerate(scheds)]


def _train_length(cfg):
    """``(by_epoch, length)`` of the training loop: epochs or iterations
    (None when the config has no training loop)."""
    train_cfg = cfg.get('train_cfg') or {}
    loop = str(train_cfg.get('type', ''))
    if 'max_epochs' in train_cfg or 'EpochBased' in loop:
        return True, train_cfg.get('max_epochs')
    if 'max_iters' in train_cfg or 'IterBased' in loop:
        return False, train_cfg.get('max_iters')
    return None, None


def check_schedule(cfg, epoch_length: Optional[int] = None) -> List[str]:
    """Check the parameter schedulers against the training length.

    ``end`` of a scheduler without one is the training length (in its own
    unit), as MMEngine's runner sets it. A scheduler whose ``end`` is not
    after its ``begin`` fails in MMEngine (``end should be larger than
    begin``); one that converts epochs to iterations fails the same way
    when an epoch has no iteration. Those raise here, naming the scheduler,
    its bounds and the shortest training that runs it.

    Args:
        cfg (mmengine.Config | dict): The config.
        epoch_length (int, optional): Iterations per epoch (the length of
            the training dataloader), when known.

    Returns:
        list[str]: Warnings: schedules that start after the training ends
        (they never run), end after it (their decay is cut) or before it
        (the last value stays), validation that never runs.

    Raises:
        ConfigCheckError: A scheduler that MMEngine would refuse.
    """
    by_epoch_loop, length = _train_length(cfg)
    if length is None:
        return []
    unit = 'epoch' if by_epoch_loop else 'iteration'
    length_key = 'train_cfg.max_epochs' if by_epoch_loop else \
        'train_cfg.max_iters'
    if epoch_length is not None and by_epoch_loop and epoch_length < 1:
        raise ConfigCheckError(
            f'The training dataloader gives 0 iterations per epoch (fewer '
            f'samples than train_dataloader.batch_size with drop_last, or '
            f'an empty dataset), so no scheduler and no epoch can run; use '
            f'a smaller batch_size or drop_last=False.')
    warnings = []
    for name, s in _schedulers(cfg):
        kind = s.get('type', 'scheduler')
        s_by_epoch = s.get('by_epoch', True)
        begin = s.get('begin', 0)
        # the runner's default end: the training length in the
        # scheduler's own unit (MMEngine Runner.build_param_scheduler)
        default_end = length if s_by_epoch == by_epoch_loop else None
        if s_by_epoch and not by_epoch_loop:
            default_end = None  # epochs in an iteration loop: unknown
        end = s.get('end', default_end)
        s_unit = 'epoch' if s_by_epoch else 'iteration'
        if end is None or end == INF:
            continue
        if end <= begin:
            path = name.replace('[', '.').rstrip(']')
            if 'end' not in s:
                cause = (f'ends where training ends, at {s_unit} {end} '
                         f'({length_key}={length})')
                fix = (f'set {length_key} to at least {begin + 1}, or start '
                       f'it earlier (--cfg-options {path}.begin=...)')
            else:
                cause = f'ends at {s_unit} {end}'
                fix = (f'give it an end after its begin (--cfg-options '
                       f'{path}.end=...)')
            raise ConfigCheckError(
                f'{name} ({kind}) begins at {s_unit} {begin} but {cause}, '
                f'so MMEngine refuses it ("end should be larger than '
                f'begin"); {fix}.')
        if s_by_epoch and s.get('convert_to_iter_based') and \
                epoch_length is not None and \
                int(end * epoch_length) <= int(begin * epoch_length):
            raise ConfigCheckError(
                f'{name} ({kind}) spans epochs {begin}-{end}, which is '
                f'{int(begin * epoch_length)}-{int(end * epoch_length)} in '
                f'iterations at {epoch_length} iterations per epoch: no '
                f'iteration; give it whole epochs or more data.')
        if s_by_epoch == by_epoch_loop:
            if begin >= length:
                warnings.append(
                    f'{name} ({kind}) begins at {s_unit} {begin}, at or '
                    f'after the last one ({length_key}={length}): it never '
                    f'runs.')
            elif end > length:
                warnings.append(
                    f'{name} ({kind}) runs to {s_unit} {end} but training '
                    f'stops at {length} ({length_key}): the recipe\'s '
                    f'schedule is cut; set its end (and milestones) to '
                    f'{length} for the whole schedule in a shorter run.')
            elif 'end' in s and end < length and \
                    name == _schedulers(cfg)[-1][0]:
                warnings.append(
                    f'{name} ({kind}) ends at {s_unit} {end} but training '
                    f'runs to {length} ({length_key}): the lr stays at its '
                    f'last value for {length - end} {s_unit}s; set its end '
                    f'(and milestones) for the new length.')
            milestones = s.get('milestones') or []
            late = [m for m in milestones if m >= length]
            if late and end <= length:
                warnings.append(
                    f'{name} ({kind}) milestones {late} are at or after '
                    f'the last {s_unit} ({length}): those steps never '
                    f'happen.')
    train_cfg = cfg.get('train_cfg') or {}
    val_interval = train_cfg.get('val_interval')
    val_begin = train_cfg.get('val_begin', 1)
    if cfg.get('val_dataloader') and isinstance(val_interval, int) and \
            max(val_interval, val_begin) > length:
        warnings.append(
            f'train_cfg.val_interval={val_interval} is longer than the '
            f'training ({length_key}={length}): no validation runs; set '
            f'train_cfg.val_interval<={length}.')
    return warnings


LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def fix_dataloaders(cfg) -> List[str]:
    """Switch off what ``num_workers=0`` cannot have, in place.

    torch's DataLoader refuses ``persistent_workers=True`` and a
    ``prefetch_factor`` without worker processes; the shipped configs set
    ``persistent_workers=True``, so a run with ``num_workers=0`` (e.g. to
    debug the pipeline) fails unless both go.

    Args:
        cfg (mmengine.Config | dict): The config, changed in place.

    Returns:
        list[str]: What was changed, one line each.
    """
    notes = []
    for key in LOADERS:
        loader = cfg.get(key)
        if not isinstance(loader, dict):
            continue
        if loader.get('num_workers', 0) == 0:
            if loader.get('persistent_workers'):
                loader['persistent_workers'] = False
                notes.append(f'{key}.num_workers=0: persistent_workers set '
                             f'to False (it needs worker processes).')
            if loader.get('prefetch_factor') is not None:
                loader.pop('prefetch_factor')
                notes.append(f'{key}.num_workers=0: prefetch_factor '
                             f'dropped (it needs worker processes).')
    return notes


def check_dataloaders(cfg) -> None:
    """Check the data-loader values no fix can guess.

    Args:
        cfg (mmengine.Config | dict): The config.

    Raises:
        ConfigCheckError: ``num_workers`` not a whole number >= 0,
            ``batch_size`` not a whole number >= 1, or
            ``persistent_workers`` / ``prefetch_factor`` with
            ``num_workers=0`` (see :func:`fix_dataloaders`).
    """
    for key in LOADERS:
        loader = cfg.get(key)
        if not isinstance(loader, dict):
            continue
        workers = loader.get('num_workers', 0)
        if not isinstance(workers, int) or isinstance(workers, bool) or \
                workers < 0:
            raise ConfigCheckError(
                f'{key}.num_workers={workers!r}: give a whole number >= 0 '
                f'(0 loads in the main process).')
        batch = loader.get('batch_size', 1)
        if not isinstance(batch, int) or isinstance(batch, bool) or \
                batch < 1:
            raise ConfigCheckError(
                f'{key}.batch_size={batch!r}: give a whole number >= 1 '
                f'(images per GPU).')
        if workers == 0 and loader.get('persistent_workers'):
            raise ConfigCheckError(
                f'{key}.persistent_workers=True needs worker processes but '
                f'{key}.num_workers=0; set {key}.persistent_workers=False.')
        if workers == 0 and loader.get('prefetch_factor') is not None:
            raise ConfigCheckError(
                f'{key}.prefetch_factor needs worker processes but '
                f'{key}.num_workers=0; remove prefetch_factor.')


def check_config(cfg,
                 epoch_length: Optional[int] = None,
                 fix: bool = True) -> List[str]:
    """:func:`fix_dataloaders` (when ``fix``), :func:`check_dataloaders`
    and :func:`check_schedule`.

    Args:
        cfg (mmengine.Config | dict): The config (changed in place when
            ``fix``).
        epoch_length (int, optional): Iterations per epoch, when known.
        fix (bool): Apply :func:`fix_dataloaders`. Defaults to True.

    Returns:
        list[str]: The fixes made and the schedule warnings.

    Raises:
        ConfigCheckError: What cannot run.
    """
    notes = fix_dataloaders(cfg) if fix else []
    check_dataloaders(cfg)
    return notes + check_schedule(cfg, epoch_length)


__all__ = [
    'ConfigCheckError', 'check_config', 'check_dataloaders',
    'check_schedule', 'fix_dataloaders'
]
