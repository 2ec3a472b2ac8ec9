"""mmitpn.benchmark.memory: the CPU meter reads what a call allocates."""
import sys

import pytest
import torch

from mmitpn.benchmark.memory import PeakMemory


@pytest.mark.skipif(not sys.platform.startswith('linux'),
                    reason='the CPU meter reads /proc/self')
def test_cpu_peak_of_a_call_is_what_it_allocates():
    """A call holding 64 MiB (then 16 MiB) reads about that; memory that
    existed before the call is not counted."""
    mem = PeakMemory(torch.device('cpu'))
    if not mem.available:
        pytest.skip('/proc/self/clear_refs cannot be written here')
    held = torch.ones(32 << 20, dtype=torch.uint8)  # before: not counted

    def alloc(mib):
        def fn():
            t = torch.ones(mib << 20, dtype=torch.uint8)
            return int(t[-1])
        return fn

    big, small = mem.measure(alloc(64)), mem.measure(alloc(16))
    assert 60 < big < 72, big
    assert 14 < small < 22, small
    assert mem.measure(lambda: None) < 4
    del held
