"""One INFO line for frozen parameters instead of a warning per tensor."""
import logging
from types import SimpleNamespace

import torch.nn as nn
from mmengine.logging import MMLogger, print_log

from mmitpn.utils import summarize_frozen_parameters


def test_frozen_parameters_one_line():
    model = nn.Module()
    model.backbone = nn.Linear(2, 2)
    model.teacher = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2))
    model.teacher.requires_grad_(False)
    logger = MMLogger.get_instance('test_frozen_parameters_one_line')
    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record)

    logger.addHandler(Keep(level=logging.DEBUG))
    names = summarize_frozen_parameters(
        SimpleNamespace(model=model, logger=logger))
    assert names == ['teacher.0.weight', 'teacher.0.bias',
                     'teacher.1.weight', 'teacher.1.bias']
    assert [r.getMessage() for r in records] == [
        'Not optimised (requires_grad=False, by design): 4 parameters: '
        'teacher.* (4)'
    ]
    # MMEngine's constructor warns per frozen tensor: those lines are
    # filtered, the others are not (tools/train.py end to end:
    # test_exact_resume.py)
    records.clear()
    print_log('teacher.0.weight is skipped since its requires_grad=False',
              logger=logger, level=logging.WARNING)
    print_log('other.weight is skipped since its requires_grad=False',
              logger=logger, level=logging.WARNING)
    assert [r.getMessage() for r in records] == [
        'other.weight is skipped since its requires_grad=False']


def test_model_not_built_yet_gets_one_generic_line():
    """FlexibleRunner (FSDP) builds its model in train(): the first
    warning becomes one INFO line, the others are dropped."""
    logger = MMLogger.get_instance('test_model_not_built_yet')
    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record)

    logger.addHandler(Keep(level=logging.DEBUG))
    assert summarize_frozen_parameters(
        SimpleNamespace(model=dict(type='X'), logger=logger)) == []
    for name in ('teacher.a', 'teacher.b', 'backbone.pos_embed'):
        print_log(f'{name} is skipped since its requires_grad=False',
                  logger=logger, level=logging.WARNING)
    assert len(records) == 1 and records[0].levelno == logging.INFO
    assert 'are not optimised' in records[0].getMessage()
