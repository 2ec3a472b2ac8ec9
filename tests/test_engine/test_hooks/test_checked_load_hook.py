"""CheckedLoadHook: tools/test.py refuses a checkpoint that does not fill
the model, also behind a TTA model or a DDP wrapper."""
from types import SimpleNamespace

import pytest
import torch
import torch.nn as nn
from mmengine.model import BaseModel, BaseTTAModel

from mmitpn.engine import CheckedLoadHook


class Net(BaseModel):

    def __init__(self):
        super().__init__()
        self.backbone = nn.Linear(2, 2)
        self.head = nn.Linear(2, 1)

    def forward(self, *args, **kwargs):
        pass


class TTA(BaseTTAModel):

    def merge_preds(self, data_samples_list):
        return data_samples_list


def whole():
    return {k: torch.zeros_like(v) for k, v in Net().state_dict().items()}


@pytest.mark.parametrize('wrap', [lambda m: m, lambda m: TTA(module=m)])
def test_checked_load(wrap):
    runner = SimpleNamespace(model=wrap(Net()), _load_from='ckpt.pth')
    hook = CheckedLoadHook()
    hook.after_load_checkpoint(runner, dict(state_dict=whole()))
    # a leading 'module.' (a DDP checkpoint) is removed as MMEngine does
    hook.after_load_checkpoint(runner, dict(state_dict={
        f'module.{k}': v for k, v in whole().items()}))
    partial = whole()
    del partial['head.weight'], partial['head.bias']
    with pytest.raises(ValueError, match=r"'ckpt\.pth' fills 2 of 4 tensors "
                       r'of Net: 2 missing \(head \(2\)\), 0 unexpected'):
        hook.after_load_checkpoint(runner, dict(state_dict=partial))
    CheckedLoadHook(allow_partial=True).after_load_checkpoint(
        runner, dict(state_dict=partial))
