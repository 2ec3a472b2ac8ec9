"""A local file backend whose writes are all-or-nothing."""
import contextlib
import os
import os.path as osp
import re
from typing import Iterator, List

from mmengine.fileio import register_backend
from mmengine.fileio.backends import LocalBackend

#: The name :class:`AtomicLocalBackend` is registered under in MMEngine's
#: file backends (``backend_args=dict(backend=ATOMIC_BACKEND)``).
ATOMIC_BACKEND = 'mmitpn_atomic_local'

#: Temporary files of :class:`AtomicLocalBackend` (``<name>.tmp-<pid>``).
TMP_PATTERN = re.compile(r'\.tmp-\d+$')


def atomic_write(data, filepath: str, mode: str, **kwargs) -> None:
    """Write ``data`` to ``<filepath>.tmp-<pid>``, ``fsync`` it and rename
    it to ``filepath``: readers see the old file or the whole new one.

    Args:
        data (bytes | str): What to write.
        filepath (str): Destination.
        mode (str): ``'wb'`` or ``'w'``.
        **kwargs: Passed to :func:`open` (e.g. ``encoding``).
    """
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


@register_backend(ATOMIC_BACKEND)
class AtomicLocalBackend(LocalBackend):
    """MMEngine's local backend with atomic writes and removals that can be
    deferred.

    Only runs that ask for it by name use it
    (:class:`~mmitpn.engine.hooks.CrashSafeCheckpointHook` passes
    ``backend_args=dict(backend='mmitpn_atomic_local')`` to MMEngine's save);
    MMEngine's own ``local`` backend is untouched.
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._deferred: List = []
        self._deferring = 0

    def put(self, obj: bytes, filepath) -> None:
        """Write bytes to ``filepath`` atomically.

        Args:
            obj (bytes): Data to write.
            filepath (str | Path): Destination.
        """
        atomic_write(obj, str(filepath), 'wb')

    def put_text(self, obj: str, filepath, encoding: str = 'utf-8') -> None:
        """Write text to ``filepath`` atomically.

        Args:
            obj (str): Text to write.
            filepath (str | Path): Destination.
            encoding (str): Text encoding. Defaults to 'utf-8'.
        """
        atomic_write(obj, str(filepath), 'w', encoding=encoding)

    def remove(self, filepath) -> None:
        """Remove a file, or queue its removal inside
        :meth:`deferred_removals`.

        Args:
            filepath (str | Path): The file.
        """
        if self._deferring:
            self._deferred.append((super().remove, filepath))
        else:
            super().remove(filepath)

    def rmtree(self, dir_path) -> None:
        """Remove a folder, or queue its removal inside
        :meth:`deferred_removals`.

        Args:
            dir_path (str | Path): The folder.
        """
        if self._deferring:
            self._deferred.append((super().rmtree, dir_path))
        else:
            super().rmtree(dir_path)

    @contextlib.contextmanager
    def deferred_removals(self) -> Iterator[None]:
        """Removals asked for in the block happen when it ends without an
        exception; after an exception nothing is removed."""
        self._deferring += 1
        ok = False
        try:
            yield
            ok = True
        finally:
            self._deferring -= 1
            if not self._deferring:
                queued, self._deferred = self._deferred, []
                for fn, path in queued if ok else ():
                    fn(path)


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
