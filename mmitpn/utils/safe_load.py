"""Loading checkpoints without running code.

``torch.load(..., weights_only=True)`` refuses any pickled global that is
not a tensor, a container or a type on an allow-list, so a downloaded file
cannot run a command when it is read. MMEngine 0.10 and the official iTPN /
mmdet-2 / mmseg-0.x files hold a few more types than PyTorch allows by
default (the message hub's ``HistoryBuffer``, numpy arrays and scalars, an
``argparse.Namespace``): :data:`CHECKPOINT_GLOBALS` lists them, and
:func:`checkpoint_globals` allows exactly them for the duration of a
``with`` block (nothing stays changed after it).

Everything else is refused with one line naming the file, the global it
asked for and the opt-in. The opt-in for a trusted legacy file is explicit
and per run (``allow_unsafe=True``: a tool's ``--allow-unsafe-load``, a
config's ``allow_unsafe_load=True`` of :class:`mmitpn.engine.hooks.
WeightsOnlyLoadHook`) and logged at WARNING with the globals it lets in.
"""
import contextlib
import importlib
import logging
import os.path as osp
import pickle
import re
import zipfile
from typing import Any, Iterator, List, Optional, Sequence, Tuple

import torch
from mmengine.logging import print_log

#: ``(module, name)`` of the globals real checkpoints hold beyond PyTorch's
#: defaults. Each is a type or a numpy constructor that builds data and
#: nothing else. Names that the installed numpy does not have are skipped;
#: numpy 1 and numpy 2 pickles name the same objects under ``numpy.core``
#: and ``numpy._core``, both are listed.
CHECKPOINT_GLOBALS: Tuple[Tuple[str, str], ...] = (
    # MMEngine 0.10: the message hub's scalars; a HistoryBuffer pickles its
    # statistics methods as getattr(buffer, 'mean'). PyTorch's unpickler
    # only calls allow-listed globals, so what getattr returns is stored,
    # never called.
    ('mmengine.logging.history_buffer', 'HistoryBuffer'),
    ('builtins', 'getattr'),
    # official iTPN / MAE-style pre-trainings keep their arguments
    ('argparse', 'Namespace'),
    # numpy arrays, scalars and dtypes (message hub, meta, mmcv 1.x meta)
    ('numpy.core.multiarray', '_reconstruct'),
    ('numpy._core.multiarray', '_reconstruct'),
    ('numpy.core.multiarray', 'scalar'),
    ('numpy._core.multiarray', 'scalar'),
    ('numpy', 'ndarray'),
    ('numpy', 'dtype'),
) + tuple(('numpy.dtypes', n) for n in (
    'BoolDType', 'Int8DType', 'Int16DType', 'Int32DType', 'Int64DType',
    'UInt8DType', 'UInt16DType', 'UInt32DType', 'UInt64DType',
    'Float16DType', 'Float32DType', 'Float64DType', 'LongDType',
    'ULongDType', 'LongLongDType', 'ULongLongDType', 'ByteDType',
    'UByteDType', 'ShortDType', 'UShortDType', 'IntDType', 'UIntDType',
    'Complex64DType', 'Complex128DType', 'StrDType', 'BytesDType',
    'ObjectDType'))

#: How the opt-in is spelt, for the messages.
OPT_IN = ('--allow-unsafe-load (tools) / allow_unsafe_load=True '
          "(config: default_hooks.weights_only_load)")


class UnsafeCheckpointError(ValueError):
    """A checkpoint asks for a global that is not on the allow-list."""


def _resolve(module: str, name: str) -> Optional[Any]:
    try:
        obj = importlib.import_module(module)
    except ImportError:
        return None
    for part in name.split('.'):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


