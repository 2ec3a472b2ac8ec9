"""Whether a checkpoint fills a whole model."""
import logging
import re
from typing import Tuple

from mmengine.logging import print_log


def _group(keys) -> str:
    """``roi_head (120), rpn_head (4)``: keys counted by their first
    component."""
    counts: dict = {}
    for k in keys:
        head = k.split('.')[0]
        counts[head] = counts.get(head, 0) + 1
    parts = [f'{h} ({n})' for h, n in sorted(
        counts.items(), key=lambda kv: -kv[1])]
    return ', '.join(parts[:4]) + (' ...' if len(parts) > 4 else '')


def check_model_checkpoint(model,
                           checkpoint: dict,
                           filename: str = 'the checkpoint',
                           allow_partial: bool = False) -> Tuple[int, int]:
    """Check that a checkpoint fills a whole model, before it loads.

    ``tools/test.py`` runs it on the checkpoint it is given: metrics of a
    model whose heads (or backbone) kept their random initialisation are
    meaningless (e.g. a pre-training, backbone-only or UPerNet checkpoint
    given to a Mask R-CNN config report ``bbox_mAP 0.000``, exit 0).

    Args:
        model (nn.Module): The model (unwrapped).
        checkpoint (dict): As loaded; its ``state_dict`` (or the dict
            itself) is compared, with a leading ``module.`` removed as
            MMEngine's loader does.
        filename (str): The file, for the message.
        allow_partial (bool): Log the missing and unexpected keys at
            WARNING instead of stopping. Defaults to False.

    Returns:
        tuple[int, int]: Numbers of missing and unexpected keys.

    Raises:
        ValueError: Keys are missing or unexpected and not
            ``allow_partial``: one line with the counts, the modules
            concerned and the fix.
    """
    state_dict = checkpoint.get('state_dict', checkpoint)
    ckpt_keys = {re.sub(r'^module\.', '', k) for k in state_dict}
    own = model.state_dict()
    missing = [k for k in own if k not in ckpt_keys]
    unexpected = sorted(k for k in ckpt_keys if k not in own)
    if not missing and not unexpected:
        return 0, 0
    name = type(model).__name__
    what = (f'{filename!r} fills {len(own) - len(missing)} of {len(own)} '
            f'tensors of {name}: {len(missing)} missing '
            f'({_group(missing) or "none"}), {len(unexpected)} unexpected '
            f'({_group(unexpected) or "none"})')
    if not allow_partial:
        raise ValueError(
            f'{what}; it is not a checkpoint of this config (e.g. a '
            f'pre-training, backbone-only or other-model file): test a '
            f'checkpoint trained with this config, or pass --allow-partial '
            f'to report metrics anyway.')
    print_log(f'--allow-partial: {what}; the missing tensors keep their '
              f'initialisation:\n' + '\n'.join(
                  [f'  missing     {k}' for k in missing] +
                  [f'  unexpected  {k}' for k in unexpected]),
              logger='current', level=logging.WARNING)
    return len(missing), len(unexpected)
