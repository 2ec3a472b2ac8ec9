"""Utilities of mmitpn: launching the tools on any host and machine."""
from .launch import (FALLBACK_HOST, HOST_SCOPES, CPUAmpOptimWrapper,
                     allow_full_checkpoint_load, close_dist, degrade_sync_bn,
                     get_host_scope, register_host_modules, setup_amp,
                     setup_cpu_dist, setup_fsdp, setup_tta,
                     trigger_visualization_hook)

__all__ = [
    'FALLBACK_HOST', 'HOST_SCOPES', 'CPUAmpOptimWrapper',
    'allow_full_checkpoint_load', 'close_dist', 'degrade_sync_bn',
    'get_host_scope', 'register_host_modules', 'setup_amp', 'setup_cpu_dist',
    'setup_fsdp', 'setup_tta', 'trigger_visualization_hook'
]
