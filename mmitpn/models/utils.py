"""State-dict checks shared by the mmitpn modules."""
from typing import Dict

import torch
import torch.nn as nn


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
