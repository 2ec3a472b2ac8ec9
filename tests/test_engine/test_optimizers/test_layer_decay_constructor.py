"""ITPNLayerDecayOptimWrapperConstructor: the mmitpn rule and the official
COCO / ADE20K / ImageNet rules, on a tiny HiViT whose every expected lr
scale is written out by hand.

The tiny arch has depths (1, 1, 2), so the official ``backbone.blocks``
list is [stage-1 block, merge, stage-2 block, merge, stage-3 block x 2]:
list entries 0..5, official layer ids 1..6.
"""
import pytest
import torch.nn as nn
from conftest import TINY_ARCH
from mmengine.optim import build_optim_wrapper

from mmitpn.models import HiViTBackbone, ITPNPyramid

RATE = 0.5
RPE = 'attn.relative_position_bias_table'


class Host(nn.Module):
    """A detector-like host: backbone, neck and one head."""

    def __init__(self, **backbone):
        super().__init__()
        self.backbone = HiViTBackbone(arch=dict(TINY_ARCH),
                                      img_size=64,
                                      rpe_type='swin',
                                      pos_embed_type='learnable',
                                      layer_scale_init_value=0.1,
                                      layer_scale_stages=(0, 1, 2),
                                      **backbone)
        self.neck = ITPNPyramid(in_channels=(16, 32, 64),
                                out_channels=32,
                                fpn_depth=1,
                                num_outs=3)
        self.head = nn.Linear(32, 3)


def build(paramwise_cfg, weight_decay=0.05, model=None):
    model = model or Host()
    optimizer = dict(type='AdamW', lr=1.)
    if weight_decay is not None:
        optimizer['weight_decay'] = weight_decay
    wrapper = build_optim_wrapper(
        model,
        dict(type='OptimWrapper',
             constructor='mmitpn.ITPNLayerDecayOptimWrapperConstructor',
             optimizer=optimizer,
             paramwise_cfg=paramwise_cfg))
    groups = {}
    for g in wrapper.optimizer.param_groups:
        for p in g['params']:
            groups[id(p)] = g
    named = dict(model.named_parameters())
    assert len(groups) == len(named)
    return {n: groups[id(p)] for n, p in named.items()}


# parameter: (official layer id, lr scale with RATE = 0.5, num_layers 4 + 2)
COCO = {
    'backbone.patch_embed.proj.weight': (0, 2**-5),
    'backbone.pos_embed': (5, 1.),  # not an id-0 name there: full lr
    'backbone.stages.0.0.mlp.fc1.weight': (1, 2**-4),
    'backbone.merges.0.reduction.weight': (2, 2**-3),
    'backbone.stages.1.0.mlp.fc1.weight': (3, 2**-2),
    'backbone.merges.1.reduction.weight': (4, 2**-1),
    'backbone.stages.2.0.attn.qkv.weight': (5, 1.),
    'backbone.stages.2.1.attn.qkv.weight': (6, 2.),  # rate ** -1
    'neck.split_16to8.reduction.weight': (5, 1.),
    'head.weight': (5, 1.),
}


def test_official_coco_rule():
    groups = build(
        dict(layer_decay_rate=RATE,
             layer_decay_rule='official_coco',
             num_layers=4))
    for name, (layer_id, scale) in COCO.items():
        assert groups[name]['lr'] == pytest.approx(scale, rel=1e-12), name
        assert groups[name]['layer_depth'] == layer_id, name
    # no decay: 1-D, '.bias', '_token', 'pos_embed'; rpe tables decay
    for name, wd in {
            'backbone.pos_embed': 0.,
            'backbone.stages.2.0.' + RPE: 0.05,
            'backbone.stages.2.0.attn.qkv.weight': 0.05,
            'backbone.stages.2.0.attn.qkv.bias': 0.,
            'backbone.stages.0.0.gamma2': 0.,
            'backbone.patch_embed.norm.weight': 0.,
            'head.weight': 0.05
    }.items():
        assert groups[name]['weight_decay'] == wd, name


def test_official_ade20k_rule():
    groups = build(
        dict(layer_decay_rate=RATE,
             layer_decay_rule='official_ade20k',
             num_layers=4))
    per_layer = RATE**(13 / 6)
    expected = dict(COCO)
    expected['backbone.pos_embed'] = (0, 2**-5)  # id 0 here
    for name, (layer_id, _) in expected.items():
        assert groups[name]['lr'] == pytest.approx(per_layer**(6 - layer_id -
                                                               1),
                                                   rel=1e-12), name
    assert groups['backbone.pos_embed']['lr'] == pytest.approx(per_layer**5,
                                                               rel=1e-12)
    # no decay on 1-D and '.bias' only: the position embedding and the
    # rpe tables decay
    for name, wd in {
            'backbone.pos_embed': 0.05,
            'backbone.stages.2.0.' + RPE: 0.05,
            'backbone.stages.2.0.attn.qkv.bias': 0.,
            'backbone.stages.1.0.gamma2': 0.
    }.items():
        assert groups[name]['weight_decay'] == wd, name


