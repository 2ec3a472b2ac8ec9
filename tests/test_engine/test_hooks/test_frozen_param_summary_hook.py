"""One INFO line for frozen parameters instead of a warning per tensor."""
import logging
from types import SimpleNamespace

import torch.nn as nn
from mmengine.logging import MMLogger, print_log

from mmitpn.engine.hooks import FrozenParamSummaryHook


def test_frozen_parameters_one_line():
    logger = MMLogger.get_instance('test_frozen_parameters_one_line')
    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record)

    logger.addHandler(Keep(level=logging.DEBUG))
    hook = FrozenParamSummaryHook()  # built with the runner: its logger
    assert hook.logger is logger
    # MMEngine's optimizer constructor then warns per frozen tensor
    for name in ('teacher.0.weight', 'teacher.0.bias', 'pos_embed'):
        print_log(f'{name} is skipped since its requires_grad=False',
                  logger=logger, level=logging.WARNING)
    print_log('other warning', logger=logger, level=logging.WARNING)
    assert [(r.levelname, r.getMessage()) for r in records] == [
        ('INFO', 'Parameters with requires_grad=False (EMA teacher, fixed '
         "position embeddings) are not optimised; MMEngine's warning per "
         'parameter is left out'),
        ('WARNING', 'other warning')]
    records.clear()

    model = nn.Module()
    model.backbone = nn.Linear(2, 2)
    model.teacher = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2))
    model.teacher.requires_grad_(False)
    runner = SimpleNamespace(model=model, logger=logger)
    hook.before_run(runner)
    assert [r.getMessage() for r in records] == [
        'Not optimised (requires_grad=False, by design): 4 parameters: '
        'teacher.* (4)'
    ]
    records.clear()
    hook.after_run(runner)  # the logger is itself again
    print_log('x.weight is skipped since its requires_grad=False',
              logger=logger, level=logging.WARNING)
    assert [r.levelname for r in records] == ['WARNING']
