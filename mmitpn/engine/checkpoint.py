"""Checkpoint files: crash-safe writes, checked loads, resumable picks."""
import functools
import glob
import logging
import os
import os.path as osp
import pickle
import re
import warnings
import zipfile
from typing import Optional, Tuple

from mmengine.dist import is_main_process
from mmengine.fileio import io as _io
from mmengine.fileio import register_backend
from mmengine.fileio.backends import LocalBackend
from mmengine.logging import print_log
from mmengine.runner import checkpoint as _mmengine_checkpoint


def allow_full_checkpoint_load() -> bool:
    """Let ``torch.load`` read the checkpoints that MMEngine writes.

    Since PyTorch 2.6 ``torch.load`` defaults to ``weights_only=True``, and
    MMEngine 0.10 does not pass ``weights_only``, so resuming or testing a
    checkpoint saved by the runner fails on its ``message_hub``
    (``HistoryBuffer`` and numpy objects). This sets
    ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` (which only affects calls that do
    not pass ``weights_only``) and silences the warning torch gives for it.
    Only load checkpoints you trust: they are unpickled in full. Nothing is
    done when the user set ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD`` or
    ``TORCH_FORCE_WEIGHTS_ONLY_LOAD``.

    Returns:
        bool: Whether the variable was set.
    """
    if 'TORCH_FORCE_WEIGHTS_ONLY_LOAD' in os.environ or \
            'TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD' in os.environ:
        return False
    os.environ['TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD'] = '1'
    warnings.filterwarnings(
        'ignore', message='Environment variable TORCH_FORCE_NO_WEIGHTS_ONLY')
    return True


def _atomic_write(data, filepath: str, mode: str, **kwargs) -> None:
    os.makedirs(osp.dirname(osp.abspath(filepath)), exist_ok=True)
    tmp = f'{filepath}.tmp-{os.getpid()}'
    try:
        with open(tmp, mode, **kwargs) as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, filepath)
    finally:
        if osp.exists(tmp):
            os.remove(tmp)


class AtomicLocalBackend(LocalBackend):
    """MMEngine's local file backend, writing through a temporary file that
    is renamed into place, so a process killed while saving a checkpoint
    leaves the previous files intact and never a truncated ``.pth``."""

    def put(self, obj: bytes, filepath) -> None:
        """Write bytes to ``filepath`` atomically.

        Args:
            obj (bytes): Data to write.
            filepath (str | Path): Destination.
        """
        _atomic_write(obj, str(filepath), 'wb')

    def put_text(self, obj: str, filepath, encoding: str = 'utf-8') -> None:
        """Write text to ``filepath`` atomically.

        Args:
            obj (str): Text to write.
            filepath (str | Path): Destination.
            encoding (str): Text encoding. Defaults to 'utf-8'.
        """
        _atomic_write(obj, str(filepath), 'w', encoding=encoding)


def use_atomic_checkpoints() -> None:
    """Make MMEngine's local backend (checkpoints, dumps) write atomically.

    Called on ``import mmitpn``; forgets backend instances MMEngine cached
    before, so every later save goes through :class:`AtomicLocalBackend`.
    """
    register_backend('local', AtomicLocalBackend, force=True, prefixes='')
    for key, inst in list(_io.backend_instances.items()):
        if type(inst) is LocalBackend:
            del _io.backend_instances[key]


#: Temporary files of :class:`AtomicLocalBackend` (``<name>.tmp-<pid>``).
TMP_PATTERN = re.compile(r'\.tmp-\d+$')


def _deferring_removal(method):
    """Wrap a ``CheckpointHook`` method so that the files it removes are
    removed only after it returned, i.e. after the new checkpoint is
    complete and ``last_checkpoint`` names it."""

    @functools.wraps(method)
    def wrapper(self, runner, *args, **kwargs):
        backend = self.file_backend
        deferred = []
        for name in ('remove', 'rmtree'):
            setattr(backend, name,
                    functools.partial(
                        lambda fn, path: deferred.append((fn, path)),
                        getattr(type(backend), name).__get__(backend)))
        try:
            out = method(self, runner, *args, **kwargs)
        finally:
            for name in ('remove', 'rmtree'):
                backend.__dict__.pop(name, None)
        for fn, path in deferred:  # reached only when the save succeeded
            fn(path)
        return out

    wrapper.__mmitpn_deferred__ = True
    return wrapper