def test_official_in1k_rule():
    groups = build(
        dict(layer_decay_rate=RATE, layer_decay_rule='official_in1k'))
    # merges not counted: num_layers = 4 blocks + 1 = 5, a merge takes the
    # id of the block before it, everything outside the blocks 5
    per_layer = RATE**(13 / 5)
    for name, layer_id in {
            'backbone.patch_embed.proj.weight': 0,
            'backbone.pos_embed': 0,
            'backbone.stages.0.0.mlp.fc1.weight': 1,
            'backbone.merges.0.reduction.weight': 1,
            'backbone.stages.1.0.mlp.fc1.weight': 2,
            'backbone.merges.1.reduction.weight': 2,
            'backbone.stages.2.0.attn.qkv.weight': 3,
            'backbone.stages.2.1.attn.qkv.weight': 4,
            'head.weight': 5
    }.items():
        assert groups[name]['lr'] == pytest.approx(per_layer**(5 - layer_id),
                                                   rel=1e-12), name
    for name, wd in {
            'backbone.pos_embed': 0.,
            'backbone.stages.2.0.' + RPE: 0.,
            'backbone.stages.2.0.attn.qkv.weight': 0.05,
            'backbone.stages.2.0.attn.proj.bias': 0.
    }.items():
        assert groups[name]['weight_decay'] == wd, name


def test_mmitpn_rule_is_the_default():
    groups = build(dict(layer_decay_rate=RATE))
    # blocks + 2 = 6 layers, merges share the block before them, the last
    # block gets RATE, the pyramid and the head 1
    for name, scale in {
            'backbone.patch_embed.proj.weight': 2**-5,
            'backbone.pos_embed': 2**-5,
            'backbone.stages.0.0.mlp.fc1.weight': 2**-4,
            'backbone.merges.0.reduction.weight': 2**-4,
            'backbone.stages.1.0.mlp.fc1.weight': 2**-3,
            'backbone.stages.2.1.attn.qkv.weight': 2**-1,
            'neck.align_8.weight': 1.,
            'head.weight': 1.
    }.items():
        assert groups[name]['lr'] == pytest.approx(scale, rel=1e-12), name
    for name, wd in {
            'backbone.stages.2.0.' + RPE: 0.,
            'backbone.stages.2.0.attn.qkv.weight': 0.05,
            'neck.split_16to8.norm.weight': 0.
    }.items():
        assert groups[name]['weight_decay'] == wd, name


@pytest.mark.parametrize('rule', ['mmitpn', 'official_coco'])
def test_weight_decay_defaults_to_the_optimizers_own(rule):
    """No weight_decay in the optimizer config: decayed parameters get
    AdamW's default (0.01), exempt ones 0 (not 0 everywhere)."""
    cfg = dict(layer_decay_rate=0.9, layer_decay_rule=rule)
    if rule != 'mmitpn':
        cfg['num_layers'] = 4
    groups = build(cfg, weight_decay=None)
    assert groups['backbone.stages.2.0.attn.qkv.weight'][
        'weight_decay'] == 0.01
    assert groups['head.weight']['weight_decay'] == 0.01
    assert groups['backbone.stages.2.0.attn.qkv.bias']['weight_decay'] == 0.


@pytest.mark.parametrize('paramwise, message', [
    (dict(layer_decay_rule='official'), r"layer_decay_rule must be one of"),
    (dict(layer_decay_rule='official_coco'),
     r"'official_coco' needs paramwise_cfg num_layers"),
    (dict(layer_decay_rule='official_in1k',
          num_layers=30), r'num_layers is not read by layer_decay_rule'),
    (dict(num_layers=30), r'num_layers is not read by layer_decay_rule'),
    (dict(layer_decay_rule='official_ade20k',
          num_layers=30,
          custom_keys={'norm': dict(decay_mult=0.)}),
     r"\['custom_keys'\] cannot be used with layer_decay_rule"),
])
def test_bad_paramwise_cfg(paramwise, message):
    with pytest.raises(ValueError, match=message):
        build(dict(layer_decay_rate=0.9, **paramwise))


def test_groups_are_logged(tmp_path):
    """The README's claim: the constructor prints its groups (depth, lr
    scale, weight decay, count, first parameter)."""
    import uuid

    from mmengine.logging import MMLogger
    log_file = tmp_path / 'groups.log'
    logger = MMLogger.get_instance(f'ld-{uuid.uuid4().hex}',
                                   log_file=str(log_file))
    build(
        dict(layer_decay_rate=RATE,
             layer_decay_rule='official_coco',
             num_layers=4))
    for h in logger.handlers:
        h.flush()
    out = log_file.read_text()
    assert 'Layer-wise lr decay 0.5 (official_coco rule)' in out
    lines = [line.split() for line in out.splitlines()]
    # depth 6 (the last stage-3 block): lr scale 2 = 0.5 ** -1, decayed
    assert [
        '6', '2', '0.05', '5', 'backbone.stages.2.1.attn.'
        'relative_position_bias_table'
    ] in lines
    assert ['0', '0.03125', '0.05', '1',
            'backbone.patch_embed.proj.weight'] in lines
