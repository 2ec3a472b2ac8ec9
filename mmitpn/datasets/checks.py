"""Pre-flight checks of dataset files, with one-line errors.

A dataset that ends up empty makes the hosts fail deep inside with
``ValueError: need at least one array to concatenate``; one that silently
drops part of its data trains on less than the user thinks. These checks
run at ``before_run`` (:class:`mmitpn.engine.hooks.DataCheckHook`) and,
for a data set that would end up empty, before the runner is built
(``tools/train.py``); they name the file, the
cause and the fix in one line.
"""
import inspect
import json
import logging
import os
import os.path as osp
from typing import Optional, Sequence

from mmengine.logging import print_log

MAX_PARSED_BYTES = 64 * 2**20  # larger files are checked for existence only
IMG_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')


def _short(names, limit: int = 5) -> str:
    names = list(names)
    more = f' (+{len(names) - limit} more)' if len(names) > limit else ''
    return ', '.join(repr(n) for n in names[:limit]) + more


def _join(root: Optional[str], path: str) -> str:
    return path if not root or osp.isabs(path) else osp.join(root, path)


def check_coco_ann_file(ann_file: str,
                        data_root: Optional[str] = None,
                        filter_empty_gt: bool = False,
                        classes: Optional[Sequence[str]] = None,
                        min_size: int = 0,
                        explicit_classes: bool = True) -> None:
    """Fail early, naming the file, on a COCO annotation file that leaves a
    detection dataset empty or silently smaller.

    Args:
        ann_file (str): Annotation file (relative to ``data_root`` unless
            absolute).
        data_root (str, optional): The dataset's ``data_root``.
        filter_empty_gt (bool): Whether the dataset drops images without
            annotations (``filter_cfg.filter_empty_gt`` of a training set).
        classes (Sequence[str], optional): ``metainfo.classes`` of the
            dataset. MMDetection keeps only the categories whose name
            equals one of them exactly (case included). None skips the
            check.
        min_size (int): ``filter_cfg.min_size``: images whose shorter side
            is smaller are dropped (training sets). Defaults to 0.
        explicit_classes (bool): ``classes`` come from the config's
            ``metainfo``; False (the dataset class's defaults) turns a
            partial mismatch without case differences into a WARNING.
            Defaults to True.

    Raises:
        FileNotFoundError: The file does not exist.
        ValueError: It is not JSON, not a COCO dict, lists no image; a name
            of ``classes`` is not a category of the file (the error names
            a case-only difference); ``filter_empty_gt`` and no annotation
            is left; or ``min_size`` drops every image.
    """
    path = _join(data_root, ann_file)
    if not osp.isfile(path):
        raise FileNotFoundError(f'COCO annotation file {path!r} does not '
                                f'exist; fix data_root / ann_file.')
    if osp.getsize(path) > MAX_PARSED_BYTES:
        return  # a full-size set (COCO train: 450 MB) is not empty
    try:
        with open(path) as f:
            coco = json.load(f)
    except (ValueError, UnicodeDecodeError) as e:
        raise ValueError(f'COCO annotation file {path!r} is not valid JSON '
                         f'({type(e).__name__}: {e}); regenerate '
                         f'it.') from e
    if not isinstance(coco, dict) or not isinstance(
            coco.get('images'), list):
        raise ValueError(f'COCO annotation file {path!r} has no "images" '
                         f'list; it is not in COCO format.')
    if not coco['images']:
        raise ValueError(f'COCO annotation file {path!r} lists no images; '
                         f'the dataset would be empty: point ann_file at a '
                         f'file with images.')
    annotations = coco.get('annotations') or []
    if filter_empty_gt and not annotations:
        raise ValueError(
            f'COCO annotation file {path!r} has {len(coco["images"])} images '
            f'but no annotations, so filter_empty_gt=True drops them all; '
            f'add annotations or set filter_cfg=dict(filter_empty_gt=False).')

    if classes is not None:
        cats = [c.get('name') for c in coco.get('categories') or []]
        absent = [c for c in classes if c not in cats]
        if absent:
            lower = {str(c).lower(): c for c in cats}
            case = [(c, lower[str(c).lower()]) for c in absent
                    if str(c).lower() in lower]
            if case:
                cause = ', '.join(f'{a!r} vs {b!r}' for a, b in case[:3])
                raise ValueError(
                    f'metainfo.classes and the categories of {path!r} '
                    f'differ in case ({cause}; names are case-sensitive, so '
                    f'those classes get no annotations); set '
                    f'metainfo=dict(classes=...) to the file\'s names: '
                    f'{tuple(cats)}.')
            everything = len(absent) == len(classes)
            effect = 'the dataset would be empty' if everything else \
                'they would get no boxes'
            msg = (f'{len(absent)} of {len(classes)} metainfo.classes are '
                   f'not categories of {path!r} ({_short(absent)}; '
                   f'{effect}); set metainfo=dict(classes=...) in the '
                   f'dataset config to the file\'s category names: '
                   f'{_short(cats, 10)}.')
            if everything or explicit_classes:
                raise ValueError(msg)
            # the dataset class's default classes (e.g. COCO's 80) and a
            # file with some of them: perhaps a subset on purpose
            print_log(msg, logger='current', level=logging.WARNING)

    if min_size > 0:
        small = [im for im in coco['images']
                 if min(im.get('width', min_size),
                        im.get('height', min_size)) < min_size]
        if small and len(small) == len(coco['images']):
            raise ValueError(
                f'All {len(small)} images of {path!r} have a side below '
                f'filter_cfg.min_size={min_size} and would be dropped; '
                f'lower min_size (e.g. filter_cfg=dict(min_size=0)).')
        if small:
            print_log(
                f'{len(small)} of {len(coco["images"])} images of {path!r} '
                f'have a side below filter_cfg.min_size={min_size} and are '
                f'dropped (e.g. {small[0].get("file_name")!r}); lower '
                f'min_size to keep them.',
                logger='current',
                level=logging.WARNING)


