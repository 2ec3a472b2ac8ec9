"""Log lines that say something once instead of once per tensor
(installed by :class:`mmitpn.engine.hooks.FrozenParamSummaryHook`)."""
import logging
import re


_SKIPPED = re.compile(r'^(\S+) is skipped since its requires_grad=False$')


class FrozenParamFilter(logging.Filter):
    """Drop MMEngine's per-parameter ``<name> is skipped since its
    requires_grad=False`` warnings for the parameters in ``names`` (all of
    them when ``names`` is None: the first one becomes one INFO line that
    says so)."""

    def __init__(self, names=None) -> None:
        super().__init__()
        self.names = None if names is None else set(names)
        self.seen = 0

    def filter(self, record: logging.LogRecord) -> bool:
        m = _SKIPPED.match(str(record.msg))
        if not m:
            return True
        if self.names is not None:
            return m.group(1) not in self.names
        self.seen += 1
        if self.seen > 1:
            return False
        record.msg = ('Parameters with requires_grad=False (EMA teacher, '
                      'fixed position embeddings) are not optimised; '
                      "MMEngine's warning per parameter is left out")
        record.args = ()
        record.levelno, record.levelname = logging.INFO, 'INFO'
        return True

