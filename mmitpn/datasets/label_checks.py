"""Label checks in the data pipeline: one line naming the file and the value.

A segmentation label map with a value outside the classes ends, unchecked,
in ``IndexError: Target 172 is out of bounds`` inside the loss, naming
neither the file nor the value in the file (172 is the value after
``reduce_zero_label``); an RGB label map or one of another size than its
image fails in a crop or a resize with a shape error. Put
:class:`CheckSegLabels` right after ``LoadAnnotations`` (the shipped
segmentation configs do) and :class:`CheckClassLabels` after loading a
classification sample.
"""
from typing import Optional

import numpy as np
from mmcv.transforms import BaseTransform

from mmitpn.registry import TRANSFORMS


def _raw_values(path: Optional[str], loaded: np.ndarray,
                bad: np.ndarray) -> Optional[list]:
    """The values the label file holds where the loaded map has ``bad``
    values (read again from ``path``: ``reduce_zero_label`` and a
    ``label_map`` change them on loading); None if unreadable."""
    if not isinstance(path, str):
        return None
    try:
        import mmcv
        from mmengine import fileio
        raw = mmcv.imfrombytes(
            fileio.get(path), flag='unchanged', backend='pillow')
    except Exception:  # noqa: BLE001 -- the error names the loaded value
        return None
    if raw is None or raw.shape[:2] != loaded.shape[:2]:
        return None
    if raw.ndim == 3:
        return None
    return sorted(int(v) for v in np.unique(raw[np.isin(loaded, bad)]))


@TRANSFORMS.register_module()
class CheckSegLabels(BaseTransform):
    """Check a loaded segmentation label map; fail in one line naming the
    file and the value.

    Checks that ``gt_seg_map`` is one channel (class indices, not colours),
    has the size of its image as read (``ori_shape``), and holds only
    ``0..num_classes - 1`` and ``ignore_index``. Place it right after
    ``LoadAnnotations``, before any resize or crop. A wrong value is reported as the file holds it (read
    again, since ``reduce_zero_label`` and ``label_map`` change it on
    loading) and as loaded.

    Required keys: ``gt_seg_map``. Optional: ``seg_map_path``,
    ``ori_shape`` (else ``img``), ``img_path``, ``reduce_zero_label``.
    Modified keys: none.

    Args:
        num_classes (int): Classes of the model's decode head.
        ignore_index (int): Label ignored by the loss. Defaults to 255.
    """

    def __init__(self, num_classes: int, ignore_index: int = 255) -> None:
        if int(num_classes) < 1:
            raise ValueError(f'CheckSegLabels needs num_classes >= 1, got '
                             f'{num_classes!r}.')
        self.num_classes = int(num_classes)
        self.ignore_index = ignore_index

    def transform(self, results: dict) -> dict:
        """Check ``results['gt_seg_map']``.

        Args:
            results (dict): Result dict after ``LoadAnnotations``.

        Returns:
            dict: ``results``, unchanged.

        Raises:
            ValueError: The label map is not one channel, not the size of
                its image, or holds values outside the classes.
        """
        seg = results.get('gt_seg_map')
        if seg is None:
            return results
        path = results.get('seg_map_path')
        name = repr(path) if path else 'of this sample'
        seg = np.asarray(seg)
        if seg.ndim != 2:
            raise ValueError(
                f'Label map {name} has shape {seg.shape}: a label map holds '
                f'one class index per pixel (a grayscale or palette PNG), '
                f'not colours; convert it to class indices.')
        # the image as read (a test pipeline may resize it before loading
        # the label map)
        shape = results.get('ori_shape')
        if shape is None and results.get('img') is not None:
            shape = results['img'].shape
        if shape is not None and tuple(shape[:2]) != seg.shape:
            raise ValueError(
                f'Label map {name} is {seg.shape[0]}x{seg.shape[1]} but its '
                f'image {results.get("img_path")!r} is '
                f'{shape[0]}x{shape[1]}; give every image a label map of '
                f'its own size.')
        values = np.unique(seg)
        bad = values[((values < 0) | (values >= self.num_classes))
                     & (values != self.ignore_index)]
        if bad.size == 0:
            return results
        raw = _raw_values(path, seg, bad)
        shown = [int(v) for v in bad[:5]]
        more = f' (+{bad.size - 5} more)' if bad.size > 5 else ''
        reduce = results.get('reduce_zero_label')
        if raw is not None and raw != shown:
            how = 'reduce_zero_label' if reduce else 'the label map'
            held = (f'holds {raw[:5]}{" ..." if len(raw) > 5 else ""}, '
                    f'{shown}{more} after {how}')
        else:
            held = f'holds {shown}{more}'
        zero = ('; with reduce_zero_label=True the file\'s 0 is ignored and '
                'its classes are 1..' + str(self.num_classes)) \
            if reduce else ''
        raise ValueError(
            f'Label map {name} {held}, outside the {self.num_classes} '
            f'classes 0..{self.num_classes - 1} (ignore index '
            f'{self.ignore_index}){zero}; fix the file, or set num_classes '
            f'/ reduce_zero_label to the dataset\'s.')

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(num_classes={self.num_classes}, '
                f'ignore_index={self.ignore_index})')


@TRANSFORMS.register_module()
class CheckClassLabels(BaseTransform):
    """Check a classification sample's label; fail in one line naming the
    image and the label (instead of ``IndexError: Target ... is out of
    bounds`` in the loss).

    Required keys: ``gt_label``. Optional: ``img_path``. Modified keys:
    none.

    Args:
        num_classes (int): Classes of the model's head.
    """

    def __init__(self, num_classes: int) -> None:
        if int(num_classes) < 1:
            raise ValueError(f'CheckClassLabels needs num_classes >= 1, got '
                             f'{num_classes!r}.')
        self.num_classes = int(num_classes)

    def transform(self, results: dict) -> dict:
        """Check ``results['gt_label']``.

        Args:
            results (dict): Result dict of a classification dataset.

        Returns:
            dict: ``results``, unchanged.

        Raises:
            ValueError: A label outside ``0..num_classes - 1``.
        """
        label = results.get('gt_label')
        if label is None:
            return results
        labels = np.atleast_1d(np.asarray(label))
        bad = labels[(labels < 0) | (labels >= self.num_classes)]
        if bad.size:
            raise ValueError(
                f'Sample {results.get("img_path")!r} has label '
                f'{int(bad[0])}, outside the {self.num_classes} classes '
                f'0..{self.num_classes - 1}; fix its annotation or set the '
                f'head\'s num_classes to the dataset\'s.')
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(num_classes={self.num_classes})'
