"""Loading is all or nothing unless asked otherwise
(:func:`mmitpn.models.utils.check_state_dict`, run by the load pre-hooks of
HiViTBackbone and ITPNPyramid)."""
import logging
import re

import pytest
import torch
import torch.nn as nn
from conftest import TINY_ARCH
from mmengine.logging import MMLogger
from mmengine.runner.checkpoint import load_checkpoint

from mmitpn.models import HiViTBackbone, ITPNPyramid


def backbone(depths=(1, 1, 2), **kwargs):
    return HiViTBackbone(
        arch=dict(TINY_ARCH, depths=depths), img_size=64, **kwargs)


def pyramid(fpn_depth=1, **kwargs):
    return ITPNPyramid(in_channels=(16, 32, 64), out_channels=32,
                       fpn_depth=fpn_depth, num_outs=3, **kwargs)


def full_model_state(bb=None):
    """The state dict of a whole model (keys ``backbone.*``, ``neck.*``)."""
    model = nn.Module()
    model.backbone = bb or backbone()
    model.neck = pyramid()
    return model.state_dict()


def save(tmp_path, state_dict, name='ckpt.pth'):
    path = tmp_path / name
    torch.save(dict(state_dict=state_dict), path)
    return str(path)


def pretrained(path, prefix=None):
    cfg = dict(type='Pretrained', checkpoint=path)
    if prefix:
        cfg['prefix'] = prefix
    return cfg


@pytest.fixture
def log_records():
    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record)

    logger = MMLogger.get_current_instance()
    handler = Keep(level=logging.DEBUG)
    logger.addHandler(handler)
    yield records
    logger.removeHandler(handler)


def one_line(err) -> str:
    message = str(err.value)
    assert '\n' not in message, message
    return message


def assert_loaded(module, state_dict, prefix=''):
    for key, value in module.state_dict().items():
        if prefix + key in state_dict:
            assert torch.equal(value, state_dict[prefix + key]), key


# ---------------------------------------------------------- loads nothing
def test_forgotten_prefix_stops_and_names_it(tmp_path):
    """An mmitpn checkpoint (keys ``backbone.*``) without
    ``prefix='backbone.'``: 0 tensors would load."""
    path = save(tmp_path, full_model_state())
    bb = backbone(init_cfg=pretrained(path))
    with pytest.raises(ValueError) as err:
        bb.init_weights()
    msg = one_line(err)
    n = len(bb.state_dict())
    assert re.search(rf'HiViTBackbone: the checkpoint loads 0 of {n} '
                     r'tensors', msg), msg
    assert "prefix='backbone.'" in msg


def test_with_the_prefix_it_loads_all(tmp_path):
    src = backbone()
    state = full_model_state(src)
    path = save(tmp_path, state)
    bb = backbone(init_cfg=pretrained(path, 'backbone.'))
    bb.init_weights()
    assert_loaded(bb, state, 'backbone.')
    assert torch.equal(bb.patch_embed.proj.weight,
                       src.patch_embed.proj.weight)


def test_resnet_file_stops(tmp_path):
    path = save(tmp_path, {'conv1.weight': torch.zeros(64, 3, 7, 7),
                           'layer1.0.conv1.weight': torch.zeros(64, 64, 1,
                                                                1)})
    with pytest.raises(ValueError) as err:
        backbone(init_cfg=pretrained(path)).init_weights()
    msg = one_line(err)
    assert 'loads 0 of' in msg and 'conv1.weight' in msg
    assert 'not a checkpoint of this module' in msg


def test_zero_loaded_stops_even_with_allow_partial(tmp_path):
    path = save(tmp_path, full_model_state())
    with pytest.raises(ValueError, match='loads 0 of'):
        backbone(init_cfg=pretrained(path),
                 allow_partial_load=True).init_weights()


# ------------------------------------------------------ another depth
def test_deeper_backbone_checkpoint_stops(tmp_path):
    """depths (1, 1, 6) into (1, 1, 2): the extra blocks are not dropped
    silently."""
    path = save(tmp_path, backbone(depths=(1, 1, 6)).state_dict())
    with pytest.raises(ValueError) as err:
        backbone(init_cfg=pretrained(path)).init_weights()
    msg = one_line(err)
    assert re.search(r'incomplete load, \d+ of \d+ tensors', msg), msg
    assert re.search(r'0 missing .* unexpected \(stages\.2\.2\.', msg), msg
    assert 'stages.2 has 6 blocks in the checkpoint, 2 here' in msg
    assert 'arch (depths)' in msg and 'allow_partial_load=True' in msg


def test_shallower_backbone_checkpoint_stops(tmp_path):
    """Same width, other depth (like HiViT-S into tiny) the other way:
    blocks of the model would keep their random initialisation."""
    path = save(tmp_path, backbone(depths=(1, 1, 2)).state_dict())
    with pytest.raises(ValueError) as err:
        backbone(depths=(2, 2, 4), init_cfg=pretrained(path)).init_weights()
    msg = one_line(err)
    assert re.search(r'\d+ missing \(stages\.0\.1\.', msg), msg
    assert 'stages.2 has 2 blocks in the checkpoint, 4 here' in msg


def test_deeper_pyramid_stops_naming_fpn_depth(tmp_path):
    path = save(tmp_path, pyramid(fpn_depth=2).state_dict())
    with pytest.raises(ValueError) as err:
        pyramid(init_cfg=pretrained(path)).init_weights()
    msg = one_line(err)
    assert msg.startswith('ITPNPyramid: incomplete load'), msg
    assert 'fpn_depth' in msg and 'blocks_' in msg


