import subprocess
import sys

import pytest
import torch
from conftest import REPO, golden_files, load_tool

from mmitpn.registry import MODELS

conv = load_tool('tools/model_converters/itpn_to_mmitpn.py')
GOLDEN = next(f for f in golden_files() if f.name == 'itpn_official_tiny.pt')


@pytest.fixture(scope='module')
def official():
    return torch.load(GOLDEN, map_location='cpu')


def run_cli(*args):
    return subprocess.run(
        [sys.executable, str(REPO / 'tools/model_converters/'
                             'itpn_to_mmitpn.py'), *map(str, args)],
        capture_output=True, text=True)


@pytest.mark.parametrize('wrap', ['model', 'module', 'detection'])
def test_cli_round_trip(tmp_path, official, wrap):
    sd = official['state_dict']
    if wrap == 'model':
        ckpt = dict(model={'module.' + k: v for k, v in sd.items()})
    elif wrap == 'module':
        ckpt = dict(module=sd)
    else:  # an official detection checkpoint: backbone.* plus heads
        ckpt = dict(state_dict={
            **{'backbone.' + k: v for k, v in sd.items()
               if not k.startswith(('decoder', 'mask_token'))},
            'rpn_head.rpn_conv.weight': torch.zeros(1)})
    src, dst = tmp_path / 'src.pth', tmp_path / 'dst.pth'
    torch.save(ckpt, src)
    res = run_cli(src, dst, '--num-heads', 4, '--dec-num-heads', 4)
    assert res.returncode == 0, res.stderr
    assert 'backbone: width 128, depths (1, 1, 2), heads 4' in res.stdout
    out = torch.load(dst)
    cfg = out['meta']['model_cfg']
    for name in ('backbone', 'neck') + (('head', )
                                         if wrap != 'detection' else ()):
        module = MODELS.build(cfg[name])
        part = {k[len(name) + 1:]: v for k, v in out['state_dict'].items()
                if k.startswith(name + '.')}
        missing, unexpected = module.load_state_dict(part, strict=False)
        assert not missing and not unexpected
    if wrap == 'detection':
        assert 'rpn_head.rpn_conv.weight' in res.stdout
        assert out['meta']['unmapped_keys'] == ['rpn_head.rpn_conv.weight']


def test_pyramid_width_is_read_from_tensors(official):
    # The released itpn_base_pixel has a 512-wide pyramid (official issue
    # #3): widths must come from the file, not from defaults.
    sd = dict(official['state_dict'])
    _, cfg, _, notes = conv.convert_official(sd, num_heads=4)
    assert cfg['neck']['out_channels'] == 64
    assert any('pyramid: width 64' in n for n in notes)


def test_heads_need_an_argument_for_unofficial_widths(official):
    with pytest.raises(ValueError, match='--num-heads'):
        conv.convert_official(official['state_dict'])
    sd = {k: v for k, v in official['state_dict'].items()}
    with pytest.raises(ValueError, match='not an official iTPN'):
        conv.convert_official({'fc.weight': torch.zeros(2, 2)})
    del sd['blocks.1.reduction.weight']
    with pytest.raises(ValueError, match='2 patch merges'):
        conv.convert_official(sd, num_heads=4)


def test_layer_scale_and_split_qkv_bias_are_converted(official):
    sd = dict(official['state_dict'])
    C = 128
    for i in (4, 5):
        sd[f'blocks.{i}.gamma_1'] = torch.full((C, ), 0.1)
        sd[f'blocks.{i}.gamma_2'] = torch.full((C, ), 0.2)
        del sd[f'blocks.{i}.attn.qkv.bias']
        sd[f'blocks.{i}.attn.q_bias'] = torch.ones(C)
        sd[f'blocks.{i}.attn.v_bias'] = torch.full((C, ), 2.)
        sd[f'blocks.{i}.attn.relative_position_bias_table'] = torch.zeros(
            11 * 11, 4)
        sd[f'blocks.{i}.attn.relative_position_index'] = torch.zeros(
            36, 36, dtype=torch.long)
    out, cfg, unmapped, _ = conv.convert_official(sd)
    assert cfg['backbone']['arch']['num_heads'] == 4  # from the rpe table
    assert cfg['backbone']['use_rpe'] and \
        cfg['backbone']['layer_scale_init_value'] > 0
    bias = out['backbone.stages.2.0.attn.qkv.bias']
    assert torch.equal(bias, torch.cat([torch.ones(C), torch.zeros(C),
                                        torch.full((C, ), 2.)]))
    model = MODELS.build(cfg['backbone'])
    part = {k[9:]: v for k, v in out.items() if k.startswith('backbone.')}
    model.load_state_dict(part)
    assert not unmapped


def test_truncated_checkpoint_gives_one_line_error(tmp_path):
    src = tmp_path / 'bad.pth'
    torch.save({'model': {'a': torch.zeros(1000)}}, src)
    src.write_bytes(src.read_bytes()[:200])
    res = run_cli(src, tmp_path / 'out.pth')
    assert res.returncode != 0
    assert 'Cannot read' in res.stderr and 'truncated' in res.stderr
