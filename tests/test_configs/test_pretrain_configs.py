"""Every pre-training config loads, scopes its own types, and the iTPN-B
ones build (the CLIP one with a tiny local CLIP as its teacher)."""
import copy
import functools
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import Compose
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope

REPO = Path(__file__).resolve().parents[2]
CONFIGS = sorted((REPO / 'configs' / 'itpn_pretrain').glob('*.py'))
PIXEL_B = 'itpn-pixel-mfm_hivit-base-p16_8xb512-amp-coslr-400e_in1k.py'
CLIP_B = 'itpn-clip-b_hivit-base-p16_8xb256-amp-coslr-300e_in1k.py'
NO_DECAY = ('norm', 'bias', 'pos_embed', 'mask_token', 'gamma',
            'relative_position_bias_table')


@functools.lru_cache(maxsize=None)
def _load(path):
    return Config.fromfile(str(path))


def load(path):
    """A config of configs/itpn_pretrain (path or file name), parsed once
    per session; copy it before editing."""
    return _load(REPO / 'configs' / 'itpn_pretrain' / Path(path).name)


def own_type_names():
    import mmitpn.engine  # noqa: F401
    import mmitpn.models  # noqa: F401
    from mmitpn import registry
    names = set()
    for reg in vars(registry).values():
        if isinstance(reg, registry.Registry) and reg.scope == 'mmitpn':
            names |= set(reg.module_dict)
    return names


def iter_types(obj, where='cfg'):
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k == 'type' and isinstance(v, str):
                yield where, v
            else:
                yield from iter_types(v, f'{where}.{k}')
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            yield from iter_types(v, f'{where}[{i}]')


def test_every_config_is_listed():
    names = {p.name for p in CONFIGS}
    assert {PIXEL_B, CLIP_B} <= names
    assert CLIP_B.replace('300e', '800e') in names


@pytest.mark.parametrize('path', CONFIGS, ids=lambda p: p.stem)
def test_loads_with_scoped_types(path):
    cfg = load(path)
    assert cfg.default_scope == 'mmpretrain'  # the host's scope is kept
    own = own_type_names()
    types = list(iter_types(cfg.to_dict()))
    assert cfg.model.type.startswith('mmitpn.')
    for where, t in types:
        scope, _, name = t.rpartition('.')
        if scope == 'mmitpn':
            assert name in own, f'{where}: no mmitpn module {name!r}'
        else:
            # unscoped, it would resolve in the host (or fail) under the
            # mmpretrain scope
            assert t not in own, f'{where}: write type=\'mmitpn.{t}\''


@pytest.mark.parametrize(
    'path', [p for p in CONFIGS if 'in1k' in p.name], ids=lambda p: p.stem)
def test_imagenet_recipe(path):
    cfg = load(path)
    # '..._8xb256-amp-coslr-300e_in1k.py': 8 GPUs x 256, 300 epochs
    gpus, per_gpu = (int(v) for v in path.name.split('_')[2].split('-')[0]
                     .split('xb'))
    assert cfg.train_dataloader.batch_size == per_gpu
    assert cfg.auto_scale_lr.base_batch_size == gpus * per_gpu
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper'
    epochs = int(path.stem.split('coslr-')[1].split('e_')[0])
    assert cfg.train_cfg.max_epochs == epochs
    assert cfg.param_scheduler[-1].end == epochs
    keys = cfg.optim_wrapper.paramwise_cfg.custom_keys
    assert all(keys[k].decay_mult == 0 for k in keys)
    if 'clip' in path.name:
        assert cfg.optim_wrapper.optimizer.lr == 1.5e-3
        assert cfg.optim_wrapper.optimizer.betas == (
            (0.9, 0.98) if epochs == 300 else (0.9, 0.999))
        assert set(keys) == set(NO_DECAY)
        assert cfg.param_scheduler[0].end == 10
        assert cfg.param_scheduler[1].eta_min == 1e-5
        assert cfg.data_preprocessor.type.endswith('SelfSupDataPreprocessor')


@pytest.mark.parametrize(
    'path', [p for p in CONFIGS if 'in1k' in p.name], ids=lambda p: p.stem)
