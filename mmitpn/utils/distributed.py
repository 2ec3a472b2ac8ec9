"""Distributed runs on any machine: CPU (gloo) processes, SyncBN where it
cannot synchronise, FSDP, and a clean exit."""
import datetime
import os
import warnings
from typing import List, Optional

from mmengine.config import Config, ConfigDict

from . import device

_DIST_WRAPPERS = ('MMDistributedDataParallel',
                  'mmengine.MMDistributedDataParallel')
#: Norm layer types that synchronise batch statistics across processes
#: (``SyncBN``: torch ``SyncBatchNorm``, ``MMSyncBN``: mmcv's, CUDA only).
SYNC_BN_TYPES = ('SyncBN', 'MMSyncBN')


def close_dist() -> None:
    """Destroy the default process group, if one was initialised.

    Call it on every rank when a distributed run is over (it waits for all
    ranks first): a process that exits with a live gloo / NCCL group, or
    tears it down while another rank still works, can abort in the
    group's destructor (``terminate called without an active
    exception``), turning a finished run into a failed exit code.
    """
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        # leave together: a rank that tears its group down while another
        # is still working can abort in gloo's destructor
        dist.barrier()
        dist.destroy_process_group()


def setup_cpu_dist(cfg: Config,
                   launcher: Optional[str] = None,
                   init_process_group: bool = False) -> bool:
    """Make a distributed run work on machines without CUDA.

    MMEngine defaults to the NCCL backend, pins every process to a GPU and
    wraps the model in DDP with ``device_ids``; none of it works on CPU.
    Without CUDA and with a launcher other than ``'none'`` this sets
    ``cfg.env_cfg.dist_cfg.backend = 'gloo'`` and a DDP wrapper with
    ``device_ids=None``, and SyncBN becomes BN with a warning
    (:func:`degrade_sync_bn`). With ``init_process_group`` and the
    ``'pytorch'`` launcher it also initialises the gloo process group from
    the torchrun environment (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``,
    ...), so the runner skips :func:`mmengine.dist.init_dist`, which calls
    ``torch.cuda.set_device``. With CUDA it does nothing.

    Args:
        cfg (Config): The config, edited in place.
        launcher (str, optional): ``'none'``, ``'pytorch'``, ``'slurm'`` or
            ``'mpi'``. None reads ``cfg.launcher`` (``'none'`` when unset).
            Defaults to None.
        init_process_group (bool): Initialise the process group now (only
            for the ``'pytorch'`` launcher and when none exists yet).
            Defaults to False.

    Returns:
        bool: Whether the config was changed for CPU.
    """
    if launcher is None:
        launcher = cfg.get('launcher', 'none') or 'none'
    if launcher == 'none' or device.cuda_available():
        return False

    if cfg.get('env_cfg', None) is None:
        cfg.env_cfg = ConfigDict()
    if cfg.env_cfg.get('dist_cfg', None) is None:
        cfg.env_cfg.dist_cfg = ConfigDict()
    backend = cfg.env_cfg.dist_cfg.get('backend', None)
    if backend not in (None, 'gloo'):
        warnings.warn(f'CUDA is not available: dist backend {backend!r} is '
                      "replaced by 'gloo'.")
    cfg.env_cfg.dist_cfg.backend = 'gloo'
    degrade_sync_bn(cfg, launcher)

    wrapper_cfg = cfg.get('model_wrapper_cfg', None)
    if wrapper_cfg is None:
        cfg.model_wrapper_cfg = ConfigDict(
            type='MMDistributedDataParallel',
            broadcast_buffers=False,
            find_unused_parameters=cfg.get('find_unused_parameters', False),
            device_ids=None)
    elif wrapper_cfg.get('type', 'MMDistributedDataParallel') in \
            _DIST_WRAPPERS:
        wrapper_cfg.device_ids = None

    if init_process_group and launcher == 'pytorch':
        import torch.distributed as torch_dist
        if not torch_dist.is_initialized():
            kwargs = dict(cfg.env_cfg.dist_cfg)
            kwargs.pop('backend')
            timeout = kwargs.pop('timeout', None)
            if timeout is not None:
                kwargs['timeout'] = datetime.timedelta(seconds=timeout)
            torch_dist.init_process_group(
                backend='gloo',
                rank=int(os.environ['RANK']),
                world_size=int(os.environ['WORLD_SIZE']),
                **kwargs)
    return True


def _find_sync_bn(node, path: str, found: list) -> None:
    """Collect the norm configs of a SyncBN type.

    Args:
        node (dict | list | tuple | Any): A (part of a) model config.
        path (str): The dotted path of ``node`` in the config.
        found (list[tuple[str, dict]]): ``(path, config)`` pairs found so
            far; extended in place.
    """
    if isinstance(node, dict):
        if node.get('type', None) in SYNC_BN_TYPES:
            found.append((path, node))
        for key, value in node.items():
            _find_sync_bn(value, f'{path}.{key}', found)
    elif isinstance(node, (list, tuple)):
        for i, value in enumerate(node):
            _find_sync_bn(value, f'{path}[{i}]', found)


