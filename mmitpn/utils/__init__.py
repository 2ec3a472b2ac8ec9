"""Utilities of mmitpn: launching the tools on any host and machine.

- :mod:`.hosts`: the host package of a config and its registration;
- :mod:`.distributed`: CPU (gloo) processes, SyncBN, FSDP, clean exit;
- :mod:`.amp`: ``--amp`` on GPUs and CPUs (:mod:`.mmcv_ops`: MMCV ops in
  float32 under CPU autocast);
- :mod:`.visualization`: ``--show`` / ``--show-dir``;
- :mod:`.tta`: ``--tta``;
- :mod:`.reproducibility`: exact resume (per-sample, per-step seeds);
- :mod:`.errors`: one-line causes for the tools;
- :mod:`.log_filters`: one line for the frozen parameters;
- :mod:`.device`: what the machine offers.
"""
from mmitpn.engine.checkpoint import allow_full_checkpoint_load
from mmitpn.engine.optimizers import CPUAmpOptimWrapper
from .amp import setup_amp
from .distributed import (SYNC_BN_TYPES, close_dist, degrade_sync_bn,
                          setup_cpu_dist, setup_fsdp)
from .errors import run_tool
from .hosts import (FALLBACK_HOST, HOST_SCOPES, get_host_scope,
                    register_host_modules)
from .log_filters import summarize_frozen_parameters
from .reproducibility import seed_augmentation_per_sample
from .tta import setup_tta
from .visualization import VIS_HOOK_TYPES, trigger_visualization_hook

__all__ = [
    'FALLBACK_HOST', 'HOST_SCOPES', 'SYNC_BN_TYPES', 'VIS_HOOK_TYPES',
    'CPUAmpOptimWrapper', 'allow_full_checkpoint_load', 'close_dist',
    'degrade_sync_bn', 'get_host_scope', 'register_host_modules',
    'run_tool', 'seed_augmentation_per_sample', 'setup_amp',
    'setup_cpu_dist', 'setup_fsdp', 'setup_tta',
    'summarize_frozen_parameters', 'trigger_visualization_hook'
]
