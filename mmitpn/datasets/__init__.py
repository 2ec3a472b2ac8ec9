from .checks import check_coco_ann_file, check_dataset_files
from .transforms import CheckedLoadImageFromFile

__all__ = [
    'CheckedLoadImageFromFile', 'check_coco_ann_file', 'check_dataset_files'
]