def degrade_sync_bn(cfg: Config, launcher: Optional[str] = None) -> List[str]:
    """Replace SyncBN by BN (with a warning) where it cannot synchronise.

    SyncBN layers (e.g. the ``norm_cfg`` of the Mask R-CNN box and mask
    heads) only synchronise between processes on accelerators:

    - on one process (launcher ``'none'``) there is nothing to synchronise
      with; MMEngine's runner reverts SyncBN to BN and only logs it at the
      INFO level;
    - on several CPU processes (gloo), torch's ``SyncBatchNorm`` raises
      ``ValueError: SyncBatchNorm expected input tensor to be on GPU``.

    In both cases every ``type='SyncBN'`` / ``'MMSyncBN'`` in ``cfg.model``
    becomes ``'BN'`` (each process normalises with the statistics of its
    own batch; the state dict keys do not change) and a ``UserWarning``
    names the reason. A ``cfg.sync_bn`` (BN -> SyncBN conversion by the
    distributed runner) is removed in the same cases. With CUDA and a
    launcher, nothing changes. Calling it twice warns once.

    Args:
        cfg (Config): The config, edited in place (``cfg.model`` and
            ``cfg.sync_bn``).
        launcher (str, optional): ``'none'``, ``'pytorch'``, ``'slurm'`` or
            ``'mpi'``. None reads ``cfg.launcher`` (``'none'`` when unset).
            Defaults to None.

    Returns:
        list[str]: The config paths whose type was replaced, e.g.
        ``['model.roi_head.bbox_head.norm_cfg', ...]``; empty when nothing
        changed.
    """
    if launcher is None:
        launcher = cfg.get('launcher', 'none') or 'none'
    if launcher != 'none' and device.cuda_available():
        return []
    reason = ('one process has no other to synchronise with'
              if launcher == 'none' else
              "torch's SyncBatchNorm does not run on CPU processes")
    found: list = []
    _find_sync_bn(cfg.get('model', None), 'model', found)
    sync_bn = cfg.get('sync_bn', None)
    if sync_bn is not None:
        cfg.pop('sync_bn')
    if not found and sync_bn is None:
        return []
    for _, norm_cfg in found:
        norm_cfg['type'] = 'BN'
    paths = [path for path, _ in found]
    what = ', '.join(paths)
    if sync_bn is not None:
        what = (what + ', ' if what else '') + f'cfg.sync_bn={sync_bn!r}'
    warnings.warn(f'SyncBN degrades to BN (per-process batch statistics): '
                  f'{reason} (launcher={launcher!r}); replaced in: {what}.')
    return paths


def setup_fsdp(cfg: Config,
               launcher: Optional[str] = None,
               state_dict: str = 'full') -> ConfigDict:
    """Train a config with MMEngine's FSDP strategy.

    Sets ``runner_type='FlexibleRunner'`` and
    ``strategy='mmitpn.ResumableFSDPStrategy'`` (MMEngine's
    ``FSDPStrategy`` with resuming fixed for torch >= 2.1) with an
    ``MMFullyShardedDataParallel`` wrapper that shards the whole model
    (no auto-wrap policy) with ``use_orig_params=True`` (needed by the
    parameter-wise optimizer settings). When the config has an
    ``EMATeacherHook``, the model's ``teacher`` is an FSDP *ignored*
    module: every rank keeps it whole (it has no gradients or optimizer
    state) and the hook updates it from the gathered, unsharded student.
    Without CUDA the wrapper gets ``device_id='cpu'`` (torch FSDP otherwise
    looks for an accelerator) and :func:`setup_cpu_dist` gives the gloo
    backend. Settings already in ``cfg.strategy.model_wrapper`` are kept.

    Args:
        cfg (Config): The config, edited in place.
        launcher (str, optional): Must be a distributed launcher
            (``'pytorch'``, ``'slurm'``, ``'mpi'``). None reads
            ``cfg.launcher``. Defaults to None.
        state_dict (str): ``'full'``: checkpoints hold the full state dict,
            written by rank 0 (loadable without FSDP); ``'local'``: every
            rank writes its shards. Defaults to ``'full'``.

    Returns:
        ConfigDict: ``cfg.strategy``.

    Raises:
        ValueError: One process (launcher ``'none'``), an unknown
            ``state_dict``, or a ``runner_type`` other than FlexibleRunner.
    """
    if launcher is None:
        launcher = cfg.get('launcher', 'none') or 'none'
    if launcher == 'none':
        raise ValueError('FSDP needs a distributed launcher (e.g. '
                         '`--launcher pytorch` with torchrun), got '
                         "launcher='none'.")
    if state_dict not in ('full', 'local'):
        raise ValueError(f"state_dict must be 'full' or 'local', got "
                         f'{state_dict!r}.')
    runner_type = cfg.get('runner_type', 'FlexibleRunner')
    if runner_type.split('.')[-1] != 'FlexibleRunner':
        raise ValueError(f'FSDP runs with FlexibleRunner, but the config '
                         f'sets runner_type={runner_type!r}.')
    cfg.runner_type = 'FlexibleRunner'
    strategy = cfg.get('strategy', None) or ConfigDict()
    strategy.type = 'mmitpn.ResumableFSDPStrategy'
    strategy.setdefault('state_dict_cfg', state_dict)
    wrapper = strategy.get('model_wrapper', None) or ConfigDict()
    wrapper.setdefault('type', 'MMFullyShardedDataParallel')
    wrapper.setdefault('use_orig_params', True)
    hooks = cfg.get('custom_hooks', None) or []
    if any(str(h.get('type', '')).split('.')[-1] == 'EMATeacherHook'
           for h in hooks if isinstance(h, dict)):
        ignored = list(wrapper.get('ignored_modules', None) or [])
        if 'teacher' not in ignored:
            ignored.append('teacher')
        wrapper.ignored_modules = ignored
    if not device.cuda_available():
        wrapper.setdefault('device_id', 'cpu')
    strategy.model_wrapper = wrapper
    cfg.strategy = strategy
    # FlexibleRunner does not read it; a DDP wrapper would only mislead
    cfg.pop('model_wrapper_cfg', None)
    return cfg.strategy
