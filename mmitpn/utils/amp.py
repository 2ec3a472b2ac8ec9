"""``--amp``: mixed precision for a config, on GPUs and on CPUs."""
import warnings

import torch
from mmengine.config import Config

from mmitpn.engine.optimizers import CPUAmpOptimWrapper  # noqa: F401
from . import device


#: Model config keys whose modules run MMCV's NMS / RoIAlign, which have
#: float32-only CPU kernels (``expected scalar type Float but found
#: BFloat16`` under CPU autocast).
MMCV_OP_KEYS = ('rpn_head', 'roi_head')
#: ``type`` values of MMCV op configs.
MMCV_OP_TYPES = ('nms', 'soft_nms', 'RoIAlign', 'RoIPool')


def mmcv_float32_ops(model_cfg) -> list:
    """Where a model config uses MMCV ops without bfloat16 CPU kernels.

    Args:
        model_cfg (dict | None): ``cfg.model``.

    Returns:
        list[str]: Config paths, e.g. ``['model.rpn_head',
        'model.roi_head']``; empty when none.
    """
    found = []

    def visit(node, path):
        if isinstance(node, dict):
            if node.get('type', None) in MMCV_OP_TYPES:
                found.append(path)
                return
            for key, value in node.items():
                if key in MMCV_OP_KEYS and value:
                    found.append(f'{path}.{key}')
                else:
                    visit(value, f'{path}.{key}')
        elif isinstance(node, (list, tuple)):
            for i, value in enumerate(node):
                visit(value, f'{path}[{i}]')

    visit(model_cfg, 'model')
    return found


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
        ValueError: No CUDA, and the model runs MMCV ops (NMS, RoIAlign)
            whose CPU kernels take float32 only (every Mask R-CNN /
            Cascade config): one line saying to train without ``--amp``
            on CPU.
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
    if not device.cuda_available():
        ops = mmcv_float32_ops(cfg.get('model', None))
        if ops:
            model_type = (cfg.get('model', None) or {}).get('type', 'model')
            raise ValueError(
                f'--amp on CPU: the {model_type} uses MMCV ops whose CPU '
                f'kernels take float32 only ({", ".join(ops[:2])}), so '
                f'bfloat16 autocast fails in them; train it on CPU without '
                f'--amp (on CUDA GPUs --amp runs float16 AMP).')
    wrapper.setdefault('loss_scale', 'dynamic')
    if device.cuda_available():
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
