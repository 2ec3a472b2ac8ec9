"""Log lines that say something once instead of once per tensor."""
import logging
import re

from mmengine.model import is_model_wrapper

_SKIPPED = re.compile(r'^(\S+) is skipped since its requires_grad=False$')


class FrozenParamFilter(logging.Filter):
    """Drop MMEngine's per-parameter ``<name> is skipped since its
    requires_grad=False`` warnings for the parameters in ``names``."""

    def __init__(self, names) -> None:
        super().__init__()
        self.names = set(names)

    def filter(self, record: logging.LogRecord) -> bool:
        m = _SKIPPED.match(str(record.msg))
        return not (m and m.group(1) in self.names)


def summarize_frozen_parameters(runner) -> list:
    """One INFO line for the frozen parameters instead of one WARNING each.

    MMEngine's optimizer constructor warns once per parameter with
    ``requires_grad=False`` (e.g. the 47 tensors of the EMA teacher and
    the fixed sin-cos position embeddings of a pre-training run: 52
    warnings). These parameters are frozen by design: this logs one line
    naming them (grouped by top-level module) and filters the
    per-parameter warnings out of ``runner.logger``. Call it after the
    runner is built and before it trains.

    Args:
        runner (Runner): The runner.

    Returns:
        list[str]: The names of the frozen parameters.
    """
    model = runner.model.module if is_model_wrapper(runner.model) else \
        runner.model
    names = [n for n, p in model.named_parameters() if not p.requires_grad]
    if not names:
        return names
    groups: dict = {}
    for n in names:
        groups.setdefault(n.split('.')[0], []).append(n)
    parts = [f'{g}.* ({len(v)})' if len(v) > 1 else v[0]
             for g, v in groups.items()]
    runner.logger.info(f'Not optimised (requires_grad=False, by design): '
                       f'{len(names)} parameters: {", ".join(parts)}')
    runner.logger.addFilter(FrozenParamFilter(names))
    return names
