"""Layer-wise learning-rate decay for HiViT / iTPN fine-tuning."""
from typing import List, Optional, Tuple

import torch.nn as nn
from mmengine.logging import MMLogger
from mmengine.model import is_model_wrapper
from mmengine.optim import DefaultOptimWrapperConstructor

from mmitpn.registry import OPTIM_WRAPPER_CONSTRUCTORS

NO_DECAY_KEYS = ('pos_embed', 'mask_token', 'relative_position_bias_table',
                 'gamma1', 'gamma2', 'norm')
LAYER_DECAY_RULES = ('mmitpn', 'official_coco', 'official_ade20k',
                     'official_in1k')
_OFFICIAL_CFG_RULES = ('official_coco', 'official_ade20k')


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class ITPNLayerDecayOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """Layer-wise lr decay over a HiViT backbone, mmitpn's or the official
    iTPN rules.

    Works for any host model with a ``backbone`` attribute (mmdet
    detectors, mmseg segmentors, mmpretrain classifiers and self-supervised
    models). Every parameter gets ``lr = base_lr * scale(layer id)`` and a
    weight decay of the optimizer's ``weight_decay`` or 0. Parameters
    outside the backbone (the iTPN pyramid and the heads) take the top
    layer id. A per-group summary is logged when the optimizer is built.

    ``layer_decay_rule`` chooses how layer ids, scales and weight-decay
    exemptions are computed:

    - ``'mmitpn'`` (default): ids from
      :meth:`HiViTBackbone.get_layer_depth` (embeddings 0, the j-th block
      over all stages j + 1, a merge shares the id of the block before it,
      ``num_layers = blocks + 2``); ``scale = rate ** (num_layers - 1 -
      id)``, so the last block gets ``rate`` and the pyramid 1. No weight
      decay on 1-D parameters and on names containing one of
      ``no_decay_keys``; ``custom_keys`` apply on top.
    - ``'official_coco'``: the official detection
      ``LayerDecayOptimizerConstructor``
      (``det/mmcv_custom/layer_decay_optimizer_constructor.py``). Ids run
      over the official ``backbone.blocks`` list, which holds stage-1
      blocks, merge, stage-2 blocks, merge, stage-3 blocks: the i-th entry
      is id i + 1, the patch embedding (and a mask token) 0, everything
      else ``num_layers - 1`` with ``num_layers = paramwise num_layers +
      2``; ``scale = rate ** (num_layers - 1 - id)``. The position
      embedding (official name ``absolute_pos_embed``) matches none of the
      id-0 names there, so it trains at the full lr, and with the configs'
      ``num_layers`` (30 for iTPN-B, 44 for iTPN-L) the last block gets
      ``rate ** -1``: both official quirks, kept. No weight decay on 1-D
      parameters, names ending ``.bias``, ``_token`` or ``pos_embed``.
    - ``'official_ade20k'``: the official segmentation
      ``iTPNLayerDecayOptimizerConstructor``
      (``seg/mmcv_custom/itpn_layer_decay_optimizer_constructor.py``): ids
      as ``'official_coco'`` but the position embedding is id 0; ``scale =
      (rate ** (13 / num_layers)) ** (num_layers - 1 - id)``. No weight
      decay on 1-D parameters and ``.bias`` only.
    - ``'official_in1k'``: ImageNet fine-tuning, ``param_groups_lrd`` of
      ``itpn_pixel/util/lr_decay.py``: merges do not count, ``num_layers
      = blocks + 1`` (from the backbone; not configurable), embeddings 0,
      the j-th block j + 1, a merge the id of the block before it,
      everything else ``num_layers``; ``scale = (rate ** (13 /
      num_layers)) ** (num_layers - id)``. No weight decay on 1-D
      parameters, the position embedding and relative position bias
      tables.

    The official rules fix their own exemptions: ``no_decay_keys`` and
    ``custom_keys`` are refused with them (the official configs' own
    ``custom_keys`` were never read).

    ``paramwise_cfg`` keys:

    - ``layer_decay_rate`` (float): the rate, in (0, 1]. Defaults to 1
      (off).
    - ``layer_decay_rule`` (str): one of :data:`LAYER_DECAY_RULES`.
      Defaults to ``'mmitpn'``.
    - ``num_layers`` (int): the official config's ``num_layers`` (the
      constructor adds 2, as officially); required by ``'official_coco'``
      and ``'official_ade20k'``, refused by the other rules.
    - ``no_decay_keys`` (Sequence[str]): ``'mmitpn'`` rule only. Defaults
      to :data:`NO_DECAY_KEYS`.
    - ``custom_keys`` (dict): ``'mmitpn'`` rule only; ``{substring:
      dict(lr_mult=.., decay_mult=..)}`` applied on top (first match,
      longest key first).

    When the optimizer config has no ``weight_decay``, decayed parameters
    get the optimizer's own default (e.g. 0.01 for AdamW) and exempt ones 0.

    Args:
        optim_wrapper_cfg (dict): Optimizer wrapper config.
        paramwise_cfg (dict, optional): See above. Defaults to None.
    """

    def add_params(self, params: List[dict], module: nn.Module,
                   **kwargs) -> None:
        if is_model_wrapper(module):
            module = module.module
        cfg = dict(self.paramwise_cfg or {})
        known = {
            'layer_decay_rate', 'layer_decay_rule', 'num_layers',
            'no_decay_keys', 'custom_keys'
        }
        unknown = set(cfg) - known
        if unknown:
            raise ValueError(f'Unknown paramwise_cfg keys {sorted(unknown)} '
                             f'for {type(self).__name__}; use '
                             f'{", ".join(sorted(known))}.')
        backbone = getattr(module, 'backbone', None)
        if backbone is None or not hasattr(backbone, 'get_layer_depth'):
            raise TypeError(
                f'{type(self).__name__} needs a model whose backbone has '
                f'get_layer_depth (e.g. mmitpn.HiViTBackbone); got '
                f'{type(module).__name__}.')
        rate = float(cfg.get('layer_decay_rate', 1.))
        if not 0 < rate <= 1:
            raise ValueError(f'layer_decay_rate must be in (0, 1], got '
                             f'{rate}; use e.g. 0.65 (1 turns decay off).')
        rule = cfg.get('layer_decay_rule', 'mmitpn')
        if rule not in LAYER_DECAY_RULES:
            raise ValueError(f'layer_decay_rule must be one of '
                             f'{LAYER_DECAY_RULES}, got {rule!r}.')
        cfg_layers = self._check_rule_keys(cfg, rule)
        depths = tuple(backbone.depths)
        no_decay_keys = tuple(cfg.get('no_decay_keys', NO_DECAY_KEYS))
        custom = sorted(cfg.get('custom_keys', {}).items(),
                        key=lambda kv: -len(kv[0]))
        groups = {}
        for name, param in module.named_parameters():
            if not param.requires_grad:
                continue
            lr_mult = 1.
            if rule == 'mmitpn':
                layer_id, num_layers = backbone.get_layer_depth(
                    name, 'backbone.')
                scale = rate**(num_layers - 1 - layer_id)
                decay = not (param.ndim == 1 or any(k in name
                                                    for k in no_decay_keys))
                wd_mult = float(decay)
                for key, mults in custom:
                    if key in name:
                        lr_mult = mults.get('lr_mult', 1.)
                        wd_mult *= mults.get('decay_mult', 1.)
                        break
            else:
                layer_id, scale, decay = official_layer_decay(
                    name, param.ndim, depths, rate, rule, cfg_layers)
                wd_mult = float(decay)
            gid = (layer_id, wd_mult, lr_mult)
            if gid not in groups:
                group = dict(params=[],
                             param_names=[],
                             lr=self.base_lr * scale * lr_mult,
                             lr_scale=scale * lr_mult,
                             layer_depth=layer_id)
                # without a configured weight decay, decayed parameters
                # keep the optimizer's own default
                if self.base_wd is not None or wd_mult == 0:
                    group['weight_decay'] = (self.base_wd or 0.) * wd_mult
                groups[gid] = group
            groups[gid]['params'].append(param)
            groups[gid]['param_names'].append(name)
        ordered = [groups[k] for k in sorted(groups)]
        params.extend(ordered)
        self._log_summary(ordered, rate, rule)

    @staticmethod
    def _check_rule_keys(cfg: dict, rule: str) -> Optional[int]:
        """Refuse keys the rule does not read; return its ``num_layers``."""
        if rule != 'mmitpn':
            extra = sorted({'no_decay_keys', 'custom_keys'} & set(cfg))
            if extra:
                raise ValueError(
                    f'paramwise_cfg {extra} cannot be used with '
                    f'layer_decay_rule={rule!r}: the official rule fixes its '
                    f'own weight-decay exemptions; remove {extra} or use '
                    f"layer_decay_rule='mmitpn'.")
        if rule in _OFFICIAL_CFG_RULES:
            n = cfg.get('num_layers')
            if not isinstance(n, int) or isinstance(n, bool) or n < 1:
                raise ValueError(
                    f'layer_decay_rule={rule!r} needs paramwise_cfg '
                    f'num_layers, the official config value (e.g. 30 for '
                    f'iTPN-B, 44 for iTPN-L; 2 is added as officially), got '
                    f'{n!r}.')
            return n
        if 'num_layers' in cfg:
            raise ValueError(
                f'paramwise_cfg num_layers is not read by layer_decay_rule='
                f'{rule!r} (it counts the backbone blocks); remove it.')
        return None

    @staticmethod
    def _log_summary(groups: List[dict], rate: float, rule: str) -> None:
        logger = MMLogger.get_current_instance()
        lines = [
            f'Layer-wise lr decay {rate} ({rule} rule): '
            f'{len(groups)} groups',
            f'{"depth":>5} {"lr scale":>10} {"wd":>8} {"params":>7}  '
            f'first parameter'
        ]
        for g in groups:
            wd = g.get('weight_decay')
            wd = 'default' if wd is None else f'{wd:.3g}'
            lines.append(f'{g["layer_depth"]:>5} {g["lr_scale"]:>10.4g} '
                         f'{wd:>8} {len(g["params"]):>7}  '
                         f'{g["param_names"][0]}')
        logger.info('\n'.join(lines))