def _listdir(folder: str, suffix: str):
    return sorted(f[:-len(suffix)] for f in os.listdir(folder)
                  if f.endswith(suffix))


def check_seg_folders(data_root: Optional[str],
                      img_dir: str,
                      ann_dir: str,
                      img_suffix: str = '.jpg',
                      seg_map_suffix: str = '.png') -> None:
    """Fail early on ADE20K-style image / annotation folders that leave a
    segmentation dataset empty or without labels.

    MMSegmentation lists the images of ``img_dir`` and expects, for each,
    a label map of the same name in ``ann_dir``; an empty folder gives an
    empty dataset (``need at least one array to concatenate``), a missing
    label map fails only when that image is loaded.

    Args:
        data_root (str, optional): The dataset's ``data_root``.
        img_dir (str): ``data_prefix.img_path``.
        ann_dir (str): ``data_prefix.seg_map_path``.
        img_suffix (str): Suffix of the images. Defaults to '.jpg'.
        seg_map_suffix (str): Suffix of the label maps. Defaults to '.png'.

    Raises:
        FileNotFoundError: A folder does not exist.
        ValueError: A folder holds no file of its suffix, or images lack
            their label maps.
    """
    img_dir, ann_dir = _join(data_root, img_dir), _join(data_root, ann_dir)
    for folder, what in ((img_dir, 'image'), (ann_dir, 'annotation')):
        if not osp.isdir(folder):
            raise FileNotFoundError(
                f'Segmentation {what} folder {folder!r} does not exist; fix '
                f'data_root / data_prefix.')
    imgs = _listdir(img_dir, img_suffix)
    if not imgs:
        found = sorted(os.listdir(img_dir))[:3]
        raise ValueError(
            f'Segmentation image folder {img_dir!r} holds no '
            f'{img_suffix!r} file (found: {found or "nothing"}); put the '
            f'images there or set img_suffix.')
    anns = set(_listdir(ann_dir, seg_map_suffix))
    if not anns:
        found = sorted(os.listdir(ann_dir))[:3]
        raise ValueError(
            f'Segmentation annotation folder {ann_dir!r} holds no '
            f'{seg_map_suffix!r} file (found: {found or "nothing"}); put the '
            f'label maps there or set seg_map_suffix.')
    unmatched = [n for n in imgs if n not in anns]
    if unmatched:
        raise ValueError(
            f'{len(unmatched)} of {len(imgs)} images of {img_dir!r} have no '
            f'label map of the same name in {ann_dir!r} (e.g. '
            f'{unmatched[0] + img_suffix!r} -> '
            f'{unmatched[0] + seg_map_suffix!r} missing); give every image '
            f'its label map (same name, suffix {seg_map_suffix!r}).')


