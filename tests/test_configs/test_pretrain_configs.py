"""Pre-training configs of configs/itpn/: they load and scope their own
types, follow the official recipes (literals from the official scripts),
and the iTPN-B ones build (the CLIP one with a tiny local CLIP as its
teacher)."""
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
ITPN = REPO / 'configs' / 'itpn'
CONFIGS = sorted(p for p in ITPN.glob('*.py')
                 if '_hivit-' in p.name or '_pixel-mfm_1xb32-' in p.name)
IN1K = [p for p in CONFIGS if p.name.endswith('_in1k.py')]
PIXEL_B = 'itpn-pixel_hivit-base-p16_8xb512-amp-coslr-400e_in1k.py'
PIXEL_MFM_B = 'itpn-pixel-mfm_hivit-base-p16_8xb512-amp-coslr-400e_in1k.py'
CLIP_B = 'itpn-clip-b_hivit-base-p16_8xb256-amp-coslr-300e_in1k.py'
CLIP_L = 'itpn-clip-l_hivit-large-p16_8xb256-amp-coslr-300e_in1k.py'
CLIP_B_L = 'itpn-clip-b_hivit-large-p16_8xb256-amp-coslr-300e_in1k.py'
QUICK = 'itpn-tiny_pixel-mfm_1xb32-20e_demo.py'
DEMO = 'itpn-tiny_pixel-mfm_1xb32-200e_demo.py'


@functools.lru_cache(maxsize=None)
def _load(path):
    return Config.fromfile(str(path))


def load(path):
    """A config of configs/itpn (path or file name), parsed once per
    session; copy it before editing."""
    return _load(ITPN / Path(path).name)


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
    assert {PIXEL_B, PIXEL_MFM_B, CLIP_B, CLIP_L, CLIP_B_L, QUICK,
            DEMO} <= names
    assert CLIP_B.replace('300e', '800e') in names
    assert len(IN1K) == 15


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


@pytest.mark.parametrize('path', IN1K, ids=lambda p: p.stem)
def test_imagenet_recipe(path):
    """Literals of the official scripts: itpn_pixel/main_pretrain.py (lr
    default blr, betas 179, add_weight_decay 178, warmup 67, min_lr 64;
    PRETRAIN.md: blr 1.5e-4, batch 64 x 64 GPUs) and itpn_clip/README.md
    (lr 1.5e-3, betas 0.98, batch 32 x 64 GPUs) with
    run_itpn_pretraining.py's defaults (warmup 5 at line 91, min_lr 1e-5
    at 88)."""
    cfg = load(path)
    epochs = int(path.stem.split('coslr-')[1].split('e_')[0])
    assert cfg.train_cfg.max_epochs == epochs
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper'
    opt = cfg.optim_wrapper.optimizer
    warmup, cosine = cfg.param_scheduler
    # the cosine ends with max_epochs: its end is left to the runner
    assert 'end' not in cosine and 'T_max' not in cosine
    assert cosine.begin == warmup.end
    assert cfg.optim_wrapper.paramwise_cfg.flat_decay_mult == 0.
    assert opt.weight_decay == 0.05
    if '-pixel' in path.name:
        assert cfg.train_dataloader.batch_size == 512
        assert cfg.auto_scale_lr.base_batch_size == 4096
        assert opt.lr == pytest.approx(1.5e-4 * 4096 / 256)
        assert opt.betas == (0.9, 0.95)
        assert (warmup.end, cosine.eta_min) == (40, 0.)
        assert 'custom_keys' not in cfg.optim_wrapper.paramwise_cfg
        assert cfg.model.neck.fpn_depth == 2
    else:
        assert cfg.train_dataloader.batch_size == 256
        assert cfg.auto_scale_lr.base_batch_size == 2048
        assert opt.lr == 1.5e-3
        assert opt.betas == ((0.9, 0.98) if epochs == 300 else (0.9, 0.999))
        assert (warmup.end, cosine.eta_min) == (5, 1e-5)
        assert cfg.optim_wrapper.paramwise_cfg.custom_keys == {
            'backbone.pos_embed': dict(decay_mult=0.)
        }
        bb = cfg.model.backbone
        assert (bb.rpe_type, bb.pos_embed_init) == ('swin', 'trunc_normal')
        assert (bb.layer_scale_init_value,
                bb.layer_scale_stages) == (0.1, (0, 1, 2))
        assert cfg.model.neck.fpn_depth == 1
        assert bb.drop_path_rate == (0.2 if 'large' in path.name else 0.1)
    if path.name in (PIXEL_B, CLIP_B):
        assert 'mfm_head' not in cfg.model  # the official: no MFM loss
        assert cfg.model.backbone.pos_embed_type == 'learnable'


