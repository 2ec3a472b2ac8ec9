"""Helpers shared by ``tools/train.py`` and ``tools/test.py``.

The tools run configs of several hosts (mmdet, mmseg, mmpretrain) and of
mmitpn itself. These helpers pick the host from ``cfg.default_scope``,
register its modules, and adapt a config to the machine it runs on (AMP and
distributed runs without CUDA, visualization, test-time augmentation).
They only edit the config; the tools build the runner.
"""
import datetime
import importlib
import os
import warnings
from copy import deepcopy
from typing import List, Optional, Union

import torch
from mmengine.config import Config, ConfigDict
from mmengine.optim import AmpOptimWrapper, OptimWrapper
from mmengine.registry import OPTIM_WRAPPERS, STRATEGIES

#: Scopes that are hosts: their ``utils.register_all_modules`` is called.
HOST_SCOPES = ('mmdet', 'mmseg', 'mmpretrain')
#: Host of configs whose scope is ``mmitpn`` or missing.
FALLBACK_HOST = 'mmpretrain'

#: Visualization hook type of each host (``default_hooks.visualization``).
VIS_HOOK_TYPES = {
    'mmdet': 'DetVisualizationHook',
    'mmseg': 'SegVisualizationHook',
    'mmpretrain': 'VisualizationHook',
}

_DIST_WRAPPERS = ('MMDistributedDataParallel',
                  'mmengine.MMDistributedDataParallel')
#: Norm layer types that synchronise batch statistics across processes
#: (``SyncBN``: torch ``SyncBatchNorm``, ``MMSyncBN``: mmcv's, CUDA only).
SYNC_BN_TYPES = ('SyncBN', 'MMSyncBN')


def _cuda_available() -> bool:
    return torch.cuda.is_available()


def allow_full_checkpoint_load() -> bool:
    """Let ``torch.load`` read the checkpoints that MMEngine writes.

    Since PyTorch 2.6 ``torch.load`` defaults to ``weights_only=True``, and
    MMEngine 0.10 does not pass ``weights_only``, so resuming or testing a
    checkpoint saved by the runner fails on its ``message_hub``
    (``HistoryBuffer`` and numpy objects). This sets
    ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` (which only affects calls that do
    not pass ``weights_only``) and silences the warning torch gives for it.
    Only load checkpoints you trust: they are unpickled in full. Nothing is
    done when the user set ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD`` or
    ``TORCH_FORCE_WEIGHTS_ONLY_LOAD``.

    Returns:
        bool: Whether the variable was set.
    """
    if 'TORCH_FORCE_WEIGHTS_ONLY_LOAD' in os.environ or \
            'TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD' in os.environ:
        return False
    os.environ['TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD'] = '1'
    warnings.filterwarnings(
        'ignore', message='Environment variable TORCH_FORCE_NO_WEIGHTS_ONLY')
    return True


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


def get_host_scope(cfg: Config) -> str:
    """Name the host package of a config.

    Args:
        cfg (Config): The config; only ``cfg.default_scope`` is read.

    Returns:
        str: ``cfg.default_scope`` when it is one of :data:`HOST_SCOPES`,
        else :data:`FALLBACK_HOST` (``'mmpretrain'``), which covers scope
        ``'mmitpn'`` and configs without a scope.
    """
    scope = cfg.get('default_scope', None)
    return scope if scope in HOST_SCOPES else FALLBACK_HOST


