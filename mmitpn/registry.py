"""Registries of mmitpn.

Every node is a child of the matching MMEngine root with scope ``mmitpn``
and knows where its modules live (``locations``), so a config of any host
(mmdet, mmseg, mmpretrain) can say ``type='mmitpn.HiViTBackbone'`` without
importing mmitpn first: the registry of the host walks up to the root,
finds the ``mmitpn`` child and imports its locations on demand.
"""
from mmengine.registry import DATA_SAMPLERS as MMENGINE_DATA_SAMPLERS
from mmengine.registry import DATASETS as MMENGINE_DATASETS
from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import \
    OPTIM_WRAPPER_CONSTRUCTORS as MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS
from mmengine.registry import OPTIM_WRAPPERS as MMENGINE_OPTIM_WRAPPERS
from mmengine.registry import TRANSFORMS as MMENGINE_TRANSFORMS
from mmengine.registry import STRATEGIES as MMENGINE_STRATEGIES
from mmengine.registry import Registry

MODELS = Registry(
    'model', parent=MMENGINE_MODELS, scope='mmitpn',
    locations=['mmitpn.models'])
HOOKS = Registry(
    'hook', parent=MMENGINE_HOOKS, scope='mmitpn',
    locations=['mmitpn.engine'])
OPTIM_WRAPPER_CONSTRUCTORS = Registry(
    'optimizer wrapper constructor',
    parent=MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS, scope='mmitpn',
    locations=['mmitpn.engine'])
OPTIM_WRAPPERS = Registry(
    'optim_wrapper', parent=MMENGINE_OPTIM_WRAPPERS, scope='mmitpn',
    locations=['mmitpn.engine'])
STRATEGIES = Registry(
    'strategy', parent=MMENGINE_STRATEGIES, scope='mmitpn',
    locations=['mmitpn.engine'])
DATASETS = Registry(
    'dataset', parent=MMENGINE_DATASETS, scope='mmitpn',
    locations=['mmitpn.datasets'])
DATA_SAMPLERS = Registry(
    'data sampler', parent=MMENGINE_DATA_SAMPLERS, scope='mmitpn',
    locations=['mmitpn.datasets'])
TRANSFORMS = Registry(
    'transform', parent=MMENGINE_TRANSFORMS, scope='mmitpn',
    locations=['mmitpn.datasets'])
