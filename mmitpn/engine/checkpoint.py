"""Crash-safe checkpoint files."""
import glob
import os
import os.path as osp
import pickle
import zipfile
from typing import Optional

from mmengine.fileio import io as _io
from mmengine.fileio import register_backend
from mmengine.fileio.backends import LocalBackend
from mmengine.runner import checkpoint as _mmengine_checkpoint


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

    Args:
        work_dir (str): The run's work directory.

    Returns:
        str | None: A path, or None when there is nothing to resume.
    """
    pointer = osp.join(work_dir, 'last_checkpoint')
    if osp.isfile(pointer):
        with open(pointer) as f:
            named = f.read().strip()
        if named and is_complete_checkpoint(named):
            return named
    candidates = sorted(
        glob.glob(osp.join(work_dir, '*.pth')),
        key=osp.getmtime,
        reverse=True)
    return next((c for c in candidates if is_complete_checkpoint(c)), None)