def _dataset_classes(dataset: dict):
    """``(classes, explicit)``: ``metainfo.classes`` of a dataset config
    (explicit), else the default classes of its type (MMDetection's
    ``CocoDataset``: the 80 COCO classes), else None."""
    metainfo = dataset.get('metainfo') or {}
    if metainfo.get('classes') is not None:
        return tuple(metainfo['classes']), True
    try:
        from mmdet.registry import DATASETS
        cls = DATASETS.get(str(dataset.get('type')))
    except ImportError:
        return None, False
    meta = getattr(cls, 'METAINFO', None) or {}
    classes = meta.get('classes')
    return (tuple(classes) if classes else None), False


def _seg_suffixes(dataset: dict):
    """``(img_suffix, seg_map_suffix)`` of a segmentation dataset config:
    its own, else the defaults of its class (e.g. Cityscapes'
    ``_leftImg8bit.png``), else ``('.jpg', '.png')``."""
    defaults = {'img_suffix': '.jpg', 'seg_map_suffix': '.png'}
    try:
        from mmseg.registry import DATASETS
        cls = DATASETS.get(str(dataset.get('type')))
        params = inspect.signature(cls.__init__).parameters if cls else {}
        for key in defaults:
            if key in params and isinstance(params[key].default, str):
                defaults[key] = params[key].default
    except ImportError:
        pass
    return (dataset.get('img_suffix', defaults['img_suffix']),
            dataset.get('seg_map_suffix', defaults['seg_map_suffix']))


def check_dataset_files(cfg) -> None:
    """Pre-flight checks of the ``train`` / ``val`` / ``test`` datasets of a
    config (``DataCheckHook``, ``tools/train.py``; other dataset types are
    left alone):

    - COCO-style detection sets: :func:`check_coco_ann_file` with the
      dataset's classes and, for training, ``filter_cfg``;
    - segmentation sets with ``data_prefix.seg_map_path`` and no
      ``ann_file`` (ADE20K-style folders): :func:`check_seg_folders`.

    Args:
        cfg (mmengine.Config | dict): The run's config.
    """
    for split in ('train', 'val', 'test'):
        loader = cfg.get(f'{split}_dataloader') or {}
        dataset = loader.get('dataset') or {}
        while 'dataset' in dataset:  # RepeatDataset, ClassBalanced, ...
            dataset = dataset['dataset']
        prefix = dataset.get('data_prefix') or {}
        if 'Coco' in str(dataset.get('type', '')) and 'ann_file' in dataset:
            train = split == 'train' and not dataset.get('test_mode', False)
            filter_cfg = (dataset.get('filter_cfg') or {}) if train else {}
            classes, explicit = _dataset_classes(dataset)
            check_coco_ann_file(
                dataset['ann_file'],
                dataset.get('data_root'),
                filter_empty_gt=filter_cfg.get('filter_empty_gt', False),
                classes=classes,
                min_size=filter_cfg.get('min_size', 0),
                explicit_classes=explicit)
        elif isinstance(prefix, dict) and 'seg_map_path' in prefix and \
                'img_path' in prefix and not dataset.get('ann_file'):
            check_seg_folders(
                dataset.get('data_root'), prefix['img_path'],
                prefix['seg_map_path'], *_seg_suffixes(dataset))