def test_imagenet_train_pipeline(path):
    from mmpretrain.registry import TRANSFORMS
    cfg = load(path)
    pipeline = cfg.train_dataloader.dataset.pipeline
    assert cfg.train_dataloader.dataset.type == 'ImageNet'
    assert pipeline[0].type == 'LoadImageFromFile'
    # everything after loading, on an in-memory image
    # other tests may leave another host's default scope behind
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        transform = Compose([TRANSFORMS.build(t) for t in pipeline[1:]])
    img = np.random.RandomState(0).randint(0, 256, (300, 260, 3), np.uint8)
    out = transform(dict(img=img, img_shape=img.shape[:2],
                         ori_shape=img.shape[:2]))
    assert out['inputs'].shape == (3, 224, 224)  # one view
    if 'clip' in path.name:
        mask = out['data_samples'].mask
        assert isinstance(mask, torch.Tensor) and mask.shape == (14, 14)
        assert 16 <= int(mask.sum()) <= 75
    else:
        assert 'mask' not in out['data_samples']


def _num(module):
    return sum(p.numel() for p in module.parameters())


@pytest.fixture(scope='module')
def built(tmp_path_factory):
    """The iTPN-B pixel + MFM model and the CLIP one (with a tiny random
    CLIP ViT of the right token width, 512, at 224 px as its teacher)."""
    from mmpretrain.models.utils.clip_generator_helper import CLIP
    from mmpretrain.registry import MODELS
    torch.manual_seed(0)
    clip = CLIP(512, 224, 1, 64, 16, context_length=8, vocab_size=50,
                transformer_width=64, transformer_heads=1,
                transformer_layers=1)
    weights = tmp_path_factory.mktemp('clip') / 'ViT-B-16.pt'
    torch.save(clip.state_dict(), weights)
    pixel_cfg, clip_cfg = load(PIXEL_B), copy.deepcopy(load(CLIP_B))
    clip_cfg.model.teacher.weights = str(weights)
    return (pixel_cfg, MODELS.build(pixel_cfg.model), clip_cfg,
            MODELS.build(clip_cfg.model))


def test_itpn_b_models(built):
    _, pixel, _, clip = built
    # the same HiViT, plus the CLIP variant's mask token, layer scales and
    # rpe tables on the 24 stage-3 blocks
    rpe = (2 * 14 - 1)**2 * 8
    assert _num(clip.backbone) == _num(pixel.backbone) + 512 + 24 * (
        2 * 512 + rpe)
    assert clip.backbone.depths == pixel.backbone.depths == (3, 3, 24)
    assert clip.side_block == 18
    assert clip.teacher.embed_dims == 512
    assert not [k for k in clip.state_dict() if 'visual' in k]
    assert _num(pixel.teacher.module) == _num(pixel.backbone)
    # the pixel decoder of the official base: 512 wide, 8 blocks
    assert len(pixel.head.decoder.blocks) == 8


def test_clip_weight_decay_groups(built):
    _, _, cfg, model = built
    # AmpOptimWrapper needs CUDA; the parameter groups do not
    optim_cfg = copy.deepcopy(cfg.optim_wrapper)
    optim_cfg.type = 'OptimWrapper'
    optim_cfg.pop('loss_scale')
    groups = build_optim_wrapper(model, optim_cfg).optimizer.param_groups
    names = {id(p): n for n, p in model.named_parameters()}
    for g in groups:
        for p in g['params']:
            name = names[id(p)]
            exempt = p.dim() == 1 or any(k in name for k in NO_DECAY)
            assert g['weight_decay'] == (0. if exempt else 0.05), name


@pytest.mark.parametrize(
    'path', [p for p in CONFIGS if p.stem.endswith('_demo')],
    ids=lambda p: p.stem)
def test_demo_schedule_matches_the_name(path):
    """The quick start (20e) and the demo's pre-training (200e, which
    inherits it) differ in their schedule only, and the cosine decay ends
    with the last epoch of each."""
    epochs = int(path.stem.split('1xb32-')[1].split('e_')[0])
    cfg = load(path)
    assert cfg.train_cfg.max_epochs == epochs
    warmup, cosine = cfg.param_scheduler
    assert (warmup.end, cosine.begin, cosine.end) == (1, 1, epochs)
    assert cosine.T_max == epochs - 1
    quick = load('itpn-tiny_pixel-mfm_1xb32-20e_demo.py')
    for key in ('model', 'train_dataloader', 'optim_wrapper', 'custom_hooks'):
        assert cfg[key] == quick[key], key
