from .engine.checkpoint import (use_atomic_checkpoints,
                                use_checked_checkpoint_loader)
from .utils.launch import allow_full_checkpoint_load
from .version import __version__

# MMEngine 0.10 calls torch.load without weights_only, which torch >= 2.6
# turns into weights_only=True: resuming, testing or running an inferencer
# on any checkpoint the runner wrote would fail on its message hub. mmitpn
# restores the pre-2.6 behaviour for calls that do not choose (set
# TORCH_FORCE_WEIGHTS_ONLY_LOAD=1 to opt out); only load trusted files.
allow_full_checkpoint_load()
# Checkpoints are written to a temporary file and renamed into place.
use_atomic_checkpoints()
# Missing, empty or truncated checkpoints fail with one line naming the file.
use_checked_checkpoint_loader()

__all__ = ['__version__']
