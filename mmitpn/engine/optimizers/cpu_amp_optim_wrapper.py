"""Mixed precision on machines without CUDA."""
from contextlib import contextmanager
from typing import Union

import torch
import torch.nn as nn
from mmengine.optim import AmpOptimWrapper, OptimWrapper

from mmitpn.registry import OPTIM_WRAPPERS
from mmitpn.utils.mmcv_ops import mmcv_ops_in_float32


@OPTIM_WRAPPERS.register_module()
class CPUAmpOptimWrapper(AmpOptimWrapper):
    """:class:`~mmengine.optim.AmpOptimWrapper` for machines without CUDA.

    ``AmpOptimWrapper`` refuses to be built without an accelerator. On CPU,
    autocast only supports bfloat16, which has the exponent range of
    float32 and needs no loss scaling, so the gradient scaler is disabled
    (``scale``, ``unscale_`` and ``update`` do nothing, ``step`` calls the
    optimizer). MMCV's NMS and RoI ops, whose CPU kernels take float32
    only, run in float32 inside :meth:`optim_context` and are restored when
    it ends (:func:`mmitpn.utils.mmcv_ops.mmcv_ops_in_float32`).
    :func:`mmitpn.utils.setup_amp` picks this wrapper when CUDA is
    missing.

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

    @contextmanager
    def optim_context(self, model: nn.Module):
        """Autocast (bfloat16) and gradient accumulation as
        ``AmpOptimWrapper``, with MMCV's NMS / RoI ops in float32.

        Args:
            model (nn.Module): The training model.
        """
        with super().optim_context(model), mmcv_ops_in_float32():
            yield

    def state_dict(self) -> dict:
        """Return the state dict of the optimizer.

        Returns:
            dict: The state dict of :attr:`optimizer`, plus
            ``base_param_settings`` when set; no ``loss_scaler`` entry.
        """
        return OptimWrapper.state_dict(self)