def register_host_modules(cfg: Config) -> str:
    """Import mmitpn and register the modules of the config's host.

    Calls ``<host>.utils.register_all_modules(init_default_scope=False)``
    where the host package has it, so the runner can build the host's
    models, datasets, hooks and metrics. A config without
    ``default_scope`` gets the host as its scope; any other scope
    (``'mmitpn'`` included) is left as it is.

    Args:
        cfg (Config): The config. ``cfg.default_scope`` is read, and set
            when missing.

    Returns:
        str: The host whose modules were registered: ``'mmdet'``,
        ``'mmseg'`` or ``'mmpretrain'``.

    Raises:
        ImportError: The host package (or its ``utils``) cannot be imported.
    """
    import mmitpn  # noqa: F401
    import mmitpn.registry  # noqa: F401  (adds the ``mmitpn`` nodes)

    host = get_host_scope(cfg)
    try:
        host_utils = importlib.import_module(f'{host}.utils')
    except ImportError as e:
        raise ImportError(
            f'The config (default_scope={cfg.get("default_scope", None)!r}) '
            f'runs on {host}, which cannot be imported: {e}') from e
    register = getattr(host_utils, 'register_all_modules', None)
    if register is not None:
        register(init_default_scope=False)
    if cfg.get('default_scope', None) is None:
        cfg.default_scope = host
    return host


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
    if launcher == 'none' or _cuda_available():
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
    if launcher != 'none' and _cuda_available():
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


try:
    from mmengine._strategy import FSDPStrategy
    from torch.distributed.fsdp import FullyShardedDataParallel
except ImportError:  # torch without distributed / FSDP
    FSDPStrategy = None

if FSDPStrategy is not None:

    @STRATEGIES.register_module()
    class ResumableFSDPStrategy(FSDPStrategy):
        """MMEngine's ``FSDPStrategy`` that can resume its optimizer.

        MMEngine 0.10 calls ``FSDP.optim_state_dict_to_load(state_dict,
        model, optimizer)``, the argument order of torch < 2.1; newer torch
        takes ``(model, optim, optim_state_dict)`` and resuming fails with
        ``TypeError: unhashable type: 'dict'``. Everything else is
        MMEngine's.
        """

        def load_optim_state_dict(self, state_dict: dict) -> None:
            """Load a (full or local) optimizer state dict.

            Args:
                state_dict (dict): As saved by this strategy.
            """
            to_load = FullyShardedDataParallel.optim_state_dict_to_load
            optim_state_dict = to_load(
                model=self.model,
                optim=self.optim_wrapper.optimizer,
                optim_state_dict=state_dict)
            self.optim_wrapper.load_state_dict(optim_state_dict)


