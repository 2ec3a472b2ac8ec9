"""State-dict checks shared by the mmitpn modules."""
from typing import Dict, List

import torch
import torch.nn as nn
from mmengine.logging import print_log


def check_state_dict_shapes(module: nn.Module, state_dict: Dict[str,
                                                                torch.Tensor],
                            prefix: str) -> None:
    """Raise one clear error listing every tensor of ``state_dict`` (under
    ``prefix``) whose shape differs from ``module``'s, instead of the
    warnings that a non-strict load prints (and then trains from random
    weights).

    Meant for a load-state-dict pre-hook, after resizable tensors (position
    embeddings, relative position tables) have been resized.

    Args:
        module (nn.Module): The module being loaded.
        state_dict (dict): The incoming state dict.
        prefix (str): The module's prefix in ``state_dict``.
    """
    own = dict(module.named_parameters())
    own.update(module.named_buffers())
    rows = []
    for name, tensor in own.items():
        key = prefix + name
        if key in state_dict and \
                tuple(state_dict[key].shape) != tuple(tensor.shape):
            rows.append((key, tuple(state_dict[key].shape),
                         tuple(tensor.shape)))
    if rows:
        width = max(len(r[0]) for r in rows)
        table = '\n'.join(f'  {k:<{width}}  checkpoint {str(a):<18} model '
                          f'{b}' for k, a, b in rows)
        raise ValueError(
            f'The checkpoint belongs to another architecture: {len(rows)} '
            f'tensors of {type(module).__name__} have other shapes (check '
            f'arch / widths / depths in the config, or convert the '
            f'checkpoint):\n{table}')


def _names(keys: List[str], limit: int = 8) -> str:
    if not keys:
        return 'none'
    more = f' (+{len(keys) - limit} more)' if len(keys) > limit else ''
    return ', '.join(keys[:limit]) + more


def log_state_dict_match(module: nn.Module, state_dict: Dict[str,
                                                             torch.Tensor],
                         prefix: str) -> None:
    """Log which of ``module``'s tensors a checkpoint loads, which it leaves
    missing (they keep their initialisation) and which checkpoint keys
    under ``prefix`` it does not use.

    MMEngine's non-strict loading (``init_cfg`` / ``load_from``) only warns
    about mismatches; this one line per module also says how much *was*
    loaded, so a fine-tuning log shows at a glance that the backbone and
    the pyramid came from the checkpoint. Meant for a load-state-dict
    pre-hook.

    Args:
        module (nn.Module): The module being loaded.
        state_dict (dict): The incoming state dict.
        prefix (str): The module's prefix in ``state_dict``.
    """
    expected = list(module.state_dict(keep_vars=True))
    given = [k[len(prefix):] for k in state_dict if k.startswith(prefix)]
    given_set, expected_set = set(given), set(expected)
    loaded = [k for k in expected if k in given_set]
    missing = [k for k in expected if k not in given_set]
    unexpected = [k for k in given if k not in expected_set]
    where = f" under '{prefix}'" if prefix else ''
    print_log(
        f'{type(module).__name__}{where}: loaded {len(loaded)} of '
        f'{len(expected)} tensors from the checkpoint; missing (kept at '
        f'their initialisation): {_names(missing)}; unexpected (ignored): '
        f'{_names(unexpected)}',
        logger='current')
