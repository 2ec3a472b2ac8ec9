"""Pre-flight checks of dataset files, with one-line errors."""
import json
import os.path as osp
from typing import Optional


MAX_PARSED_BYTES = 64 * 2**20  # larger files are checked for existence only


def check_coco_ann_file(ann_file: str,
                        data_root: Optional[str] = None,
                        filter_empty_gt: bool = False) -> None:
    """Fail early, naming the file, on a COCO annotation file that leaves a
    detection dataset empty (MMDetection then fails deep inside with
    ``need at least one array to concatenate``).

    Args:
        ann_file (str): Annotation file (relative to ``data_root`` unless
            absolute).
        data_root (str, optional): The dataset's ``data_root``.
        filter_empty_gt (bool): Whether the dataset drops images without
            annotations (``filter_cfg.filter_empty_gt`` of a training set).

    Raises:
        FileNotFoundError: The file does not exist.
        ValueError: It is not JSON, not a COCO dict, lists no image, or
            (``filter_empty_gt``) holds no annotation.
    """
    path = ann_file if data_root is None or osp.isabs(ann_file) else \
        osp.join(data_root, ann_file)
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
    if filter_empty_gt and not coco.get('annotations'):
        raise ValueError(
            f'COCO annotation file {path!r} has {len(coco["images"])} images '
            f'but no annotations, so filter_empty_gt=True drops them all; '
            f'add annotations or set filter_cfg=dict(filter_empty_gt=False).')


def check_dataset_files(cfg) -> None:
    """Run :func:`check_coco_ann_file` on every COCO-style dataset of a
    config's ``train`` / ``val`` / ``test`` dataloaders (a pre-flight check
    for ``tools/train.py``; other dataset types are left alone).

    Args:
        cfg (mmengine.Config | dict): The run's config.
    """
    for split in ('train', 'val', 'test'):
        loader = cfg.get(f'{split}_dataloader') or {}
        dataset = loader.get('dataset') or {}
        while 'dataset' in dataset:  # RepeatDataset, ClassBalanced, ...
            dataset = dataset['dataset']
        if 'Coco' not in str(dataset.get('type', '')) or \
                'ann_file' not in dataset:
            continue
        filter_cfg = dataset.get('filter_cfg') or {}
        check_coco_ann_file(
            dataset['ann_file'],
            dataset.get('data_root'),
            filter_empty_gt=split == 'train' and not dataset.get(
                'test_mode', False) and filter_cfg.get(
                    'filter_empty_gt', False))
