"""Exact resume: randomness that is a function of the seed and the step."""
from mmengine.config import Config, ConfigDict

_SAMPLER = 'mmitpn.SeededSampler'
_TRANSFORM = 'mmitpn.SeedAugmentation'
_HOOK = 'mmitpn.IterSeedHook'


def _innermost(dataset: dict) -> dict:
    while isinstance(dataset, dict) and 'dataset' in dataset:
        dataset = dataset['dataset']  # RepeatDataset, ClassBalanced, ...
    return dataset


def seed_augmentation_per_sample(cfg: Config) -> bool:
    """Make a training run resumable bit for bit, with any data loader.

    - The training sampler is wrapped in :class:`mmitpn.datasets.
      SeededSampler` and :class:`mmitpn.datasets.SeedAugmentation` heads
      the training pipeline: each sample's augmentation is a function of
      (seed, epoch, index), whatever worker runs it and whether workers
      persist across epochs (``persistent_workers=True`` otherwise gives a
      resumed run other crops and flips).
    - :class:`mmitpn.engine.IterSeedHook` seeds the main process before
      every iteration (drop path, proposal sampling, ...).

    A config without ``train_dataloader`` is left alone; one that already
    has them is not changed twice. A dataset without a ``pipeline`` list
    (e.g. a ``ConcatDataset``) keeps its augmentation stream; the hook is
    still added.

    Args:
        cfg (Config): The config, edited in place.

    Returns:
        bool: Whether the training pipeline is seeded per sample.
    """
    loader = cfg.get('train_dataloader', None)
    if not loader:
        return False
    hooks = list(cfg.get('custom_hooks', None) or [])
    if not any(str(h.get('type', '')).endswith('IterSeedHook')
               for h in hooks if isinstance(h, dict)):
        hooks.append(ConfigDict(type=_HOOK))
        cfg.custom_hooks = hooks
    dataset = _innermost(loader.get('dataset', None) or {})
    pipeline = dataset.get('pipeline', None) if isinstance(dataset,
                                                           dict) else None
    sampler = loader.get('sampler', None)
    if not isinstance(pipeline, list) or not isinstance(sampler, dict):
        return False
    if sampler.get('type') != _SAMPLER:
        loader.sampler = ConfigDict(type=_SAMPLER, sampler=sampler)
    if not (pipeline and isinstance(pipeline[0], dict)
            and pipeline[0].get('type') == _TRANSFORM):
        pipeline.insert(0, ConfigDict(type=_TRANSFORM))
    return True
