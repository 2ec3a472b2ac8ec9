"""Utilities of mmitpn: launching the tools on any host and machine.

- :mod:`.hosts`: the host package of a config and its registration;
- :mod:`.distributed`: CPU (gloo) processes, SyncBN, FSDP, clean exit;
- :mod:`.amp`: ``--amp`` on GPUs and CPUs (:mod:`.mmcv_ops`: MMCV ops in
  float32 under CPU autocast);
- :mod:`.visualization`: ``--show`` / ``--show-dir``;
- :mod:`.tta`: ``--tta``;
- :mod:`.safe_load`: loading checkpoints without running code;
- :mod:`.errors`: one-line causes for the tools;
- :mod:`.log_filters`: one line for the frozen parameters (used by a
  hook);
- :mod:`.device`: what the machine offers.
"""
from .amp import setup_amp
from .distributed import (SYNC_BN_TYPES, close_dist, degrade_sync_bn,
                          setup_cpu_dist, setup_fsdp)
from .errors import run_tool
from .hosts import (FALLBACK_HOST, HOST_SCOPES, get_host_scope,
                    register_host_modules)
from .safe_load import (CHECKPOINT_GLOBALS, UnsafeCheckpointError,
                        checkpoint_globals, load_checkpoint_file,
                        use_weights_only_load)
from .tta import setup_tta
from .visualization import VIS_HOOK_TYPES, trigger_visualization_hook

__all__ = [
    'FALLBACK_HOST', 'HOST_SCOPES', 'SYNC_BN_TYPES', 'VIS_HOOK_TYPES',
    'CHECKPOINT_GLOBALS', 'UnsafeCheckpointError', 'checkpoint_globals',
    'close_dist', 'degrade_sync_bn', 'get_host_scope',
    'load_checkpoint_file', 'register_host_modules', 'run_tool',
    'setup_amp', 'setup_cpu_dist', 'setup_fsdp', 'setup_tta',
    'trigger_visualization_hook', 'use_weights_only_load'
]
