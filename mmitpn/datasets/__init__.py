from .checks import check_coco_ann_file, check_dataset_files, check_seg_folders
from .label_checks import CheckClassLabels, CheckSegLabels
from .samplers import SeededIndex, SeededSampler, sample_seed
from .transforms import CheckedLoadImageFromFile, SeedAugmentation

__all__ = [
    'CheckClassLabels', 'CheckSegLabels', 'CheckedLoadImageFromFile',
    'SeedAugmentation', 'SeededIndex', 'SeededSampler',
    'check_coco_ann_file', 'check_dataset_files', 'check_seg_folders',
    'sample_seed'
]