def allowed_globals(
        extra: Sequence[str] = ()) -> List[Tuple[Any, str]]:
    """The allow-list as ``torch.serialization.safe_globals`` takes it.

    Args:
        extra (Sequence[str]): More globals, as ``'module.name'``
            (an opted-in file's own globals). Defaults to ().

    Returns:
        list[tuple[object, str]]: ``(object, 'module.name')`` pairs of the
        globals that exist in this environment.
    """
    pairs = list(CHECKPOINT_GLOBALS)
    for full in extra:
        module, _, name = full.rpartition('.')
        pairs.append((module, name))
    out = []
    for module, name in pairs:
        obj = _resolve(module, name)
        if obj is not None:
            out.append((obj, f'{module}.{name}'))
    return out


@contextlib.contextmanager
def checkpoint_globals(extra: Sequence[str] = ()) -> Iterator[None]:
    """Allow :data:`CHECKPOINT_GLOBALS` (and ``extra``) in ``weights_only``
    loads for the duration of the block, then restore PyTorch's list as it
    was.

    Args:
        extra (Sequence[str]): More globals, as ``'module.name'``.
            Defaults to ().
    """
    from torch import serialization
    before = list(serialization.get_safe_globals())
    serialization.add_safe_globals(allowed_globals(extra))
    try:
        yield
    finally:
        serialization.clear_safe_globals()
        if before:
            serialization.add_safe_globals(before)


def _allowed_names(extra: Sequence[str] = ()) -> set:
    return {name for _, name in allowed_globals(extra)}


def unsafe_globals(filename: str) -> List[str]:
    """The globals of a zip-format checkpoint that neither PyTorch nor
    :data:`CHECKPOINT_GLOBALS` allow, read without unpickling anything.

    Args:
        filename (str): A ``torch.save`` file.

    Returns:
        list[str]: ``'module.name'`` of each, sorted; empty for a file
        that loads with ``weights_only=True``.
    """
    from torch.serialization import get_unsafe_globals_in_checkpoint
    found = get_unsafe_globals_in_checkpoint(filename)
    allowed = _allowed_names()
    # numpy 2 maps numpy.core.* of old pickles to numpy._core.*
    return sorted(
        g for g in found
        if g not in allowed and g.replace('numpy.core.', 'numpy._core.')
        not in allowed)


def _refusal(filename: str, names: Sequence[str]) -> UnsafeCheckpointError:
    listed = ', '.join(names[:3]) + (' ...' if len(names) > 3 else '')
    return UnsafeCheckpointError(
        f'Checkpoint {filename!r} asks to unpickle {listed}, which is not a '
        f'tensor or a type that checkpoints of MMEngine, iTPN, mmdet or '
        f'mmseg hold: refused, loading it could run code. Only if you '
        f'trust the file, opt in with {OPT_IN}, or convert it once with '
        f'tools/model_converters/itpn_to_mmitpn.py --allow-unsafe-load.')


def check_loadable(filename: str, allow_unsafe: bool = False) -> List[str]:
    """Check, without unpickling, that a checkpoint is whole and loads with
    the allow-list.

    Args:
        filename (str): Local checkpoint path.
        allow_unsafe (bool): Accept other globals (logged at WARNING)
            instead of refusing them. Defaults to False.

    Returns:
        list[str]: The globals beyond the allow-list that the file asks for
        (only non-empty with ``allow_unsafe``).

    Raises:
        FileNotFoundError: ``filename`` is not a file.
        ValueError: The file is empty, truncated or not a checkpoint.
        UnsafeCheckpointError: It asks for other globals and not
            ``allow_unsafe``.
    """
    path = osp.expanduser(filename)
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'Checkpoint {filename!r} does not exist; fix the path '
            f'(load_from, --resume, init_cfg.checkpoint or the tool\'s '
            f'argument) or drop it to start from scratch.')
    with open(path, 'rb') as f:
        head = f.read(4)
    if not zipfile.is_zipfile(path):
        if not head or head.startswith(b'PK'):  # empty, or a cut-off zip
            cause = EOFError('no zip central directory')
            raise _truncated(filename, path, cause) from cause
        if head[:1] != b'\x80':  # not a pickle: text, an image, ...
            cause = ValueError('neither a zip nor a pickle')
            raise _truncated(filename, path, cause) from cause
        # torch < 1.6 files are not zips; the unpickler still checks them
        return []
    try:
        names = unsafe_globals(path)
    except (RuntimeError, zipfile.BadZipFile, OSError, EOFError,
            pickle.UnpicklingError, ValueError) as e:
        raise _truncated(filename, path, e) from e
    if names and not allow_unsafe:
        raise _refusal(filename, names)
    if names:
        print_log(
            f'allow_unsafe_load: loading {filename!r}, which unpickles '
            f'{", ".join(names)} (trusted by this run\'s opt-in).',
            logger='current', level=logging.WARNING)
    return names


