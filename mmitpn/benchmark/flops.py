"""Model FLOPs (``tools/analysis_tools/get_flops.py``) and model FLOPs
utilisation (MFU, :mod:`.throughput`).

Counts are MMEngine's :class:`FlopAnalyzer` (fvcore convention: one
multiply-add = one "FLOP") plus the two matrix products of the fused
attention (``scaled_dot_product_attention``, which MMEngine's analyser
alone skips); operators the analyser does not know (e.g. RoIAlign, NMS)
are skipped with a warning. Throughput figures count two floating-point
operations per multiply-add, as GPU peak figures do: :func:`mfu` doubles
the multiply-adds.

:func:`get_flops` builds the model of an mmdet, mmseg or mmpretrain config
and counts it on one random image, without its data preprocessor:

- detectors: the whole test-time network (``_forward``: backbone, pyramid,
  RPN and RoI heads on the proposals of the random image), as mmdet's own
  ``get_flops.py`` does; the input is padded to ``pad_size_divisor``;
- segmentors: backbone, pyramid and decode head (``_forward``; the
  auxiliary head only runs in training), one window;
- classifiers: backbone, neck and head;
- anything else (pre-training models): backbone and pyramid.

The backbone + pyramid part is also reported on its own.
"""
import math
from typing import Callable, Optional, Sequence

import torch
import torch.nn as nn
from mmengine.analysis import (ActivationAnalyzer, FlopAnalyzer,
                               parameter_count)
from mmengine.analysis.jit_handles import get_shape
from mmengine.analysis.print_helper import (_format_size,
                                            complexity_stats_table)
from mmengine.config import Config

#: Dense bf16 tensor-core peak (TFLOP/s, no sparsity) by a part of the name
#: ``torch.cuda.get_device_name`` gives, from the vendor's data sheets;
#: the first match counts, so longer names come first. fp16 has the same
#: dense peak on these parts.
PEAK_BF16_TFLOPS = (
    ('H200 NVL', 835.5),
    ('H200', 989.4),
    ('H100 NVL', 835.5),
    ('H100 PCIe', 756.5),
    ('H100', 989.4),  # SXM ("NVIDIA H100 80GB HBM3")
    ('A100', 312.0),
    ('L40S', 362.05),
    ('L4', 121.0),
    ('A10', 125.0),
)


#: Default input of detectors (H, W), as mmdet's own get_flops.py
DEFAULT_DET_SHAPE = (800, 1344)


class CallModule(nn.Module):
    """Expose a function of ``model`` as ``forward`` for the analysers.

    Args:
        model (nn.Module): The module whose parameters the function uses.
        fn (Callable): Called with the inputs.
    """

    def __init__(self, model: nn.Module, fn: Callable) -> None:
        super().__init__()
        self.model = model
        self._fn = fn

    def forward(self, *inputs):
        return self._fn(*inputs)


def sdpa_flop_jit(inputs, outputs) -> int:
    """Multiply-adds of ``aten::scaled_dot_product_attention`` (which
    MMEngine's analyser does not know; HiViT's attention is this one op):
    ``Q K^T`` and ``attn V``, i.e. ``batch * L * S * (E + Ev)`` for queries
    ``(..., L, E)``, keys ``(..., S, E)`` and values ``(..., S, Ev)``.

    Args:
        inputs (list): The traced op's inputs (query, key, value, ...).
        outputs (list): Its outputs (unused).
    """
    q, k, v = (get_shape(x) for x in inputs[:3])
    batch = math.prod(q[:-2])
    return batch * q[-2] * k[-2] * (q[-1] + v[-1])


def _analyzer(module: nn.Module, inputs: tuple) -> FlopAnalyzer:
    flops = FlopAnalyzer(module, inputs).set_op_handle(
        'aten::scaled_dot_product_attention', sdpa_flop_jit)
    return flops


def complexity(module: nn.Module, x: torch.Tensor,
               show_table: bool = False) -> dict:
    """FLOPs (with :func:`sdpa_flop_jit`), parameters and optionally the
    per-module table of ``module(x)``.

    Args:
        module (nn.Module): What to analyse.
        x (torch.Tensor): Its input.
        show_table (bool): Also make the table. Defaults to False.

    Returns:
        dict: ``flops``, ``flops_str``, ``params``, ``params_str`` and
        ``out_table`` ('' unless asked).
    """
    flops = _analyzer(module, (x, ))
    total = flops.total()
    params = parameter_count(module)['']
    table = ''
    if show_table:
        table = '\n' + complexity_stats_table(
            flops=flops, activations=ActivationAnalyzer(module, (x, )),
            show_param_shapes=True)
    return dict(flops=total, flops_str=_format_size(total), params=params,
                params_str=_format_size(params), out_table=table)


def count_macs(model: nn.Module, fn: Callable,
               inputs: Sequence[torch.Tensor]) -> int:
    """Multiply-adds of ``fn(*inputs)`` (a forward, a loss), counted as
    :func:`complexity` counts them, without autograd.

    Args:
        model (nn.Module): The module whose parameters ``fn`` uses.
        fn (Callable): Returns a tensor (or a tuple of tensors).
        inputs (Sequence[torch.Tensor]): Its inputs.
    """
    analyzer = _analyzer(CallModule(model, fn), tuple(inputs))
    analyzer.unsupported_ops_warnings(False)
    analyzer.uncalled_modules_warnings(False)
    with torch.no_grad():
        return int(analyzer.total())


def train_step_macs(forward_macs: int, no_grad_macs: int = 0) -> int:
    """Model multiply-adds of one training step: the backward of a forward
    with autograd costs two forwards (gradients of inputs and of weights),
    so 3x the forward; parts run without autograd (an EMA teacher) count
    once.

    Args:
        forward_macs (int): Forward multiply-adds with autograd.
        no_grad_macs (int): Multiply-adds run without autograd.
            Defaults to 0.
    """
    return 3 * forward_macs + no_grad_macs