def remove_orphaned_tmp_files(*folders: str) -> list:
    """Remove the ``*.tmp-<pid>`` files that a killed process left in
    ``folders`` (not recursive).

    Args:
        *folders (str): Folders to clean; missing ones are skipped.

    Returns:
        list[str]: The removed paths.
    """
    removed = []
    for folder in dict.fromkeys(f for f in folders if f):
        if not osp.isdir(folder):
            continue
        for name in sorted(os.listdir(folder)):
            path = osp.join(folder, name)
            if TMP_PATTERN.search(name) and osp.isfile(path):
                os.remove(path)
                removed.append(path)
    return removed


def _cleaning_before_train(method):

    @functools.wraps(method)
    def wrapper(self, runner):
        method(self, runner)
        if is_main_process() and isinstance(self.file_backend,
                                            LocalBackend):
            removed = remove_orphaned_tmp_files(self.out_dir,
                                                runner.work_dir)
            if removed:
                print_log(f'Removed {len(removed)} partial checkpoint '
                          f'file(s) of an interrupted save: '
                          f'{", ".join(osp.basename(p) for p in removed)}',
                          logger='current', level=logging.WARNING)

    wrapper.__mmitpn_deferred__ = True
    return wrapper


def use_safe_checkpoint_rotation() -> None:
    """Make MMEngine's ``CheckpointHook`` crash-safe (called on
    ``import mmitpn``).

    MMEngine removes the oldest checkpoint (``max_keep_ckpts``) and the
    previous best one *before* it writes the new file: a process killed
    during the save is left with no checkpoint. After this call the
    removals of ``_save_checkpoint_with_step`` and
    ``_save_best_checkpoint`` happen after the new file is complete (it is
    written atomically, see :class:`AtomicLocalBackend`) and
    ``last_checkpoint`` names it; a save that fails removes nothing. At the
    start of training, the main process removes the orphaned
    ``*.tmp-<pid>`` files of an interrupted save from the checkpoint
    folder and the work directory. Calling it twice changes nothing.
    """
    from mmengine.hooks import CheckpointHook
    for name, wrap in (('_save_checkpoint_with_step', _deferring_removal),
                       ('_save_best_checkpoint', _deferring_removal),
                       ('before_train', _cleaning_before_train)):
        method = getattr(CheckpointHook, name)
        if not getattr(method, '__mmitpn_deferred__', False):
            setattr(CheckpointHook, name, wrap(method))


def load_from_local(filename: str, map_location=None):
    """MMEngine's local checkpoint loader with one-line errors naming the
    file and the fix.

    Used for every local ``load_from``, ``--resume`` and ``init_cfg``
    checkpoint once mmitpn is imported (see
    :func:`use_checked_checkpoint_loader`).

    Args:
        filename (str): Local checkpoint path.
        map_location (str, optional): Same as :func:`torch.load`.

    Raises:
        FileNotFoundError: ``filename`` is not a file.
        ValueError: The file is empty, truncated or not a checkpoint.
    """
    path = osp.expanduser(filename)
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'Checkpoint {filename!r} does not exist; fix the path '
            f'(load_from, --resume or init_cfg.checkpoint) or drop it to '
            f'start from scratch.')
    try:
        return _mmengine_checkpoint.load_from_local(path, map_location)
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError,
            pickle.UnpicklingError) as e:
        if 'Weights only load failed' in str(e):
            raise  # a complete file that weights_only refuses
        cause = ' '.join(f'{type(e).__name__}: {e}'.split())
        if len(cause) > 120:
            cause = cause[:117] + '...'
        raise ValueError(
            f'Checkpoint {filename!r} ({osp.getsize(path)} bytes) is '
            f'truncated or not a PyTorch checkpoint ({cause}); delete it '
            f'and resume from an earlier one (tools/train.py CONFIG --resume '
            f'picks the newest complete checkpoint).') from e


def use_checked_checkpoint_loader() -> None:
    """Make MMEngine load local checkpoints with
    :func:`load_from_local` (called on ``import mmitpn``)."""
    _mmengine_checkpoint.CheckpointLoader.register_scheme(
        prefixes='', loader=load_from_local, force=True)


def is_complete_checkpoint(path: str) -> bool:
    """Whether ``path`` is a whole ``torch.save`` file (zip format with its
    central directory, which is written last).

    Args:
        path (str): Checkpoint path.
    """
    if not osp.isfile(path):
        return False
    try:
        with zipfile.ZipFile(path) as zf:
            return len(zf.namelist()) > 0
    except (zipfile.BadZipFile, OSError):
        return False


