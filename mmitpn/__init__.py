from .engine.checkpoint import (allow_full_checkpoint_load,
                                use_atomic_checkpoints,
                                use_checked_checkpoint_loader,
                                use_safe_checkpoint_rotation)
from .datasets.transforms import use_checked_image_loading
from .version import __version__

# MMEngine 0.10 calls torch.load without weights_only, which torch >= 2.6
# turns into weights_only=True: resuming, testing or running an inferencer
# on any checkpoint the runner wrote would fail on its message hub. mmitpn
# restores the pre-2.6 behaviour for calls that do not choose (set
# TORCH_FORCE_WEIGHTS_ONLY_LOAD=1 to opt out); only load trusted files.
allow_full_checkpoint_load()
# Checkpoints are written to a temporary file and renamed into place, and
# old ones are removed only once the new one is complete.
use_atomic_checkpoints()
use_safe_checkpoint_rotation()
# Missing, empty or truncated checkpoints fail with one line naming the file.
use_checked_checkpoint_loader()
# An empty or undecodable image fails with one line naming the file.
use_checked_image_loading()

__all__ = ['__version__']
