"""Which checkpoint a resumed run continues from."""
import glob
import logging
import os.path as osp
import zipfile
from typing import Optional

from mmengine.logging import print_log


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
    """The checkpoint an automatic resume should use.

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
    skipped = candidates[:candidates.index(found)] if found else candidates
    if named and named not in skipped:
        what = 'is truncated' if osp.exists(named) else 'does not exist'
        print_log(f'resume: last_checkpoint names {named}, which {what}; '
                  f'it is skipped.', logger='current',
                  level=logging.WARNING)
    for path in skipped:
        print_log(f'resume: skipping the truncated checkpoint {path} '
                  f'({osp.getsize(path)} bytes, written by an interrupted '
                  f'save); delete it.', logger='current',
                  level=logging.WARNING)
    if found is not None and (named or skipped):
        print_log(f'resume: resuming from {found}.', logger='current',
                  level=logging.WARNING)
    return found
