"""Data transforms of mmitpn."""
import functools
import os.path as osp
import random
import warnings
from typing import Optional

import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmcv.transforms import LoadImageFromFile as _MMCVLoadImageFromFile

from mmitpn.registry import TRANSFORMS


def _checked_load(transform):
    """Wrap ``LoadImageFromFile.transform``: decoder failures become one
    ``ValueError`` line naming the file and the fix."""

    @functools.wraps(transform)
    def wrapper(self, results: dict) -> Optional[dict]:
        try:
            return transform(self, results)
        except FileNotFoundError:
            raise
        except Exception as e:  # noqa: BLE001 -- any decoder failure
            filename = results.get('img_path')
            if not isinstance(filename, str):
                raise
            size = osp.getsize(filename) if osp.isfile(filename) else None
            what = 'is empty (0 bytes)' if size == 0 else \
                f'cannot be decoded as an image ({type(e).__name__})'
            raise ValueError(
                f'Image {filename!r} {what}; replace the file or remove it '
                f'from the annotation file.') from e

    wrapper.__mmitpn_checked__ = True
    return wrapper


def use_checked_image_loading() -> None:
    """Make MMCV's ``LoadImageFromFile`` fail with one line naming the file
    (called on ``import mmitpn``).

    MMCV fails on an empty file with an OpenCV assertion that does not name
    the file, and on an undecodable one with a bare ``AssertionError``.
    After this call both raise a ``ValueError`` naming the file and the fix
    (``ignore_empty=True`` still skips such files). The transform keeps
    its name, so the inferencers of the hosts, which look the loading step
    up by the name ``LoadImageFromFile``, keep working. Calling it twice
    changes nothing.
    """
    method = _MMCVLoadImageFromFile.transform
    if not getattr(method, '__mmitpn_checked__', False):
        _MMCVLoadImageFromFile.transform = _checked_load(method)


@TRANSFORMS.register_module()
class CheckedLoadImageFromFile(_MMCVLoadImageFromFile):
    """MMCV's ``LoadImageFromFile`` with one-line errors (kept for configs
    that name it).

    Once mmitpn is imported, ``LoadImageFromFile`` itself gives these
    one-line errors (:func:`use_checked_image_loading`): prefer it, the
    hosts' inferencers look the loading step up by that name. Inputs that
    are already images (``results['img']`` set, as an inferencer passes an
    array) go through unchanged, so this class does not break an
    inferencer either.
    """

    def transform(self, results: dict) -> Optional[dict]:
        """Load the image of ``results['img_path']``.

        Args:
            results (dict): Result dict from the dataset.

        Returns:
            dict | None: ``results`` with ``img``, ``img_shape`` and
            ``ori_shape``; None for an unreadable file when
            ``ignore_empty``.
        """
        if results.get('img_path') is None and \
                isinstance(results.get('img'), np.ndarray):
            img = results['img']
            if self.to_float32:
                img = img.astype(np.float32)
            results['img'] = img
            results['img_shape'] = img.shape[:2]
            results['ori_shape'] = img.shape[:2]
            return results
        use_checked_image_loading()  # MMCV's transform, checked once
        return super().transform(results)


@TRANSFORMS.register_module()
class SeedAugmentation(BaseTransform):
    """Seed ``random``, NumPy and torch with the sample's own seed, so the
    random augmentations after it depend on (seed, epoch, index) only.

    Put first in a training pipeline, with the sampler wrapped in
    :class:`~mmitpn.datasets.SeededSampler`, which tags each index with
    its seed (``tools/train.py`` does both). Without that tag (another
    sampler, or a dataset wrapper that re-maps indices) it does nothing and
    warns once, and the augmentations keep the worker's random stream.
    """

    _warned = False

    def transform(self, results: dict) -> dict:
        """Seed the generators from ``results['sample_idx']``.

        Args:
            results (dict): Result dict from the dataset; its
                ``sample_idx`` carries ``aug_seed`` when the sampler is a
                :class:`SeededSampler`.

        Returns:
            dict: ``results``, with ``sample_idx`` as a plain ``int``.
        """
        idx = results.get('sample_idx')
        seed = getattr(idx, 'aug_seed', None)
        if seed is None:
            if not SeedAugmentation._warned:
                SeedAugmentation._warned = True
                warnings.warn('SeedAugmentation: the sample index carries no '
                              'seed (sampler is not a SeededSampler); '
                              'augmentations are not seeded per sample.')
            return results
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)
        results['sample_idx'] = int(idx)
        return results