def test_clip_large_teacher():
    # itpn_clip/README.md, iTPN-L/16 with CLIP-L: --second_input_size 196,
    # --drop_path 0.2; ViT-L/14 tokens are 768-d
    cfg = load(CLIP_L)
    assert cfg.model.teacher.img_size == 196
    assert cfg.model.teacher.weights.endswith('ViT-L-14.pt')
    assert cfg.model.head.target_dims == cfg.model.side_head.target_dims \
        == 768
    assert cfg.model.backbone.arch == 'itpn-large'


def test_clip_base_teacher_of_itpn_large():
    # itpn_clip/README.md:58-73, iTPN-L/16 with CLIP-B: --clip_path
    # ViT-B-16.pt, --second_input_size 224, --drop_path 0.2; CLIP-B tokens
    # are 512-d (run_itpn_pretraining.py:38-39); the L student (768 wide)
    cfg = load(CLIP_B_L)
    assert cfg.model.teacher.img_size == 224
    assert cfg.model.teacher.weights.endswith('ViT-B-16.pt')
    assert cfg.model.head.target_dims == cfg.model.side_head.target_dims \
        == 512
    assert cfg.model.head.embed_dims == cfg.model.side_head.embed_dims \
        == 768
    assert cfg.model.backbone.arch == 'itpn-large'
    assert cfg.model.backbone.drop_path_rate == 0.2


@pytest.mark.parametrize('path', IN1K, ids=lambda p: p.stem)
def test_imagenet_train_pipeline(path):
    from mmpretrain.registry import TRANSFORMS
    cfg = load(path)
    pipeline = cfg.train_dataloader.dataset.pipeline
    assert cfg.train_dataloader.dataset.type == 'ImageNet'
    # the per-sample seed of the augmentation (exact resume) may head it
    if pipeline[0].type == 'mmitpn.SeedAugmentation':
        pipeline = pipeline[1:]
    assert pipeline[0].type in ('LoadImageFromFile',
                                'mmitpn.CheckedLoadImageFromFile')
    crop = next(t for t in pipeline if t.type == 'RandomResizedCrop')
    if '-clip' in path.name:
        # itpn_clip/datasets.py:33-37: ColorJitter(0.4, 0.4, 0.4), flip,
        # crop with the default scale (0.08, 1)
        assert [t.type for t in pipeline[1:4]
                ] == ['ColorJitter', 'RandomFlip', 'RandomResizedCrop']
        assert (pipeline[1].brightness, pipeline[1].contrast,
                pipeline[1].saturation) == (0.4, 0.4, 0.4)
        assert crop.crop_ratio_range == (0.08, 1.0)
    else:
        # itpn_pixel/main_pretrain.py:124: scale (0.2, 1.0), bicubic
        assert crop.crop_ratio_range == (0.2, 1.0)
    # everything after loading, on an in-memory image
    # other tests may leave another host's default scope behind
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        transform = Compose([TRANSFORMS.build(t) for t in pipeline[1:]])
    img = np.random.RandomState(0).randint(0, 256, (300, 260, 3), np.uint8)
    out = transform(
        dict(img=img, img_shape=img.shape[:2], ori_shape=img.shape[:2]))
    assert out['inputs'].shape == (3, 224, 224)  # one view
    if '-clip' in path.name:
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
    clip = CLIP(512,
                224,
                1,
                64,
                16,
                context_length=8,
                vocab_size=50,
                transformer_width=64,
                transformer_heads=1,
                transformer_layers=1)
    weights = tmp_path_factory.mktemp('clip') / 'ViT-B-16.pt'
    torch.save(clip.state_dict(), weights)
    pixel_cfg, clip_cfg = load(PIXEL_MFM_B), copy.deepcopy(load(CLIP_B))
    clip_cfg.model.teacher.weights = str(weights)
    return (pixel_cfg, MODELS.build(pixel_cfg.model), clip_cfg,
            MODELS.build(clip_cfg.model))


