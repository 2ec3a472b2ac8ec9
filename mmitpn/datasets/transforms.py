"""Data transforms of mmitpn."""
import os.path as osp
import random
import warnings
from typing import Optional

import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmcv.transforms import LoadImageFromFile as _MMCVLoadImageFromFile

from mmitpn.registry import TRANSFORMS


@TRANSFORMS.register_module()
class CheckedLoadImageFromFile(_MMCVLoadImageFromFile):
    """MMCV's ``LoadImageFromFile`` whose failures name the file and the fix.

    MMCV fails on an empty file with an OpenCV assertion that does not name
    the file, and on an undecodable one with a bare ``AssertionError``;
    here both raise one ``ValueError`` line naming the file
    (``ignore_empty=True`` still skips such files). The shipped configs
    name it in their training and validation pipelines. Their test
    pipelines keep ``LoadImageFromFile``, the name under which the hosts'
    inferencers find (and replace) the loading step. Inputs that are
    already images (``results['img']`` set, as an inferencer passes an
    array) go through unchanged.

    Args:
        **kwargs: Arguments of MMCV's ``LoadImageFromFile``
            (``to_float32``, ``color_type``, ``imdecode_backend``,
            ``ignore_empty``, ``backend_args``).
    """

    def transform(self, results: dict) -> Optional[dict]:
        """Load the image of ``results['img_path']``.

        Args:
            results (dict): Result dict from the dataset.

        Returns:
            dict | None: ``results`` with ``img``, ``img_shape`` and
            ``ori_shape``; None for an unreadable file when
            ``ignore_empty``.

        Raises:
            ValueError: The file is empty or cannot be decoded.
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
        try:
            return super().transform(results)
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


@TRANSFORMS.register_module()
class SeedAugmentation(BaseTransform):
    """Seed ``random``, NumPy and torch with the sample's own seed, so the
    random augmentations after it depend on (seed, epoch, index) only.

    Put first in a training pipeline, with the sampler wrapped in
    :class:`~mmitpn.datasets.SeededSampler`, which tags each index with
    its seed (the shipped configs do both). Without that tag (another
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
