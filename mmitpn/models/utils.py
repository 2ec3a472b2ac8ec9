"""State-dict checks shared by the mmitpn modules."""
from typing import Dict, List

import torch
import torch.nn as nn
from mmengine.logging import print_log


def _names(keys: List[str], limit: int = 8) -> str:
    if not keys:
        return 'none'
    more = f' (+{len(keys) - limit} more)' if len(keys) > limit else ''
    return ', '.join(keys[:limit]) + more


def check_state_dict(module: nn.Module,
                     state_dict: Dict[str, torch.Tensor],
                     prefix: str) -> None:
    """Check a checkpoint against ``module`` before it loads, and log what
    it loads.

    - Every tensor of ``state_dict`` (under ``prefix``) whose shape differs
      from ``module``'s is listed in one clear error, instead of the
      warnings that a non-strict load prints (and then trains from random
      weights).
    - One log line says how many of ``module``'s tensors the checkpoint
      loads, which it leaves missing (they keep their initialisation) and
      which of its keys are unused. MMEngine's non-strict loading
      (``init_cfg`` / ``load_from``) only warns about mismatches; this line
      shows at a glance that the backbone and the pyramid of a fine-tuning
      run came from the checkpoint.

    Meant for a load-state-dict pre-hook, after resizable tensors (position
    embeddings, relative position tables) have been resized.

    Args:
        module (nn.Module): The module being loaded.
        state_dict (dict): The incoming state dict.
        prefix (str): The module's prefix in ``state_dict``.
    """
    own = module.state_dict(keep_vars=True)
    rows, missing = [], []
    for name, tensor in own.items():
        src = state_dict.get(prefix + name)
        if src is None:
            missing.append(name)
        elif tuple(src.shape) != tuple(tensor.shape):
            rows.append((prefix + name, tuple(src.shape),
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
    unexpected = [
        k[len(prefix):] for k in state_dict
        if k.startswith(prefix) and k[len(prefix):] not in own
    ]
    where = f" under '{prefix}'" if prefix else ''
    print_log(
        f'{type(module).__name__}{where}: loaded {len(own) - len(missing)} '
        f'of {len(own)} tensors from the checkpoint; missing (kept at their '
        f'initialisation): {_names(missing)}; unexpected (ignored): '
        f'{_names(unexpected)}',
        logger='current')