def find_resumable_checkpoint(work_dir: str) -> Optional[str]:
    """The checkpoint an automatic ``--resume`` should use.

    The one named by ``last_checkpoint`` when it is complete; otherwise the
    newest complete ``*.pth`` of ``work_dir`` (a crash can leave
    ``last_checkpoint`` empty or pointing to a file that was deleted).
    Every truncated checkpoint passed over, and a ``last_checkpoint`` that
    names a missing file, is reported at WARNING with its name.

    Args:
        work_dir (str): The run's work directory.

    Returns:
        str | None: A path, or None when there is nothing to resume.
    """
    pointer = osp.join(work_dir, 'last_checkpoint')
    named = None
    if osp.isfile(pointer):
        with open(pointer) as f:
            named = f.read().strip() or None
        if named and is_complete_checkpoint(named):
            return named
    candidates = sorted(
        glob.glob(osp.join(work_dir, '*.pth')),
        key=osp.getmtime,
        reverse=True)
    found = next((c for c in candidates if is_complete_checkpoint(c)), None)
    skipped = [c for c in candidates[:candidates.index(found) if found
                                     else None]]
    if named and named not in skipped:
        what = 'is truncated' if osp.exists(named) else 'does not exist'
        print_log(f'--resume: last_checkpoint names {named}, which {what}; '
                  f'it is skipped.', logger='current',
                  level=logging.WARNING)
    for path in skipped:
        print_log(f'--resume: skipping the truncated checkpoint {path} '
                  f'({osp.getsize(path)} bytes, written by an interrupted '
                  f'save); delete it.', logger='current',
                  level=logging.WARNING)
    if found is not None and (named or skipped):
        print_log(f'--resume: resuming from {found}.', logger='current',
                  level=logging.WARNING)
    return found


def _group(keys) -> str:
    """``roi_head (120), rpn_head (4)``: keys counted by their first
    component."""
    counts: dict = {}
    for k in keys:
        head = k.split('.')[0]
        counts[head] = counts.get(head, 0) + 1
    parts = [f'{h} ({n})' for h, n in sorted(
        counts.items(), key=lambda kv: -kv[1])]
    return ', '.join(parts[:4]) + (' ...' if len(parts) > 4 else '')


def check_model_checkpoint(model,
                           checkpoint: dict,
                           filename: str = 'the checkpoint',
                           allow_partial: bool = False) -> Tuple[int, int]:
    """Check that a checkpoint fills a whole model, before it loads.

    ``tools/test.py`` runs it on the checkpoint it is given: metrics of a
    model whose heads (or backbone) kept their random initialisation are
    meaningless (e.g. a pre-training, backbone-only or UPerNet checkpoint
    given to a Mask R-CNN config report ``bbox_mAP 0.000``, exit 0).

    Args:
        model (nn.Module): The model (unwrapped).
        checkpoint (dict): As loaded; its ``state_dict`` (or the dict
            itself) is compared, with a leading ``module.`` removed as
            MMEngine's loader does.
        filename (str): The file, for the message.
        allow_partial (bool): Log the missing and unexpected keys at
            WARNING instead of stopping. Defaults to False.

    Returns:
        tuple[int, int]: Numbers of missing and unexpected keys.

    Raises:
        ValueError: Keys are missing or unexpected and not
            ``allow_partial``: one line with the counts, the modules
            concerned and the fix.
    """
    state_dict = checkpoint.get('state_dict', checkpoint)
    ckpt_keys = {re.sub(r'^module\.', '', k) for k in state_dict}
    own = model.state_dict()
    missing = [k for k in own if k not in ckpt_keys]
    unexpected = sorted(k for k in ckpt_keys if k not in own)
    if not missing and not unexpected:
        return 0, 0
    name = type(model).__name__
    what = (f'{filename!r} fills {len(own) - len(missing)} of {len(own)} '
            f'tensors of {name}: {len(missing)} missing '
            f'({_group(missing) or "none"}), {len(unexpected)} unexpected '
            f'({_group(unexpected) or "none"})')
    if not allow_partial:
        raise ValueError(
            f'{what}; it is not a checkpoint of this config (e.g. a '
            f'pre-training, backbone-only or other-model file): test a '
            f'checkpoint trained with this config, or pass --allow-partial '
            f'to report metrics anyway.')
    print_log(f'--allow-partial: {what}; the missing tensors keep their '
              f'initialisation:\n' + '\n'.join(
                  [f'  missing     {k}' for k in missing] +
                  [f'  unexpected  {k}' for k in unexpected]),
              logger='current', level=logging.WARNING)
    return len(missing), len(unexpected)