def setup_fsdp(cfg: Config,
               launcher: Optional[str] = None,
               state_dict: str = 'full') -> ConfigDict:
    """Train a config with MMEngine's FSDP strategy.

    Sets ``runner_type='FlexibleRunner'`` and
    ``strategy=ResumableFSDPStrategy`` (MMEngine's ``FSDPStrategy`` with
    resuming fixed for torch >= 2.1) with an
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
    strategy.type = 'ResumableFSDPStrategy'
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
    if not _cuda_available():
        wrapper.setdefault('device_id', 'cpu')
    strategy.model_wrapper = wrapper
    cfg.strategy = strategy
    # FlexibleRunner does not read it; a DDP wrapper would only mislead
    cfg.pop('model_wrapper_cfg', None)
    return cfg.strategy


@OPTIM_WRAPPERS.register_module()
class CPUAmpOptimWrapper(AmpOptimWrapper):
    """:class:`~mmengine.optim.AmpOptimWrapper` for machines without CUDA.

    ``AmpOptimWrapper`` refuses to be built without an accelerator. On CPU,
    autocast only supports bfloat16, which has the exponent range of
    float32 and needs no loss scaling, so the gradient scaler is disabled
    (``scale``, ``unscale_`` and ``update`` do nothing, ``step`` calls the
    optimizer). :func:`setup_amp` picks this wrapper when CUDA is missing.

    Args:
        loss_scale (float | str | dict): Accepted for compatibility with
            ``AmpOptimWrapper`` configs and ignored. Defaults to
            ``'dynamic'``.
        dtype (str | torch.dtype): Autocast data type; only
            ``'bfloat16'`` is supported on CPU. Defaults to ``'bfloat16'``.
        **kwargs: Keyword arguments of
            :class:`~mmengine.optim.OptimWrapper` (``optimizer``,
            ``accumulative_counts``, ``clip_grad``).
    """

    def __init__(self,
                 loss_scale: Union[str, float, dict] = 'dynamic',
                 dtype: Union[str, torch.dtype] = 'bfloat16',
                 **kwargs):
        OptimWrapper.__init__(self, **kwargs)
        if isinstance(dtype, str):
            assert dtype in self.valid_dtypes, (
                f'dtype should be any of {self.valid_dtypes}, got {dtype}')
            dtype = getattr(torch, dtype)
        if dtype != torch.bfloat16:
            raise ValueError('CPU autocast only supports bfloat16, got '
                             f'dtype={dtype}')
        self._scale_update_param = None
        self.loss_scaler = torch.amp.GradScaler('cpu', enabled=False)
        self.cast_dtype = dtype

    def state_dict(self) -> dict:
        """Return the state dict of the optimizer.

        Returns:
            dict: The state dict of :attr:`optimizer`, plus
            ``base_param_settings`` when set; no ``loss_scaler`` entry.
        """
        return OptimWrapper.state_dict(self)


def setup_amp(cfg: Config) -> str:
    """Switch the optimizer wrapper of a config to mixed precision.

    ``OptimWrapper`` (or no type) becomes ``AmpOptimWrapper`` with
    ``loss_scale='dynamic'`` unless the config sets one; an
    ``AmpOptimWrapper`` is kept. Without CUDA, the wrapper becomes
    :class:`CPUAmpOptimWrapper` with ``dtype='bfloat16'`` (CPU autocast has
    no float16) and a warning is printed.

    Args:
        cfg (Config): The config, edited in place. Must have
            ``optim_wrapper``.

    Returns:
        str: The optimizer wrapper type that was set.

    Raises:
        KeyError: The config has no ``optim_wrapper``.
        TypeError: The config uses another (custom) optimizer wrapper,
            which ``--amp`` cannot convert.
    """
    if cfg.get('optim_wrapper', None) is None:
        raise KeyError('`--amp` needs `optim_wrapper` in the config.')
    wrapper = cfg.optim_wrapper
    wrapper_type = wrapper.get('type', 'OptimWrapper')
    known = ('OptimWrapper', 'AmpOptimWrapper', 'CPUAmpOptimWrapper')
    if wrapper_type not in known and \
            wrapper_type.split('.')[-1] not in known:
        raise TypeError(
            f'`--amp` cannot convert the optimizer wrapper {wrapper_type!r}; '
            'use OptimWrapper or AmpOptimWrapper in the config.')
    if wrapper_type.split('.')[-1] == 'AmpOptimWrapper':
        print('optim_wrapper is already an AmpOptimWrapper; kept.')
    wrapper.setdefault('loss_scale', 'dynamic')
    if _cuda_available():
        wrapper.type = 'AmpOptimWrapper'
    else:
        dtype = wrapper.get('dtype', None)
        msg = ('WARNING: CUDA is not available; `--amp` trains with '
               "bfloat16 autocast on CPU (type='CPUAmpOptimWrapper', "
               "dtype='bfloat16'")
        if dtype not in (None, 'bfloat16', torch.bfloat16):
            msg += f', replacing dtype={dtype!r}'
        print(msg + ').')
        warnings.warn('CUDA is not available: AMP runs with bfloat16 on CPU.')
        wrapper.type = 'CPUAmpOptimWrapper'
        wrapper.dtype = 'bfloat16'
    return wrapper.type


def trigger_visualization_hook(cfg: Config,
                               host: Optional[str] = None,
                               show: bool = False,
                               show_dir: Optional[str] = None,
                               wait_time: float = 2.,
                               interval: Optional[int] = None) -> Config:
    """Turn on the host's visualization hook for testing.

    - mmdet: ``DetVisualizationHook`` with ``draw=True`` and
      ``test_out_dir=show_dir`` (saved under ``work_dir/<timestamp>/``);
    - mmseg: ``SegVisualizationHook`` with ``draw=True``, and
      ``cfg.visualizer.save_dir = show_dir``;
    - mmpretrain (also scope ``mmitpn``): ``VisualizationHook`` with
      ``enable=True`` and ``out_dir=show_dir``.

    A missing ``default_hooks.visualization`` is added with the host's type.

    Args:
        cfg (Config): The config, edited in place.
        host (str, optional): ``'mmdet'``, ``'mmseg'`` or ``'mmpretrain'``.
            None takes :func:`get_host_scope`. Defaults to None.
        show (bool): Show the results in a window. Defaults to False.
        show_dir (str, optional): Directory of the painted images; None
            saves none (unless ``show``). Defaults to None.
        wait_time (float): Seconds each shown image stays. Defaults to 2.
        interval (int, optional): Visualize every ``interval``-th sample;
            None keeps the hook's setting. Defaults to None.

    Returns:
        Config: ``cfg``.
    """
    host = host or get_host_scope(cfg)
    if cfg.get('default_hooks', None) is None:
        cfg.default_hooks = ConfigDict()
    hooks = cfg.default_hooks
    if hooks.get('visualization', None) is None:
        hooks.visualization = ConfigDict(type=VIS_HOOK_TYPES[host])
    vis = hooks.visualization
    if show:
        vis.show = True
        vis.wait_time = wait_time
    if interval is not None:
        vis.interval = interval

    if host == 'mmpretrain':
        vis.enable = True
        if show_dir is not None:
            vis.out_dir = show_dir
    else:
        vis.draw = True
        if host == 'mmdet' and show_dir is not None:
            vis.test_out_dir = show_dir
        elif host == 'mmseg' and show_dir is not None:
            if cfg.get('visualizer', None) is None:
                cfg.visualizer = ConfigDict(
                    type='SegLocalVisualizer',
                    vis_backends=[dict(type='LocalVisBackend')],
                    name='visualizer')
            cfg.visualizer.save_dir = show_dir
    return cfg


def setup_tta(cfg: Config, host: Optional[str] = None) -> Config:
    """Wrap the model of a config for test-time augmentation.

    Uses ``cfg.tta_model`` and ``cfg.tta_pipeline`` when present. Without
    them, mmdet gets ``DetTTAModel`` (NMS merge) and mmpretrain
    ``AverageClsScoreTTA``, each with horizontal-flip TTA built from the test
    pipeline; mmseg has no default and needs both in the config.

    Args:
        cfg (Config): The config, edited in place (``model`` and the test
            dataset pipeline).
        host (str, optional): ``'mmdet'``, ``'mmseg'`` or ``'mmpretrain'``.
            None takes :func:`get_host_scope`. Defaults to None.

    Returns:
        Config: ``cfg``.

    Raises:
        KeyError: mmseg config without ``tta_model`` or ``tta_pipeline``.
    """
    host = host or get_host_scope(cfg)
    if host == 'mmseg' and ('tta_model' not in cfg
                            or 'tta_pipeline' not in cfg):
        raise KeyError('`--tta` with mmseg needs `tta_model` and '
                       '`tta_pipeline` in the config.')
    if 'tta_model' not in cfg:
        warnings.warn('No `tta_model` in the config; using the default.')
        if host == 'mmdet':
            cfg.tta_model = dict(
                type='DetTTAModel',
                tta_cfg=dict(
                    nms=dict(type='nms', iou_threshold=0.5),
                    max_per_img=100))
        else:
            cfg.tta_model = dict(type='mmpretrain.AverageClsScoreTTA')

    test_dataset = cfg.test_dataloader.dataset
    while 'dataset' in test_dataset:
        test_dataset = test_dataset['dataset']
    if 'tta_pipeline' not in cfg:
        warnings.warn('No `tta_pipeline` in the config; using flip TTA.')
        pipeline = deepcopy(test_dataset.pipeline)
        pack = pipeline[-1]
        if host == 'mmdet':
            pack = dict(
                type='PackDetInputs',
                meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                           'scale_factor', 'flip', 'flip_direction'))
        pipeline[-1] = dict(
            type='TestTimeAug',
            transforms=[[
                dict(type='RandomFlip', prob=1.),
                dict(type='RandomFlip', prob=0.)
            ], [pack]])
        cfg.tta_pipeline = pipeline
    cfg.model = ConfigDict(**cfg.tta_model, module=cfg.model)
    test_dataset.pipeline = cfg.tta_pipeline
    return cfg
