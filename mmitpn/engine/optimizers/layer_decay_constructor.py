"""Layer-wise learning-rate decay for HiViT / iTPN fine-tuning."""
from typing import List

import torch.nn as nn
from mmengine.logging import MMLogger
from mmengine.model import is_model_wrapper
from mmengine.optim import DefaultOptimWrapperConstructor

from mmitpn.registry import OPTIM_WRAPPER_CONSTRUCTORS

NO_DECAY_KEYS = ('pos_embed', 'mask_token', 'relative_position_bias_table',
                 'gamma1', 'gamma2', 'norm')


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class ITPNLayerDecayOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """Layer-wise lr decay driven by ``backbone.get_layer_depth``.

    Works for any host model with a ``backbone`` attribute (mmdet
    detectors, mmseg segmentors, mmpretrain classifiers and self-supervised
    models). A parameter at depth ``i`` of ``num_layers`` gets
    ``lr * layer_decay_rate ** (num_layers - 1 - i)``: with HiViT's depths
    (see :meth:`HiViTBackbone.get_layer_depth`) the patch embedding gets
    ``d ** (B + 1)`` for B blocks, the first block ``d ** B``, the last
    block ``d``, and the pyramid and heads the base lr. Norms, biases (every
    1-D parameter), position embeddings, mask tokens, relative position
    bias tables and layer-scale gammas get no weight decay. A per-group
    summary is logged when the optimizer is built.

    ``paramwise_cfg`` keys:

    - ``layer_decay_rate`` (float): the decay d. Defaults to 1 (off).
    - ``no_decay_keys`` (Sequence[str]): substrings of parameter names
      without weight decay, on top of 1-D parameters. Defaults to
      :data:`NO_DECAY_KEYS`.
    - ``custom_keys`` (dict): ``{substring: dict(lr_mult=..,
      decay_mult=..)}`` applied on top (first match, longest key first).

    Args:
        optim_wrapper_cfg (dict): Optimizer wrapper config.
        paramwise_cfg (dict, optional): See above. Defaults to None.
    """

    def add_params(self, params: List[dict], module: nn.Module,
                   **kwargs) -> None:
        if is_model_wrapper(module):
            module = module.module
        cfg = self.paramwise_cfg or {}
        unknown = set(cfg) - {'layer_decay_rate', 'no_decay_keys',
                              'custom_keys'}
        if unknown:
            raise ValueError(f'Unknown paramwise_cfg keys {sorted(unknown)} '
                             f'for {type(self).__name__}; use '
                             f'layer_decay_rate, no_decay_keys, custom_keys.')
        backbone = getattr(module, 'backbone', None)
        if backbone is None or not hasattr(backbone, 'get_layer_depth'):
            raise TypeError(
                f'{type(self).__name__} needs a model whose backbone has '
                f'get_layer_depth (e.g. mmitpn.HiViTBackbone); got '
                f'{type(module).__name__}.')
        decay = float(cfg.get('layer_decay_rate', 1.))
        if not 0 < decay <= 1:
            raise ValueError(f'layer_decay_rate must be in (0, 1], got '
                             f'{decay}; use e.g. 0.65 (1 turns decay off).')
        no_decay_keys = tuple(cfg.get('no_decay_keys', NO_DECAY_KEYS))
        custom = sorted(cfg.get('custom_keys', {}).items(),
                        key=lambda kv: -len(kv[0]))
        groups = {}
        for name, param in module.named_parameters():
            if not param.requires_grad:
                continue
            depth, num_layers = backbone.get_layer_depth(name, 'backbone.')
            scale = decay**(num_layers - 1 - depth)
            wd_mult = 0. if param.ndim == 1 or any(
                k in name for k in no_decay_keys) else 1.
            lr_mult = 1.
            for key, mults in custom:
                if key in name:
                    lr_mult = mults.get('lr_mult', 1.)
                    wd_mult *= mults.get('decay_mult', 1.)
                    break
            gid = (depth, wd_mult, lr_mult)
            if gid not in groups:
                groups[gid] = dict(
                    params=[],
                    param_names=[],
                    lr=self.base_lr * scale * lr_mult,
                    weight_decay=(self.base_wd or 0.) * wd_mult,
                    lr_scale=scale * lr_mult,
                    layer_depth=depth)
            groups[gid]['params'].append(param)
            groups[gid]['param_names'].append(name)
        params.extend(groups[k] for k in sorted(groups))
        self._log_summary([groups[k] for k in sorted(groups)], decay)

    @staticmethod
    def _log_summary(groups: List[dict], decay: float) -> None:
        logger = MMLogger.get_current_instance()
        lines = [f'Layer-wise lr decay {decay}: {len(groups)} groups',
                 f'{"depth":>5} {"lr scale":>10} {"wd":>8} {"params":>7}  '
                 f'first parameter']
        for g in groups:
            lines.append(f'{g["layer_depth"]:>5} {g["lr_scale"]:>10.4g} '
                         f'{g["weight_decay"]:>8.3g} '
                         f'{len(g["params"]):>7}  {g["param_names"][0]}')
        logger.info('\n'.join(lines))