def test_itpn_b_models(built):
    _, pixel, _, clip = built
    # the same HiViT, plus the CLIP variant's mask token, layer scales
    # (gamma2 on the 3 + 3 MLP-only blocks of widths 128 and 256, gamma1 and
    # gamma2 on the 24 blocks of width 512) and rpe tables (stage 3)
    rpe = (2 * 14 - 1)**2 * 8
    assert _num(clip.backbone) == _num(pixel.backbone) + 512 + \
        3 * 128 + 3 * 256 + 24 * (2 * 512 + rpe)
    assert clip.backbone.depths == pixel.backbone.depths == (3, 3, 24)
    assert clip.backbone.pos_embed.requires_grad
    assert not pixel.backbone.pos_embed.requires_grad  # mmitpn's MFM choice
    assert len(clip.neck.blocks_8) == 1 and len(pixel.neck.blocks_8) == 2
    assert clip.side_block == 18
    assert clip.teacher.embed_dims == 512
    assert not [k for k in clip.state_dict() if 'visual' in k]
    assert _num(pixel.teacher.module) == _num(pixel.backbone)
    # the pixel decoder of the official base: 512 wide, 8 blocks
    assert len(pixel.head.decoder.blocks) == 8


def test_clip_weight_decay_groups(built):
    """Official CLIP pre-training (itpn_clip/optim_factory.py:73 with the
    model's no_weight_decay {'absolute_pos_embed'}): no decay on 1-D
    parameters, biases and the position embedding only; the mask token and
    the rpe tables decay."""
    _, _, cfg, model = built
    # AmpOptimWrapper needs CUDA; the parameter groups do not
    optim_cfg = copy.deepcopy(cfg.optim_wrapper)
    optim_cfg.type = 'OptimWrapper'
    optim_cfg.pop('loss_scale')
    groups = build_optim_wrapper(model, optim_cfg).optimizer.param_groups
    names = {id(p): n for n, p in model.named_parameters()}
    seen = {}
    for g in groups:
        for p in g['params']:
            name = names[id(p)]
            exempt = p.dim() == 1 or name == 'backbone.pos_embed'
            assert g['weight_decay'] == (0. if exempt else 0.05), name
            seen[name] = g['weight_decay']
    assert seen['backbone.mask_token'] == 0.05
    assert seen['backbone.stages.2.0.attn.relative_position_bias_table'] == \
        0.05


def test_demo_configs_differ_in_length_only():
    """The demo's pre-training (200 epochs) is the quick start (20 epochs)
    run longer: same model, data, optimizer, schedule shape and hooks."""
    quick, demo = load(QUICK), load(DEMO)
    assert (quick.train_cfg.max_epochs, demo.train_cfg.max_epochs) == (20, 200)
    for key in ('model', 'train_dataloader', 'optim_wrapper', 'custom_hooks',
                'param_scheduler'):
        assert demo[key] == quick[key], key
    assert demo.default_hooks.checkpoint.interval == 20
    assert quick.default_hooks.checkpoint.interval == 5


@pytest.mark.parametrize('epochs', [20, 200])
def test_cosine_ends_with_the_last_epoch(epochs, tmp_path):
    """mmengine's runner gives a scheduler without ``end`` the train loop's
    length: with 5 iterations an epoch, the demo's cosine (begin 1) runs
    over (epochs - 1) * 5 iterations."""
    from mmengine.model import BaseModel
    from mmengine.runner import Runner

    class Toy(BaseModel):

        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def forward(self, inputs, data_samples=None, mode='tensor'):
            return dict(loss=(self.w * inputs.float().mean())**2)

    cfg = load(QUICK)
    runner = Runner(model=Toy(),
                    work_dir=str(tmp_path),
                    train_dataloader=dict(
                        dataset=[torch.zeros(1)] * 10,
                        sampler=dict(type='DefaultSampler', shuffle=False),
                        collate_fn=dict(type='default_collate'),
                        batch_size=2),
                    optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)),
                    param_scheduler=copy.deepcopy(cfg.param_scheduler),
                    train_cfg=dict(by_epoch=True, max_epochs=epochs),
                    default_scope='mmengine')
    runner.train_loop  # builds the loop the schedulers read
    runner.optim_wrapper = runner.build_optim_wrapper(runner.optim_wrapper)
    schedulers = runner.build_param_scheduler(runner.param_schedulers)
    warmup, cosine = schedulers
    assert (warmup.begin, warmup.end) == (0, 5)
    assert (cosine.begin, cosine.end) == (5, epochs * 5)
    assert cosine.T_max == (epochs - 1) * 5
