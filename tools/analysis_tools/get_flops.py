"""Count the parameters and FLOPs of a model of any mmitpn config.

Works on mmdet (detectors), mmseg (segmentors) and mmpretrain (classifiers,
and mmitpn's pre-training models) configs. The model runs on one random
image of ``--shape`` (default: 1344x800 for detectors, the crop size for
segmentors, the backbone's ``img_size`` otherwise), without its data
preprocessor:

- detectors: the whole test-time network (``_forward``: backbone, pyramid,
  RPN and RoI heads on the proposals of the random image), as mmdet's own
  ``get_flops.py`` does; the input is padded to ``pad_size_divisor``;
- segmentors: backbone, pyramid and decode head (``_forward``; the
  auxiliary head only runs in training), one window;
- classifiers: backbone, neck and head;
- anything else (pre-training models): backbone and pyramid.

The backbone + pyramid part is also reported on its own. FLOPs count one
multiply-add as one FLOP (fvcore convention), including the two matrix
products of the fused attention (``scaled_dot_product_attention``, which
MMEngine's analyser alone skips); operators the analyser does not know
(e.g. RoIAlign, NMS) are skipped with a warning.

Example::

    python tools/analysis_tools/get_flops.py \\
        configs/itpn/itpn-base-pixel_mask-rcnn_8xb8-amp-1x_coco.py \\
        --shape 800 1344
"""
import argparse
import math
import os.path as osp
import sys
from typing import Callable, Optional, Sequence

import torch
import torch.nn as nn

try:
    import mmitpn  # noqa: F401
except ImportError:  # not installed: run from a checkout
    sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(
        osp.abspath(__file__)))))
    import mmitpn  # noqa: F401

from mmengine.analysis import (ActivationAnalyzer, FlopAnalyzer,
                               parameter_count)
from mmengine.analysis.jit_handles import get_shape
from mmengine.analysis.print_helper import (_format_size,
                                            complexity_stats_table)
from mmengine.config import Config, DictAction
from mmengine.model import revert_sync_batchnorm
from mmengine.registry import DefaultScope

from mmitpn.utils import register_host_modules

DEFAULT_DET_SHAPE = (800, 1344)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Count the parameters and FLOPs of a model')
    parser.add_argument('config', help='config file path')
    parser.add_argument(
        '--shape',
        type=int,
        nargs='+',
        default=None,
        help='input size: H W (or one value for a square); by default the '
        'crop / pre-training size, 800 1344 for detectors')
    parser.add_argument(
        '--show-table',
        action='store_true',
        help='also print the per-module complexity table')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override some settings in the used config, the key-value pair '
        'in xxx=yyy format will be merged into config file.')
    return parser.parse_args(argv)


class _Call(nn.Module):
    """Expose one method of ``model`` as ``forward`` for the analysers."""

    def __init__(self, model: nn.Module, fn: Callable) -> None:
        super().__init__()
        self.model = model
        self._fn = fn

    def forward(self, x):
        return self._fn(x)


def sdpa_flop_jit(inputs, outputs) -> int:
    """Multiply-adds of ``aten::scaled_dot_product_attention`` (which
    MMEngine's analyser does not know; HiViT's attention is this one op):
    ``Q K^T`` and ``attn V``, i.e. ``batch * L * S * (E + Ev)`` for queries
    ``(..., L, E)``, keys ``(..., S, E)`` and values ``(..., S, Ev)``."""
    q, k, v = (get_shape(x) for x in inputs[:3])
    batch = math.prod(q[:-2])
    return batch * q[-2] * k[-2] * (q[-1] + v[-1])


def complexity(module: nn.Module, x: torch.Tensor,
               show_table: bool = False) -> dict:
    """FLOPs (with :func:`sdpa_flop_jit`), parameters and optionally the
    per-module table of ``module(x)``.

    Args:
        module (nn.Module): What to analyse.
        x (torch.Tensor): Its input.
        show_table (bool): Also make the table. Defaults to False.
    """
    flops = FlopAnalyzer(module, (x, )).set_op_handle(
        'aten::scaled_dot_product_attention', sdpa_flop_jit)
    total = flops.total()
    params = parameter_count(module)['']
    table = ''
    if show_table:
        table = '\n' + complexity_stats_table(
            flops=flops, activations=ActivationAnalyzer(module, (x, )),
            show_param_shapes=True)
    return dict(flops=total, flops_str=_format_size(total), params=params,
                params_str=_format_size(params), out_table=table)


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
        info = complexity(_Call(model, full), x, show_table)
        result.update(
            flops=info['flops'],
            flops_str=info['flops_str'],
            params=info['params'],
            params_str=info['params_str'],
            table=info['out_table'])
        bn = nn.ModuleDict({'backbone': model.backbone})
        if getattr(model, 'neck', None) is not None:
            bn['neck'] = model.neck
        bn_info = complexity(_Call(bn, _backbone_neck(model)), x)
    bn_params = parameter_count(bn)['']
    result.update(
        backbone_flops=bn_info['flops'],
        backbone_flops_str=bn_info['flops_str'],
        backbone_params=bn_params,
        backbone_params_str=_format_size(bn_params))
    return result


def main(argv=None):
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.shape is not None and len(args.shape) not in (1, 2):
        raise SystemExit('--shape takes H W or one size.')
    r = get_flops(cfg, args.shape, args.show_table)
    line = '=' * 40
    print(f'{line}\nConfig: {args.config}\n'
          f'Model: {r["model_type"]} ({r["task"]})\n'
          f'Input shape: (1, 3, {r["shape"][0]}, {r["shape"][1]})\n'
          f'Params: {r["params_str"]}\n'
          f'FLOPs: {r["flops_str"]}\n'
          f'Backbone + neck: Params {r["backbone_params_str"]}, '
          f'FLOPs {r["backbone_flops_str"]}\n{line}')
    if r['table']:
        print(r['table'])
    print('FLOPs count multiply-adds; operators the analyser does not know '
          '(RoIAlign, NMS, ...) are not counted: check before you cite.')


if __name__ == '__main__':
    main()
