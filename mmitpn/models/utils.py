"""State-dict checks shared by the mmitpn modules."""
import logging
from collections import defaultdict
from typing import Dict, List, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmengine.logging import print_log

#: Tensors of a fine-tuning architecture that a pre-training checkpoint may
#: not have at all (relative position tables, decomposed relative
#: positions, layer scale). When the checkpoint holds *none* of a kind, the
#: module keeps its own initialisation for that kind, as the official
#: fine-tuning code does; a checkpoint holding some but not all of a kind
#: is incomplete and stops the load.
OPTIONAL_KINDS = ('relative_position_bias_table', 'rel_pos_h', 'rel_pos_w',
                  'gamma1', 'gamma2', 'gamma_1', 'gamma_2')
#: Checkpoint tensors that only pre-training uses and that a fine-tuning
#: module without them ignores.
PRETRAIN_ONLY = ('mask_token', )

AllowPartial = Union[bool, Tuple[str, ...]]


def _names(keys: List[str], limit: int = 3) -> str:
    if not keys:
        return 'none'
    more = f' (+{len(keys) - limit} more)' if len(keys) > limit else ''
    return ', '.join(keys[:limit]) + more


def parse_allow_partial_load(value, owner: str) -> AllowPartial:
    """Check the ``allow_partial_load`` argument of a module.

    Args:
        value (bool | Sequence[str]): False (all or nothing), True (any
            partial load, logged at WARNING) or key prefixes relative to the
            module (only checkpoint keys under them may be dropped).
        owner (str): The module's class name, for the message.

    Returns:
        bool | tuple[str]: ``value`` as a bool or a tuple of prefixes.

    Raises:
        TypeError: ``value`` is a single string or holds non-strings.
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, str) or not isinstance(value, Sequence) or \
            not all(isinstance(p, str) and p for p in value):
        raise TypeError(
            f'{owner}: allow_partial_load must be True, False or a tuple of '
            f"key prefixes, e.g. ('blocks_8.1.', 'blocks_4.1.'), got "
            f'{value!r}.')
    return tuple(value)


def _list_lengths(keys) -> Dict[str, int]:
    """Length of every ``ModuleList`` named in ``keys`` (``stages.2.5.x``
    gives ``stages.2``: 6)."""
    lengths: Dict[str, int] = defaultdict(int)
    for key in keys:
        parts = key.split('.')
        for i in range(1, len(parts)):
            if parts[i].isdigit() and i + 1 < len(parts):
                name = '.'.join(parts[:i])
                lengths[name] = max(lengths[name], int(parts[i]) + 1)
    return lengths


def _fix_hint(module: nn.Module, own: List[str], incoming: List[str],
              loaded: int) -> str:
    """The likely fix of an incomplete load, in words."""
    own_set = set(own)
    if loaded == 0 and incoming:
        # a prefix that, stripped, makes the keys match
        for key in incoming:
            parts = key.split('.')
            for i in range(1, len(parts)):
                if '.'.join(parts[i:]) in own_set:
                    head = '.'.join(parts[:i]) + '.'
                    return (f"its keys start with '{head}': set "
                            f"init_cfg=dict(type='Pretrained', "
                            f"checkpoint=..., prefix='{head}')")
        return ('it is not a checkpoint of this module (another model or '
                'an unconverted file): point it at an mmitpn / converted '
                'iTPN checkpoint (tools/model_converters/itpn_to_mmitpn.py)')
    ours, theirs = _list_lengths(own), _list_lengths(incoming)
    diffs = [f'{name} has {theirs[name]} blocks in the checkpoint, '
             f'{n} here' for name, n in sorted(ours.items())
             if name in theirs and theirs[name] != n]
    if diffs:
        what = ('fpn_depth' if any(d.startswith('blocks_') for d in diffs)
                else 'arch (depths)')
        depths = tuple(theirs.get(f'stages.{i}', 0) for i in range(3))
        zoo = getattr(module, 'arch_zoo', None) or {}
        names = sorted(n for n, a in zoo.items()
                       if tuple(a.get('depths', ())) == depths and
                       a.get('embed_dims') == getattr(module, 'embed_dims',
                                                      None))
        named = f" (arch='{max(names, key=len)}')" if names else ''
        return (f'another depth ({"; ".join(diffs[:3])}): set {what} to '
                f"the checkpoint's{named}")
    return ("set the config to the checkpoint's architecture (arch, "
            'use_rpe, layer_scale_init_value), or convert the checkpoint')


def check_state_dict(module: nn.Module,
                     state_dict: Dict[str, torch.Tensor],
                     prefix: str,
                     allow_partial_load: AllowPartial = False) -> None:
    """Check a checkpoint against ``module`` before it loads, and log what
    it loads.

    - Every tensor of ``state_dict`` (under ``prefix``) whose shape differs
      from ``module``'s is listed in one clear error (the table of a
      checkpoint of another architecture).
    - **All or nothing**: a checkpoint that leaves tensors of ``module``
      missing, or brings keys under ``prefix`` that ``module`` does not have
      (blocks of another depth), stops with one line: the counts, the
      first keys and the likely fix (``prefix='backbone.'``, another arch,
      ``fpn_depth``). Two exceptions need no opt-in: a kind of
      :data:`OPTIONAL_KINDS` the checkpoint has none of (e.g. relative
      position tables of a fine-tuning model, absent from pre-training) is
      initialised by the module, and :data:`PRETRAIN_ONLY` keys are
      ignored.
    - ``allow_partial_load=True`` accepts any partial load, and a tuple of
      key prefixes (relative to the module) accepts dropping exactly the
      checkpoint keys under them; both log the missing and dropped keys at
      WARNING with a table. A checkpoint that loads no tensor at all
      always stops.
    - One INFO line says how many of ``module``'s tensors loaded.

    The same pre-hook runs when a whole model loads (resume, ``load_from``,
    ``tools/test.py``): a complete checkpoint passes silently but for the
    INFO line.

    Args:
        module (nn.Module): The module being loaded.
        state_dict (dict): The incoming state dict.
        prefix (str): The module's prefix in ``state_dict``.
        allow_partial_load (bool | tuple[str]): See above. Defaults to
            False.

    Raises:
        ValueError: Shapes differ, or the load is incomplete without the
            opt-in, or nothing loads.
    """
    name = type(module).__name__
    own = module.state_dict(keep_vars=True)
    rows, missing = [], []
    for key, tensor in own.items():
        src = state_dict.get(prefix + key)
        if src is None:
            missing.append(key)
        elif tuple(src.shape) != tuple(tensor.shape):
            rows.append((prefix + key, tuple(src.shape),
                         tuple(tensor.shape)))
    if rows:
        width = max(len(r[0]) for r in rows)
        table = '\n'.join(f'  {k:<{width}}  checkpoint {str(a):<18} model '
                          f'{b}' for k, a, b in rows)
        raise ValueError(
            f'The checkpoint belongs to another architecture: {len(rows)} '
            f'tensors of {name} have other shapes (check '
            f'arch / widths / depths in the config, or convert the '
            f'checkpoint):\n{table}')
    incoming = [k[len(prefix):] for k in state_dict if k.startswith(prefix)]
    unexpected = [k for k in incoming if k not in own]
    loaded = len(own) - len(missing)

    # kinds the checkpoint has none of: the module initialises them
    initialised = []
    for kind in OPTIONAL_KINDS:
        ours = [k for k in missing if k.split('.')[-1] == kind]
        if ours and not any(k.split('.')[-1] == kind for k in incoming):
            initialised += ours
    missing = [k for k in missing if k not in initialised]
    ignored = [k for k in unexpected if k.split('.')[-1] in PRETRAIN_ONLY]
    unexpected = [k for k in unexpected if k not in ignored]

    where = f" under '{prefix}'" if prefix else ''
    if loaded == 0 and own:
        raise ValueError(
            f'{name}{where}: the checkpoint loads 0 of {len(own)} tensors '
            f'({len(incoming)} keys{where}, e.g. {_names(incoming)}); '
            f'{_fix_hint(module, list(own), incoming, loaded)}.')
    if allow_partial_load is True:
        allowed_missing, allowed_unexpected = missing, unexpected
    elif allow_partial_load:
        allowed_missing = []
        allowed_unexpected = [
            k for k in unexpected if k.startswith(tuple(allow_partial_load))
        ]
    else:
        allowed_missing, allowed_unexpected = [], []
    bad_missing = [k for k in missing if k not in allowed_missing]
    bad_unexpected = [k for k in unexpected if k not in allowed_unexpected]
    if bad_missing or bad_unexpected:
        raise ValueError(
            f'{name}{where}: incomplete load, {loaded} of {len(own)} '
            f'tensors from the checkpoint, {len(bad_missing)} missing '
            f'({_names(bad_missing)}), {len(bad_unexpected)} unexpected '
            f'({_names(bad_unexpected)}); '
            f'{_fix_hint(module, list(own), incoming, loaded)}, or pass '
            f'allow_partial_load=True (or a tuple of the key prefixes to '
            f'drop) to {name} to load it partially on purpose.')
    if allowed_missing or allowed_unexpected:
        table = '\n'.join(
            [f'  missing (kept at initialisation)  {k}'
             for k in allowed_missing] +
            [f'  unexpected (dropped)              {k}'
             for k in allowed_unexpected])
        print_log(
            f'{name}{where}: partial load (allow_partial_load='
            f'{allow_partial_load!r}): {len(allowed_missing)} missing, '
            f'{len(allowed_unexpected)} dropped:\n{table}',
            logger='current',
            level=logging.WARNING)
    extra = ''
    if initialised:
        extra += (f'; initialised here (the checkpoint has none of their '
                  f'kind): {_names(initialised)}')
    if ignored:
        extra += f'; ignored (pre-training only): {_names(ignored)}'
    print_log(
        f'{name}{where}: loaded {loaded} of {len(own)} tensors from the '
        f'checkpoint{extra}',
        logger='current')
