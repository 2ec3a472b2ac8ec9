"""``--amp``: mixed precision for a config, on GPUs and on CPUs."""
import warnings

import torch
from mmengine.config import Config

from . import device


def setup_amp(cfg: Config) -> str:
    """Switch the optimizer wrapper of a config to mixed precision.

    ``OptimWrapper`` (or no type) becomes ``AmpOptimWrapper`` with
    ``loss_scale='dynamic'`` unless the config sets one; an
    ``AmpOptimWrapper`` is kept. Without CUDA, the wrapper becomes
    :class:`mmitpn.engine.optimizers.CPUAmpOptimWrapper` with
    ``dtype='bfloat16'`` (CPU autocast has no float16) and a warning is
    printed; MMCV's NMS and RoI ops then run in float32 inside its autocast
    context (:func:`mmitpn.utils.mmcv_ops.mmcv_ops_in_float32`), so
    Mask R-CNN and Cascade configs train with ``--amp`` on CPU too.

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
    if device.cuda_available():
        wrapper.type = 'AmpOptimWrapper'
    else:
        dtype = wrapper.get('dtype', None)
        msg = ('WARNING: CUDA is not available; `--amp` trains with '
               "bfloat16 autocast on CPU (type='mmitpn.CPUAmpOptimWrapper', "
               "dtype='bfloat16'")
        if dtype not in (None, 'bfloat16', torch.bfloat16):
            msg += f', replacing dtype={dtype!r}'
        print(msg + ').')
        warnings.warn('CUDA is not available: AMP runs with bfloat16 on CPU.')
        wrapper.type = 'mmitpn.CPUAmpOptimWrapper'
        wrapper.dtype = 'bfloat16'
    return wrapper.type
