"""Data transforms of mmitpn."""
import os.path as osp
from typing import Optional

from mmcv.transforms import LoadImageFromFile as _MMCVLoadImageFromFile

from mmitpn.registry import TRANSFORMS


@TRANSFORMS.register_module()
class CheckedLoadImageFromFile(_MMCVLoadImageFromFile):
    """MMCV's ``LoadImageFromFile`` whose failures are one line naming the
    file and the fix.

    MMCV fails on an empty file with an OpenCV assertion that does not name
    the file, and on an undecodable one with a bare ``AssertionError``.
    This drop-in (``type='mmitpn.CheckedLoadImageFromFile'``, same
    arguments) raises a ``ValueError`` instead (``ignore_empty=True`` still
    skips such files). Inferencers look the loading step up by the name
    ``LoadImageFromFile``, so keep MMCV's in ``test_pipeline``.
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
        filename = results['img_path']
        try:
            out = super().transform(results)
        except FileNotFoundError:
            raise
        except Exception as e:  # noqa: BLE001 -- any decoder failure
            size = osp.getsize(filename) if osp.isfile(filename) else None
            what = 'is empty (0 bytes)' if size == 0 else \
                f'cannot be decoded as an image ({type(e).__name__})'
            raise ValueError(
                f'Image {filename!r} {what}; replace the file or remove it '
                f'from the annotation file.') from e
        return out
