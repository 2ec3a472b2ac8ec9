"""SeededSampler: every index carries the seed of its augmentation."""
import pickle

import numpy as np
import torch
from mmengine.dataset import DefaultSampler, InfiniteSampler

from mmitpn.datasets import SeededIndex, SeededSampler, sample_seed


class Range(torch.utils.data.Dataset):
    def __len__(self):
        return 6

    def __getitem__(self, i):
        return i


def test_sample_seed_is_numpys_seed_sequence():
    expected = int(np.random.SeedSequence([7, 2, 5]).generate_state(1)[0])
    assert sample_seed(7, 2, 5) == expected
    assert len({sample_seed(0, e, i) for e in range(3)
                for i in range(100)}) == 300


def test_indices_and_seeds_follow_the_wrapped_sampler():
    inner = DefaultSampler(Range(), shuffle=True, seed=3)
    sampler = SeededSampler(Range(), dict(type='DefaultSampler',
                                          shuffle=True), seed=3)
    for epoch in (0, 1):
        inner.set_epoch(epoch)
        sampler.set_epoch(epoch)
        got = list(sampler)
        assert got == list(inner)  # same order as the plain sampler
        assert [s.aug_seed for s in got] == [
            sample_seed(3, epoch, int(i)) for i in got]
    assert len(sampler) == 6 and sampler.shuffle is True


def test_infinite_sampler_counts_passes():
    sampler = SeededSampler(Range(), dict(type='InfiniteSampler',
                                          shuffle=False), seed=1)
    it = iter(sampler)
    got = [next(it) for _ in range(12)]
    assert [int(i) for i in got] == list(range(6)) * 2
    assert [s.aug_seed for s in got] == [
        sample_seed(1, n // 6, n % 6) for n in range(12)]
    assert isinstance(sampler.sampler, InfiniteSampler)


def test_seeded_index_is_an_int_that_survives_pickling():
    idx = SeededIndex(4, 123)
    assert idx == 4 and [10, 11, 12, 13, 14][idx] == 14
    back = pickle.loads(pickle.dumps(idx))
    assert back == 4 and back.aug_seed == 123


def test_dataloader_workers_get_the_seeds():
    """Through a DataLoader with workers (pickled index lists)."""

    class Echo(Range):
        def __getitem__(self, i):
            return torch.tensor([int(i), i.aug_seed])

    sampler = SeededSampler(Echo(), dict(type='DefaultSampler',
                                         shuffle=True), seed=0)
    loader = torch.utils.data.DataLoader(Echo(), batch_size=3,
                                         sampler=sampler, num_workers=2)
    rows = torch.cat(list(loader))
    assert sorted(rows[:, 0].tolist()) == list(range(6))
    assert rows[:, 1].tolist() == [sample_seed(0, 0, i)
                                   for i in rows[:, 0].tolist()]
