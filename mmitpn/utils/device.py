"""What the machine offers (one place, so tests can pretend otherwise)."""
import torch


def cuda_available() -> bool:
    """Whether CUDA can be used (``torch.cuda.is_available()``).

    The launch helpers of :mod:`mmitpn.utils` ask this function, by module
    attribute, so a test can monkeypatch ``mmitpn.utils.device.
    cuda_available`` to run the CUDA branches on a CPU machine.
    """
    return torch.cuda.is_available()
