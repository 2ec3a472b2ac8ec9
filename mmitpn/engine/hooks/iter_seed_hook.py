"""Per-iteration seeds: the random numbers of a training step do not depend
on what the process did before it (exact resume)."""
import random
from typing import Optional

import numpy as np
import torch
from mmengine.dist import get_rank
from mmengine.hooks import Hook

from mmitpn.registry import HOOKS


def iter_seed(seed: int, it: int, rank: int = 0) -> int:
    """The seed of training iteration ``it``: a well-mixed function of
    ``(seed, it, rank)`` (NumPy's ``SeedSequence``), in [0, 2**32).

    Args:
        seed (int): The run's seed.
        it (int): The iteration (0-based, as ``runner.iter``).
        rank (int): The process rank (0 unless the config sets
            ``randomness.diff_rank_seed``). Defaults to 0.
    """
    return int(np.random.SeedSequence([seed % 2**32, it, rank])
               .generate_state(1)[0])


@HOOKS.register_module()
class IterSeedHook(Hook):
    """Seed ``random``, NumPy and torch (CPU and CUDA) before every
    training iteration with :func:`iter_seed` of (run seed, iteration).

    MMEngine seeds the generators once, when the runner starts, and does
    not checkpoint their states; so a resumed run draws other drop-path
    masks, proposal samples, ... than the run it continues (and the data
    loader's worker seeds draw from the same generator). With this hook the
    random numbers of iteration ``i`` are a function of the seed and ``i``
    only, and a run resumed at ``k`` repeats the uninterrupted run's
    iterations ``k, k+1, ...`` bit for bit (on the same hardware and
    software). The shipped configs name it in ``default_hooks.iter_seed``
    (their runtime bases). Every rank gets
    the same seed unless ``randomness.diff_rank_seed=True``, as in
    MMEngine.

    Args:
        seed (int, optional): None takes the runner's seed
            (``randomness.seed``, or the random one the runner drew and
            saved in the checkpoint). Defaults to None.
    """

    priority = 'VERY_HIGH'

    def __init__(self, seed: Optional[int] = None) -> None:
        self.seed = seed

    def before_train_iter(self, runner, batch_idx: int,
                          data_batch=None) -> None:
        """Seed the generators for ``runner.iter``.

        Args:
            runner (Runner): The runner.
            batch_idx (int): Index of the batch in the epoch.
            data_batch (dict | tuple | list, optional): The batch.
        """
        seed = self.seed if self.seed is not None else runner.seed
        randomness = getattr(runner, '_randomness_cfg', None) or {}
        rank = get_rank() if randomness.get('diff_rank_seed', False) else 0
        s = iter_seed(int(seed), runner.iter, rank)
        random.seed(s)
        np.random.seed(s)
        torch.manual_seed(s)