def _truncated(filename: str, path: str, e: BaseException) -> ValueError:
    cause = ' '.join(f'{type(e).__name__}: {e}'.split())
    if len(cause) > 120:
        cause = cause[:117] + '...'
    size = osp.getsize(path) if osp.isfile(path) else 0
    return ValueError(
        f'Checkpoint {filename!r} ({size} bytes) is truncated or not a '
        f'PyTorch checkpoint ({cause}); delete it and resume from an '
        f'earlier one (a resumed run picks the newest complete '
        f'checkpoint), or download the file again.')


def load_checkpoint_file(filename: str,
                         map_location: Any = 'cpu',
                         allow_unsafe: bool = False) -> Any:
    """``torch.load`` with ``weights_only=True`` and the allow-list.

    The loader of every mmitpn tool and of mmitpn's modules' own
    ``init_cfg`` checkpoints.

    Args:
        filename (str): Local checkpoint path.
        map_location (Any): As :func:`torch.load`. Defaults to 'cpu'.
        allow_unsafe (bool): The explicit opt-in for a trusted file that
            holds other globals: they are allowed for this load only,
            logged at WARNING. Defaults to False.

    Returns:
        Any: The loaded object.

    Raises:
        FileNotFoundError: ``filename`` is not a file.
        ValueError: The file is empty, truncated or not a checkpoint.
        UnsafeCheckpointError: It asks for a global beyond the allow-list
            and not ``allow_unsafe``; nothing of the file was unpickled.
    """
    extra = check_loadable(filename, allow_unsafe)
    path = osp.expanduser(filename)
    try:
        with checkpoint_globals(extra):
            return torch.load(
                path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        found = re.findall(r'GLOBAL ([\w.]+)', str(e))
        if found or 'Weights only load failed' in str(e):
            raise _refusal(filename, found or ['an unsupported opcode'])
        raise _truncated(filename, path, e) from e
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, KeyError,
            ValueError, AttributeError) as e:
        # a file of another kind (text, a legacy pickle of something else)
        raise _truncated(filename, path, e) from e




def use_weights_only_load(cfg, allow_unsafe: bool = False) -> None:
    """Make sure a config's run loads through
    :class:`mmitpn.engine.hooks.WeightsOnlyLoadHook` (``tools/test.py``
    does it for any config; the shipped configs name the hook already),
    and opt it in to trusted legacy files when asked
    (``--allow-unsafe-load``, said at WARNING).

    Args:
        cfg (mmengine.Config): The config, edited in place.
        allow_unsafe (bool): Set ``allow_unsafe_load=True`` on the hook.
            Defaults to False.
    """
    if cfg.get('default_hooks', None) is None:
        cfg.default_hooks = {}
    hooks = cfg.default_hooks
    hook = hooks.get('weights_only_load', None) or dict(
        type='mmitpn.WeightsOnlyLoadHook')
    if allow_unsafe:
        hook['allow_unsafe_load'] = True
        print_log(
            '--allow-unsafe-load: checkpoints of this run may unpickle '
            'objects beyond tensors and the allow-listed types; only load '
            'files you trust.', logger='current', level=logging.WARNING)
    hooks['weights_only_load'] = hook
