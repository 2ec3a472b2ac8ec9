"""Samplers of mmitpn: augmentation randomness that survives a resume."""
from typing import Iterator, Optional

import numpy as np
from torch.utils.data import Sampler

from mmitpn.registry import DATA_SAMPLERS


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """The seed of one sample's augmentation: a well-mixed function of
    ``(seed, epoch, index)`` (NumPy's ``SeedSequence``), in [0, 2**32).

    Args:
        seed (int): The run's seed.
        epoch (int): The pass over the data (the sampler's epoch).
        index (int): The dataset index of the sample.
    """
    return int(np.random.SeedSequence(
        [seed % 2**32, epoch, index]).generate_state(1)[0])


class SeededIndex(int):
    """A dataset index that carries the seed of its augmentation
    (:attr:`aug_seed`); everywhere else it is the plain ``int``. It
    survives pickling to the data-loader workers."""

    def __new__(cls, index: int, aug_seed: int):
        obj = super().__new__(cls, index)
        obj.aug_seed = aug_seed
        return obj

    def __reduce__(self):
        return SeededIndex, (int(self), self.aug_seed)


@DATA_SAMPLERS.register_module()
class SeededSampler(Sampler):
    """Any sampler whose indices carry the seed of their augmentation.

    Data-loader workers draw the random numbers of the augmentations (crop,
    flip, colour) from their own generators, seeded once when the worker
    starts. With ``persistent_workers=True`` those generators run on over
    the epochs, and a resumed run (new workers) draws other numbers than
    the run it continues: the losses differ from the first resumed
    iteration on. Here every index yielded by the wrapped ``sampler`` is a
    :class:`SeededIndex` whose seed is :func:`sample_seed` of (``seed``,
    epoch, index), and :class:`~mmitpn.datasets.SeedAugmentation` at the
    head of the pipeline seeds ``random``, NumPy and torch with it: the
    augmentation of a sample depends on the run's seed, the epoch and the
    index only, not on the worker, the number of workers or the process
    history. The shipped configs wrap the sampler of their training
    dataloaders in it, e.g. ``sampler=dict(_delete_=True,
    type='mmitpn.SeededSampler', sampler=dict(type='DefaultSampler',
    shuffle=True))``.

    The epoch is the wrapped sampler's ``epoch`` (``DefaultSampler``, set
    by the runner each epoch); a sampler without one (``InfiniteSampler``
    of iteration-based loops) counts its passes over the data.

    Args:
        dataset (Dataset): The dataset (given by the runner).
        sampler (dict): Config of the wrapped sampler, e.g.
            ``dict(type='DefaultSampler', shuffle=True)``.
        seed (int, optional): The run's seed (given by the runner); None
            takes the wrapped sampler's ``seed`` (random and shared by the
            ranks when the config sets none).
    """

    def __init__(self, dataset, sampler: dict, seed: Optional[int] = None):
        from mmengine.registry import DATA_SAMPLERS as ROOT
        self.sampler = ROOT.build(
            sampler, default_args=dict(dataset=dataset, seed=seed))
        self.dataset = dataset
        inner_seed = getattr(self.sampler, 'seed', None)
        self.seed = int(seed if seed is not None else
                        inner_seed if inner_seed is not None else 0)

    def __iter__(self) -> Iterator[SeededIndex]:
        epoch = getattr(self.sampler, 'epoch', None)
        size = max(len(self.sampler), 1)
        for count, index in enumerate(self.sampler):
            e = epoch if epoch is not None else count // size
            yield SeededIndex(index, sample_seed(self.seed, e, int(index)))

    def __len__(self) -> int:
        return len(self.sampler)

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch of the wrapped sampler.

        Args:
            epoch (int): The epoch.
        """
        if hasattr(self.sampler, 'set_epoch'):
            self.sampler.set_epoch(epoch)

    def __getattr__(self, name):
        # the wrapped sampler's other attributes (e.g. ``shuffle``)
        if name == 'sampler':
            raise AttributeError(name)
        return getattr(self.sampler, name)
