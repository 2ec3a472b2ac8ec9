"""``--tta``: test-time augmentation for a config of any host."""
import warnings
from copy import deepcopy
from typing import Optional

from mmengine.config import Config, ConfigDict

from .hosts import get_host_scope


def _mask_heads(model_cfg, path: str = 'model') -> list:
    """Config paths of the mask heads of a detection model config."""
    found = []
    if isinstance(model_cfg, dict):
        for key, value in model_cfg.items():
            if key == 'mask_head' and value:
                found.append(f'{path}.{key}')
            else:
                found += _mask_heads(value, f'{path}.{key}')
    elif isinstance(model_cfg, (list, tuple)):
        for i, value in enumerate(model_cfg):
            found += _mask_heads(value, f'{path}[{i}]')
    return found


def setup_tta(cfg: Config, host: Optional[str] = None) -> Config:
    """Wrap the model of a config for test-time augmentation.

    Uses ``cfg.tta_model`` and ``cfg.tta_pipeline`` when present. Without
    them, mmdet gets ``DetTTAModel`` (NMS merge) and mmpretrain
    ``AverageClsScoreTTA``, each with horizontal-flip TTA built from the test
    pipeline; mmseg has no default and needs both in the config.

    Args:
        cfg (Config): The config, edited in place (``model`` and the test
            dataset pipeline).
        host (str, optional): ``'mmdet'``, ``'mmseg'`` or ``'mmpretrain'``.
            None takes :func:`get_host_scope`. Defaults to None.

    Returns:
        Config: ``cfg``.

    Raises:
        KeyError: mmseg config without ``tta_model`` or ``tta_pipeline``.
        ValueError: mmdet config with a mask head and no ``tta_model``
            (mmdet's ``DetTTAModel`` refuses instance segmentation).
    """
    host = host or get_host_scope(cfg)
    if host == 'mmdet' and 'tta_model' not in cfg:
        masks = _mask_heads(cfg.get('model', None))
        if masks:
            raise ValueError(
                f'--tta: mmdet\'s DetTTAModel merges boxes only and refuses '
                f'instance masks, and this model has a mask head '
                f'({", ".join(masks)}); test without --tta, or set '
                f'`tta_model` / `tta_pipeline` in the config for a '
                f'box-only model.')
    if host == 'mmseg' and ('tta_model' not in cfg
                            or 'tta_pipeline' not in cfg):
        raise KeyError('`--tta` with mmseg needs `tta_model` and '
                       '`tta_pipeline` in the config.')
    if 'tta_model' not in cfg:
        warnings.warn('No `tta_model` in the config; using the default.')
        if host == 'mmdet':
            cfg.tta_model = dict(
                type='DetTTAModel',
                tta_cfg=dict(
                    nms=dict(type='nms', iou_threshold=0.5),
                    max_per_img=100))
        else:
            cfg.tta_model = dict(type='mmpretrain.AverageClsScoreTTA')

    test_dataset = cfg.test_dataloader.dataset
    while 'dataset' in test_dataset:
        test_dataset = test_dataset['dataset']
    if 'tta_pipeline' not in cfg:
        warnings.warn('No `tta_pipeline` in the config; using flip TTA.')
        pipeline = deepcopy(test_dataset.pipeline)
        pack = pipeline[-1]
        if host == 'mmdet':
            pack = dict(
                type='PackDetInputs',
                meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                           'scale_factor', 'flip', 'flip_direction'))
        pipeline[-1] = dict(
            type='TestTimeAug',
            transforms=[[
                dict(type='RandomFlip', prob=1.),
                dict(type='RandomFlip', prob=0.)
            ], [pack]])
        cfg.tta_pipeline = pipeline
    cfg.model = ConfigDict(**cfg.tta_model, module=cfg.model)
    test_dataset.pipeline = cfg.tta_pipeline
    return cfg
