"""Peak memory of one call, on CUDA and on a CPU.

On CUDA: ``torch.cuda.max_memory_allocated`` during the call minus the
memory allocated before it. On CPU torch keeps no allocator statistics, so
the resident set is measured: until the memory round is over glibc hands
every block >= 64 KiB to ``mmap`` and returns it on free (``mallopt``), so
that the resident set tracks live memory; for each call
:meth:`PeakMemory.measure` runs ``malloc_trim``, resets the kernel's
high-water mark (``/proc/self/clear_refs``) and reports ``VmHWM`` during the
call minus ``VmRSS`` before it. Timed rounds run with glibc's usual steady
state (blocks up to 32 MiB reused from the heap, :meth:`PeakMemory.steady`).
Either way weights, optimizer state and whatever else existed before the
call are excluded; activations, temporaries and gradients are counted.
Where ``/proc/self/clear_refs`` cannot be written the peak is None.
"""
import ctypes
import gc
import platform
from typing import Callable, Optional

import torch

#: glibc ``mallopt`` parameters
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3


class PeakMemory:
    """Peak memory of one call (see the module docstring).

    Args:
        device (torch.device): Where the models run.
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.libc = None
        self.available = device.type == 'cuda'
        if device.type == 'cpu' and platform.system() == 'Linux':
            try:
                self.libc = ctypes.CDLL('libc.so.6')
                self._reset_hwm()
                self.available = True
            except OSError:
                self.available = False

    @staticmethod
    def _status(key: str) -> float:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1]) / 1024.
        raise KeyError(key)

    @staticmethod
    def _reset_hwm() -> None:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')

    def measure(self, fn: Callable) -> Optional[float]:
        """Run ``fn`` once and measure its peak memory.

        Args:
            fn (Callable): The call, without arguments.

        Returns:
            float | None: Peak memory of the call in MiB, None where the
            platform gives no way to measure it.
        """
        if not self.available:
            fn()
            return None
        gc.collect()
        if self.device.type == 'cuda':
            torch.cuda.synchronize(self.device)
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(self.device)
            base = torch.cuda.memory_allocated(self.device)
            fn()
            torch.cuda.synchronize(self.device)
            return (torch.cuda.max_memory_allocated(self.device) -
                    base) / 2**20
        self.precise()
        try:
            self.libc.malloc_trim(0)
            self._reset_hwm()
            base = self._status('VmRSS')
            fn()
            return self._status('VmHWM') - base
        finally:
            self.steady()

    def precise(self) -> None:
        """glibc hands every block >= 64 KiB to mmap and back to the OS on
        free, so the resident set tracks live memory (CPU only)."""
        if self.libc is not None:
            self.libc.mallopt(M_MMAP_THRESHOLD, 1 << 16)
            self.libc.mallopt(M_TRIM_THRESHOLD, 1 << 16)

    def steady(self) -> None:
        """glibc's steady state for timings: blocks up to 32 MiB come from
        (and return to) the heap without page faults (CPU only)."""
        if self.libc is not None:
            self.libc.mallopt(M_MMAP_THRESHOLD, 32 << 20)
            self.libc.mallopt(M_TRIM_THRESHOLD, 64 << 20)
