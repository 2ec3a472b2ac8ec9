from .checks import check_coco_ann_file, check_dataset_files, check_seg_folders
from .samplers import SeededIndex, SeededSampler, sample_seed
from .transforms import CheckedLoadImageFromFile, SeedAugmentation

__all__ = [
    'CheckedLoadImageFromFile', 'SeedAugmentation', 'SeededIndex',
    'SeededSampler', 'check_coco_ann_file', 'check_dataset_files',
    'check_seg_folders', 'sample_seed'
]