def official_block_index(name: str, depths: Tuple[int, int,
                                                  int]) -> Optional[int]:
    """Index in the official ``backbone.blocks`` list (stage-1 blocks,
    merge, stage-2 blocks, merge, stage-3 blocks) of an mmitpn backbone
    parameter name without its ``backbone.`` prefix, or None."""
    parts = name.split('.')
    starts = (0, depths[0] + 1, depths[0] + depths[1] + 2)
    if parts[0] == 'stages' and len(parts) > 2:
        return starts[int(parts[1])] + int(parts[2])
    if parts[0] == 'merges' and len(parts) > 1:
        s = int(parts[1])
        return starts[s] + depths[s]
    return None


def official_layer_decay(name: str, ndim: int, depths: Tuple[int, int, int],
                         rate: float, rule: str,
                         cfg_layers: Optional[int]) -> Tuple[int, float, bool]:
    """``(layer id, lr scale, weight decay on)`` of a parameter under an
    official rule (see :class:`ITPNLayerDecayOptimWrapperConstructor`).

    Args:
        name (str): Parameter name in the host model (``backbone.*``,
            ``neck.*``, heads).
        ndim (int): Number of dimensions of the parameter.
        depths (tuple[int, int, int]): Blocks per backbone stage.
        rate (float): ``layer_decay_rate``.
        rule (str): ``'official_coco'``, ``'official_ade20k'`` or
            ``'official_in1k'``.
        cfg_layers (int, optional): The config's ``num_layers`` (COCO and
            ADE20K rules).
    """
    inner = name[len('backbone.'):] if name.startswith('backbone.') \
        else ''
    head = inner.split('.')[0]
    if rule == 'official_in1k':
        # itpn_pixel/util/lr_decay.py: merges are not counted
        num_layers = sum(depths) + 1
        if head == 'patch_embed' or inner == 'pos_embed':
            layer_id = 0
        elif head in ('stages', 'merges'):
            parts = inner.split('.')
            s = int(parts[1])
            # a merge falls back to the block before it
            j = int(parts[2]) if head == 'stages' else depths[s] - 1
            layer_id = sum(depths[:s]) + j + 1
        else:
            layer_id = num_layers
        scale = (rate**(13 / num_layers))**(num_layers - layer_id)
        decay = not (ndim == 1 or inner == 'pos_embed'
                     or name.endswith('.relative_position_bias_table'))
        return layer_id, scale, decay

    # det / seg mmcv_custom constructors: ids over the official block list
    num_layers = cfg_layers + 2
    index = official_block_index(inner, depths)
    if index is not None:
        layer_id = index + 1
    elif head == 'patch_embed' or inner == 'mask_token' or (
            inner == 'pos_embed' and rule == 'official_ade20k'):
        # COCO: 'backbone.absolute_pos_embed' is none of the id-0 names
        layer_id = 0
    else:
        layer_id = num_layers - 1
    if rule == 'official_coco':
        scale = rate**(num_layers - layer_id - 1)
        decay = not (ndim == 1 or name.endswith('.bias')
                     or name.endswith('_token') or name.endswith('pos_embed'))
    else:
        scale = (rate**(13 / num_layers))**(num_layers - layer_id - 1)
        decay = not (ndim == 1 or name.endswith('.bias'))
    return layer_id, scale, decay