def peak_tflops(device_name: str) -> Optional[float]:
    """Dense bf16 peak of a GPU from :data:`PEAK_BF16_TFLOPS`.

    Args:
        device_name (str): E.g. ``torch.cuda.get_device_name()``.

    Returns:
        float | None: TFLOP/s, None for a GPU not in the table.
    """
    for part, tflops in PEAK_BF16_TFLOPS:
        if part in device_name:
            return tflops
    return None


def mfu(step_macs: float, step_s: float, peak: Optional[float]
        ) -> Optional[float]:
    """Model FLOPs utilisation of a step.

    Args:
        step_macs (float): Model multiply-adds of the step (whole batch).
        step_s (float): Time of the step in seconds.
        peak (float, optional): Peak TFLOP/s of the device.

    Returns:
        float | None: ``2 * step_macs / step_s / (peak * 1e12)``; None
        without a peak.
    """
    if not peak:
        return None
    return 2 * step_macs / step_s / (peak * 1e12)


# ------------------------------------------------- models of configs
def _task(model: nn.Module) -> str:
    if hasattr(model, 'rpn_head') or hasattr(model, 'bbox_head') or \
            hasattr(model, 'roi_head'):
        return 'detector'
    if hasattr(model, 'decode_head'):
        return 'segmentor'
    if hasattr(model, 'head') and type(model).__name__.endswith(
            'Classifier'):
        return 'classifier'
    return 'other'


def _default_shape(cfg: Config, task: str) -> Sequence[int]:
    if task == 'detector':
        return DEFAULT_DET_SHAPE
    crop = cfg.get('crop_size', None)
    if task == 'segmentor' and crop is not None:
        return tuple(crop)
    size = cfg.model.get('backbone', {}).get('img_size', 224)
    return (size, size) if isinstance(size, int) else tuple(size)


def _det_forward(model: nn.Module, shape: Sequence[int]) -> Callable:
    from mmdet.structures import DetDataSample
    h, w = shape
    meta = dict(
        img_shape=(h, w),
        ori_shape=(h, w),
        pad_shape=(h, w),
        batch_input_shape=(h, w),
        scale_factor=(1., 1.))

    def fn(x):
        return model._forward(x, [DetDataSample(metainfo=meta)])

    return fn


def _backbone_neck(model: nn.Module) -> Callable:

    def fn(x):
        feats = model.backbone(x)
        neck = getattr(model, 'neck', None)
        return neck(feats) if neck is not None else feats

    return fn


def _pad_to(shape: Sequence[int], divisor: int) -> Sequence[int]:
    return tuple(int(math.ceil(s / divisor)) * divisor for s in shape)


def get_flops(cfg: Config, shape: Optional[Sequence[int]] = None,
              show_table: bool = False) -> dict:
    """Build the model of ``cfg`` and analyse it.

    Args:
        cfg (Config): The config.
        shape (Sequence[int], optional): ``(H, W)`` of the input; None
            takes the default of the task (see the module docstring).
        show_table (bool): Keep the per-module table in the result.
            Defaults to False.

    Returns:
        dict: ``task``, ``shape`` (the analysed input size), ``params``,
        ``flops`` (whole model, see the module docstring) and
        ``backbone_params``, ``backbone_flops`` (backbone + pyramid), each
        with a ``*_str`` form, and ``table`` (empty unless asked).
    """
    from mmengine.model import revert_sync_batchnorm
    from mmengine.registry import DefaultScope

    from mmitpn.utils.hosts import register_host_modules
    host = register_host_modules(cfg)
    registry = __import__(f'{host}.registry', fromlist=['MODELS']).MODELS
    model_cfg = cfg.model.copy()
    # nothing to load: weights do not change the counts
    for key in ('backbone', 'neck'):
        sub = model_cfg.get(key, None)
        if isinstance(sub, dict) and sub.get('init_cfg', None) is not None:
            model_cfg[key] = dict(sub, init_cfg=None)
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope',
                                                      host)):
        model = registry.build(model_cfg)
    model = revert_sync_batchnorm(model).eval()

    task = _task(model)
    shape = tuple(shape) if shape else tuple(_default_shape(cfg, task))
    if len(shape) == 1:
        shape = (shape[0], shape[0])
    if task == 'detector':
        divisor = getattr(model.data_preprocessor, 'pad_size_divisor', 1)
        shape = _pad_to(shape, max(int(divisor or 1), 16))
    else:
        shape = _pad_to(shape, 16)  # HiViT takes multiples of 16
    x = torch.randn(1, 3, *shape)

    if task == 'detector':
        full = _det_forward(model, shape)
    elif task == 'segmentor':
        full = model._forward
    elif task == 'classifier':
        full = lambda t: model(t, mode='tensor')  # noqa: E731
    else:
        full = _backbone_neck(model)

    result = dict(task=task, shape=shape, model_type=type(model).__name__)
    with torch.no_grad():
        info = complexity(CallModule(model, full), x, show_table)
        result.update(
            flops=info['flops'],
            flops_str=info['flops_str'],
            params=info['params'],
            params_str=info['params_str'],
            table=info['out_table'])
        bn = nn.ModuleDict({'backbone': model.backbone})
        if getattr(model, 'neck', None) is not None:
            bn['neck'] = model.neck
        bn_info = complexity(CallModule(bn, _backbone_neck(model)), x)
    bn_params = parameter_count(bn)['']
    result.update(
        backbone_flops=bn_info['flops'],
        backbone_flops_str=bn_info['flops_str'],
        backbone_params=bn_params,
        backbone_params_str=_format_size(bn_params))
    return result