def test_official_coco_quirk_drops_exactly_the_named_blocks(
        tmp_path, log_records):
    """allow_partial_load=('blocks_8.1.', 'blocks_4.1.'): a depth-2
    pre-training pyramid loads at fpn_depth 1, the dropped keys logged at
    WARNING, every kept tensor loaded."""
    src = pyramid(fpn_depth=2).state_dict()
    path = save(tmp_path, src)
    neck = pyramid(allow_partial_load=('blocks_8.1.', 'blocks_4.1.'),
                   init_cfg=pretrained(path))
    neck.init_weights()
    assert_loaded(neck, src)
    assert set(neck.state_dict()) <= set(src)
    warnings = [r.getMessage() for r in log_records
                if r.levelno == logging.WARNING and
                'partial load' in r.getMessage()]
    dropped = [k for k in src if k.startswith(('blocks_8.1.',
                                               'blocks_4.1.'))]
    assert len(warnings) == 1, warnings
    assert f'0 missing, {len(dropped)} dropped' in warnings[0]
    assert all(f'unexpected (dropped)              {k}' in warnings[0]
               for k in dropped)


def test_prefix_list_does_not_cover_other_keys(tmp_path):
    src = pyramid(fpn_depth=2).state_dict()
    path = save(tmp_path, src)
    with pytest.raises(ValueError, match=r'unexpected \(blocks_4\.1\.'):
        pyramid(allow_partial_load=('blocks_8.1.', ),
                init_cfg=pretrained(path)).init_weights()


def test_allow_partial_true_logs_the_table(tmp_path, log_records):
    src = backbone().state_dict()
    del src['stages.2.1.mlp.fc1.weight']
    path = save(tmp_path, src)
    bb = backbone(allow_partial_load=True, init_cfg=pretrained(path))
    init = bb.stages[2][1].mlp.fc1.weight.detach().clone()
    bb.init_weights()
    assert_loaded(bb, src)
    assert torch.equal(bb.stages[2][1].mlp.fc1.weight, init)
    warnings = [r.getMessage() for r in log_records
                if r.levelno == logging.WARNING and
                'partial load' in r.getMessage()]
    assert len(warnings) == 1
    assert '1 missing, 0 dropped' in warnings[0]
    assert 'missing (kept at initialisation)  stages.2.1.mlp.fc1.weight' \
        in warnings[0]


def test_allow_partial_load_must_be_bool_or_prefixes():
    with pytest.raises(TypeError, match=r"tuple of key prefixes.*got "
                       r"'blocks_8\.1\.'"):
        pyramid(allow_partial_load='blocks_8.1.')


# --------------------------------------------- loads that must still work
def test_whole_model_load_is_complete():
    """Resume / load_from / tools/test.py load a whole model through the
    same pre-hooks: a complete state dict passes."""
    model = nn.Module()
    model.backbone, model.neck = backbone(), pyramid()
    other = nn.Module()
    other.backbone, other.neck = backbone(), pyramid()
    state = other.state_dict()
    model.load_state_dict(state)
    assert_loaded(model, state)


def test_whole_model_load_with_missing_backbone_tensor_stops():
    model = nn.Module()
    model.backbone, model.neck = backbone(), pyramid()
    state = model.state_dict()
    del state['backbone.pos_embed']
    with pytest.raises(ValueError, match=r"HiViTBackbone under 'backbone\.'"
                       r": incomplete load.*missing \(pos_embed\)"):
        model.load_state_dict(state, strict=False)


def test_pretraining_only_and_fine_tuning_only_tensors(tmp_path,
                                                       log_records):
    """A pre-training checkpoint (mask token, no relative position tables)
    into a fine-tuning backbone with rpe: the tables keep their
    initialisation (the checkpoint has none of them), the mask token is
    ignored, everything else loads."""
    src = backbone(use_mask_token=True).state_dict()
    path = save(tmp_path, src)
    bb = backbone(use_rpe=True, init_cfg=pretrained(path))
    tables = {k: v.detach().clone() for k, v in bb.state_dict().items()
              if k.endswith('relative_position_bias_table')}
    assert tables
    bb.init_weights()
    assert_loaded(bb, src)
    for k, v in tables.items():
        assert torch.equal(bb.state_dict()[k], v)
    info = ' '.join(r.getMessage() for r in log_records)
    assert 'initialised here' in info and 'ignored (pre-training only): ' \
        'mask_token' in info


def test_some_rpe_tables_missing_is_incomplete(tmp_path):
    """A checkpoint with some relative position tables but not all is
    incomplete (not a checkpoint trained without rpe)."""
    src = backbone(use_rpe=True).state_dict()
    tables = [k for k in src if k.endswith('relative_position_bias_table')]
    assert len(tables) == 2  # one per stage-3 block
    del src[tables[0]]
    with pytest.raises(ValueError, match=r'1 missing \(' +
                       re.escape(tables[0])):
        backbone(use_rpe=True,
                 init_cfg=pretrained(save(tmp_path, src))).init_weights()


def test_load_checkpoint_api_runs_the_check(tmp_path):
    """MMEngine's load_checkpoint (load_from) goes through the pre-hook."""
    path = save(tmp_path, backbone(depths=(1, 1, 6)).state_dict())
    with pytest.raises(ValueError, match='incomplete load'):
        load_checkpoint(backbone(), path)


def test_hivit_small_into_tiny_names_the_arch():
    """tiny and small share width 384: a HiViT-S file used to load into
    tiny as '47 of 47'. Now it stops and names arch='small'."""
    small = HiViTBackbone(arch='small', img_size=32).state_dict()
    with pytest.raises(ValueError) as err:
        HiViTBackbone(arch='tiny', img_size=32).load_state_dict(
            small, strict=False)
    msg = one_line(err)
    assert 'stages.2 has 20 blocks in the checkpoint, 10 here' in msg
    assert "set arch (depths) to the checkpoint's (arch='small')" in msg
