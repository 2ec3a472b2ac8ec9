"""IterSeedHook: the random numbers of a step depend on (seed, step)."""
from types import SimpleNamespace

import numpy as np
import torch

from mmitpn.engine import IterSeedHook
from mmitpn.engine.hooks.iter_seed_hook import iter_seed


def test_iter_seed_is_numpys_seed_sequence():
    assert iter_seed(5, 7, 1) == int(
        np.random.SeedSequence([5, 7, 1]).generate_state(1)[0])


def test_same_step_same_numbers_whatever_came_before():
    hook = IterSeedHook()
    runner = SimpleNamespace(seed=0, iter=3, _randomness_cfg={})
    hook.before_train_iter(runner, 0)
    first = torch.rand(4)
    torch.rand(100)  # a different history ...
    np.random.rand(7)
    hook.before_train_iter(runner, 0)
    assert torch.equal(torch.rand(4), first)  # ... same step, same draws
    torch.manual_seed(iter_seed(0, 3))
    assert torch.equal(torch.rand(4), first)
    runner.iter = 4
    hook.before_train_iter(runner, 0)
    assert not torch.equal(torch.rand(4), first)
