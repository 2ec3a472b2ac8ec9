"""Log lines that say something once instead of once per tensor."""
import logging
import re

import torch.nn as nn
from mmengine.logging import MMLogger
from mmengine.model import is_model_wrapper

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


def summarize_frozen_parameters(runner) -> list:
    """One INFO line for the frozen parameters instead of one WARNING each.

    MMEngine's optimizer constructor warns once per parameter with
    ``requires_grad=False`` (e.g. the 47 tensors of the EMA teacher and
    the fixed sin-cos position embeddings of a pre-training run: 52
    warnings). These parameters are frozen by design: this logs one line
    naming them (grouped by top-level module) and filters the
    per-parameter warnings out of the runner's logger. Call it after the
    runner is built and before it trains. A runner that builds its model
    later (``FlexibleRunner``) gets one generic INFO line instead.

    Args:
        runner (Runner): The runner.

    Returns:
        list[str]: The names of the frozen parameters (empty when the
        model is not built yet).
    """
    logger = getattr(runner, 'logger', None) or \
        MMLogger.get_current_instance()
    model = getattr(runner, 'model', None)
    if is_model_wrapper(model):
        model = model.module
    if not isinstance(model, nn.Module):
        logger.addFilter(FrozenParamFilter())
        return []
    names = [n for n, p in model.named_parameters() if not p.requires_grad]
    if not names:
        return names
    groups: dict = {}
    for n in names:
        groups.setdefault(n.split('.')[0], []).append(n)
    parts = [f'{g}.* ({len(v)})' if len(v) > 1 else v[0]
             for g, v in groups.items()]
    logger.info(f'Not optimised (requires_grad=False, by design): '
                f'{len(names)} parameters: {", ".join(parts)}')
    logger.addFilter(FrozenParamFilter(names))
    return names
