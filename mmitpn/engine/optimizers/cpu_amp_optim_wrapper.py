"""Mixed precision on machines without CUDA."""
from typing import Union

import torch
from mmengine.optim import AmpOptimWrapper, OptimWrapper
from mmengine.registry import OPTIM_WRAPPERS


@OPTIM_WRAPPERS.register_module()
class CPUAmpOptimWrapper(AmpOptimWrapper):
    """:class:`~mmengine.optim.AmpOptimWrapper` for machines without CUDA.

    ``AmpOptimWrapper`` refuses to be built without an accelerator. On CPU,
    autocast only supports bfloat16, which has the exponent range of
    float32 and needs no loss scaling, so the gradient scaler is disabled
    (``scale``, ``unscale_`` and ``update`` do nothing, ``step`` calls the
    optimizer). MMCV's NMS and RoI ops, whose CPU kernels take float32
    only, run in float32 once this wrapper is built
    (:func:`mmitpn.utils.mmcv_ops.run_mmcv_ops_in_float32`).
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
        # MMCV's NMS / RoI CPU kernels take float32 only
        from mmitpn.utils.mmcv_ops import run_mmcv_ops_in_float32
        run_mmcv_ops_in_float32()

    def state_dict(self) -> dict:
        """Return the state dict of the optimizer.

        Returns:
            dict: The state dict of :attr:`optimizer`, plus
            ``base_param_settings`` when set; no ``loss_scaler`` entry.
        """
        return OptimWrapper.state_dict(self)
