"""One-line causes for the tools: mmitpn's own errors without a traceback."""
import os
import os.path as osp
import sys
from typing import Callable, Optional

#: Set to 1 to see the full traceback of mmitpn's own errors.
DEBUG_ENV = 'MMITPN_DEBUG'

_PACKAGE_DIR = osp.dirname(osp.dirname(osp.abspath(__file__)))
_TOOLS_DIR = osp.join(osp.dirname(_PACKAGE_DIR), 'tools')


def _raised_by_mmitpn(exc: BaseException) -> bool:
    """Whether the innermost frame of ``exc`` is mmitpn's (package or
    tools)."""
    tb = exc.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    path = osp.abspath(tb.tb_frame.f_code.co_filename)
    return path.startswith((_PACKAGE_DIR + os.sep, _TOOLS_DIR + os.sep))


def own_error(exc: BaseException) -> Optional[BaseException]:
    """mmitpn's error behind ``exc``, if any.

    Follows the chain of causes (``raise ... from``) and contexts, because
    MMEngine's registry re-raises a build error as a new exception of the
    same type with the class name prepended.

    Args:
        exc (BaseException): The exception that ended the tool.

    Returns:
        BaseException | None: The first exception of the chain raised by
        mmitpn code (an ``Exception``, not ``KeyboardInterrupt``), or None.
    """
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, Exception) and _raised_by_mmitpn(exc):
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


def run_tool(main: Callable[[], None]) -> None:
    """Run a tool's ``main``; print mmitpn's own errors as one line.

    An error raised by mmitpn's checks (bad config, data, checkpoint)
    carries its cause and fix in its message; the 20-45 lines of traceback
    above it only hide it. Such errors are printed to stderr as
    ``ERROR: <Type>: <message>`` and the process exits with status 1. Other
    errors (a bug, a host library's failure) keep their traceback, and
    ``MMITPN_DEBUG=1`` shows the traceback of every error.

    Args:
        main (callable): The tool's entry point.
    """
    try:
        main()
    except Exception as exc:  # noqa: BLE001 -- re-raised unless ours
        if os.environ.get(DEBUG_ENV, '') not in ('', '0'):
            raise
        own = own_error(exc)
        if own is None:
            raise
        sys.stderr.write(f'ERROR: {type(own).__name__}: {own} (set '
                         f'{DEBUG_ENV}=1 for the traceback)\n')
        sys.stderr.flush()
        sys.exit(1)


__all__ = ['DEBUG_ENV', 'own_error', 'run_tool']
