"""tools/model_converters/itpn_to_mmitpn.py, run as a user runs it: it
reads an official file, writes the conversion and prints the report of
:mod:`mmitpn.converters.official` (tested there); every refusal is
one line, and reading never runs code from the file.
"""
import os
import subprocess
import sys

import pytest
import torch
from conftest import REPO
from official_checkpoints import (GOLDEN, perturbed, pixel_backbone_state,
                                  whole_checkpoint)

from mmitpn.converters.official import convert_official
from mmitpn.registry import MODELS

TOOL = REPO / 'tools' / 'model_converters' / 'itpn_to_mmitpn.py'


@pytest.fixture(scope='module')
def official():
    return torch.load(GOLDEN, map_location='cpu')


def run_cli(*args):
    """The command in a subprocess (what a user types)."""
    return subprocess.run(
        [sys.executable, str(TOOL), *map(str, args)],
        capture_output=True, text=True,
        env=dict(os.environ, OMP_NUM_THREADS='1'))


def error_line(res) -> str:
    """The one line a refused command prints (and it failed)."""
    assert res.returncode != 0, res.stdout
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    return lines[0]


@pytest.mark.parametrize('wrap', ['model', 'module', 'detection'])
def test_cli_round_trip(tmp_path, official, wrap):
    sd = perturbed(official['state_dict'])
    heads = {'rpn_head.rpn_conv.weight': torch.randn(64, 64, 3, 3)}
    if wrap == 'model':
        ckpt = dict(model={'module.' + k: v for k, v in sd.items()})
    elif wrap == 'module':
        ckpt = dict(module=sd)
    else:  # an official detection checkpoint: backbone.* plus heads
        keep = pixel_backbone_state(official)
        backbone = {k: v for k, v in sd.items() if k in keep}
        ckpt = whole_checkpoint(backbone, heads)
    src, dst = tmp_path / 'src.pth', tmp_path / 'dst.pth'
    torch.save(ckpt, src)
    res = run_cli(src, dst, '--num-heads', 4, '--dec-num-heads', 4)
    assert res.returncode == 0, res.stderr
    if wrap == 'model':  # what README.md, "Checking a download", shows
        assert res.stdout.splitlines() == [
            '[convert] kind: pixel-pretrain',
            '[convert] backbone: width 128, depths (1, 1, 2), heads 4, rpe '
            'none, layer scale on stages none, LayerNorm eps 1e-06',
            '[convert] pyramid: width 64, fpn_depth 2',
            '[convert] pixel decoder: width 64, depth 1, heads 4',
            '[convert] tensors: in 129, out 129, dropped 0',
            '[convert] config: no configs/itpn/ config for this '
            'architecture',
            f'[convert] wrote 129 tensors to {dst}',
        ]
    assert 'backbone: width 128, depths (1, 1, 2), heads 4' in res.stdout
    out = torch.load(dst, weights_only=True)
    assert res.stdout.splitlines()[-1] == \
        f'[convert] wrote {len(out["state_dict"])} tensors to {dst}'
    assert out['meta']['source'] == str(src)
    cfg, osd = out['meta']['model_cfg'], out['state_dict']
    names = ('backbone', 'neck') + (('head', )
                                    if wrap != 'detection' else ())
    for name in names:
        module = MODELS.build(cfg[name])
        part = {k[len(name) + 1:]: v for k, v in osd.items()
                if k.startswith(name + '.')}
        missing, unexpected = module.load_state_dict(part, strict=False)
        assert not missing and not unexpected
    # values, key by key, against the official names written out here (a
    # converter writing zeros, swapping levels or q/k/v fails)
    expect = {
        'backbone.patch_embed.proj.weight': 'patch_embed.proj.weight',
        'backbone.pos_embed': 'absolute_pos_embed',
        'backbone.stages.0.0.mlp.fc1.weight': 'blocks.0.mlp.fc1.weight',
        'backbone.merges.0.reduction.weight': 'blocks.1.reduction.weight',
        'backbone.stages.1.0.norm2.weight': 'blocks.2.norm2.weight',
        'backbone.merges.1.norm.bias': 'blocks.3.norm.bias',
        'backbone.stages.2.0.attn.qkv.weight': 'blocks.4.attn.qkv.weight',
        'backbone.stages.2.1.attn.qkv.bias': 'blocks.5.attn.qkv.bias',
        'backbone.stages.2.1.attn.proj.weight': 'blocks.5.attn.proj.weight',
        'neck.align_16.weight': 'align_dim_16tofpn.weight',
        'neck.align_8.weight': 'align_dim_16to8.weight',
        'neck.align_4.weight': 'align_dim_8to4.weight',
        'neck.split_16to8.reduction.weight': 'split_16to8.reduction.weight',
        'neck.blocks_8.1.mlp.fc2.weight': 'block_16to8.1.mlp.fc2.weight',
        'neck.blocks_4.0.norm2.bias': 'block_8to4.0.norm2.bias',
        # official fpn_modules run stride 16, 8, 4; mmitpn finest first
        'neck.out_blocks.0.mlp.fc1.weight': 'fpn_modules.2.mlp.fc1.weight',
        'neck.out_blocks.2.mlp.fc1.weight': 'fpn_modules.0.mlp.fc1.weight',
    }
    if wrap != 'detection':
        expect.update({
            'head.decoder.level_embeds.0.proj.weight':
            'decoder_embed.2.1.weight',
            'head.decoder.level_embeds.2.norm.weight':
            'decoder_embed.0.0.weight',
            'head.decoder.mask_token': 'mask_token',
            'head.decoder.pos_embed': 'decoder_pos_embed',
            'head.decoder.pred.weight': 'decoder_pred.weight',
        })
    for ours, theirs in expect.items():
        assert torch.equal(osd[ours], sd[theirs]), ours
    if wrap == 'detection':
        assert torch.equal(osd['rpn_head.rpn_conv.weight'],
                           heads['rpn_head.rpn_conv.weight'])
        assert not out['meta']['unmapped_keys']
        assert out['meta']['kind'] == 'detector'


# ---------------------------------------------------- refusals: one line
def test_mmitpn_checkpoint_gets_a_clear_message(tmp_path, official):
    src = tmp_path / 'converted.pth'
    sd, meta, _ = convert_official(official, num_heads=4)
    torch.save(dict(state_dict=sd, meta=meta), src)
    res = run_cli(src, tmp_path / 'again.pth')
    assert error_line(res) == (
        "itpn_to_mmitpn: This checkpoint is already in mmitpn format (key "
        "'backbone.stages.0.0.norm2.weight'): no conversion needed; load it "
        "directly (init_cfg=dict(type='Pretrained', checkpoint=..., "
        "prefix='backbone.'), load_from, or tools/test.py).")
    assert not (tmp_path / 'again.pth').exists()


def test_num_heads_must_divide_the_width(tmp_path):
    dst = tmp_path / 'dst.pth'
    res = run_cli(GOLDEN, dst, '--num-heads', '3')
    assert error_line(res).startswith(
        'itpn_to_mmitpn: --num-heads 3 does not divide the stage-3 width '
        '128')
    assert not dst.exists()


def test_task_must_agree_with_the_heads(tmp_path, official):
    src, dst = tmp_path / 'det.pth', tmp_path / 'dst.pth'
    torch.save(whole_checkpoint(pixel_backbone_state(official),
                                {'rpn_head.rpn_conv.weight': torch.ones(1)}),
               src)
    res = run_cli(src, dst, '--num-heads', 4, '--task', 'seg')
    assert error_line(res) == (
        'itpn_to_mmitpn: --task seg contradicts the checkpoint, a detector '
        '(its heads say task det); drop --task.')
    assert not dst.exists()


def test_dst_equal_to_src_is_refused(tmp_path, official):
    src = tmp_path / 'src.pth'
    torch.save(dict(model=official['state_dict']), src)
    before = src.read_bytes()
    res = run_cli(src, tmp_path / '.' / 'src.pth', '--num-heads', 4)
    assert 'is SRC: the official file would be overwritten' in \
        error_line(res)
    assert src.read_bytes() == before


def test_missing_output_folder_is_refused_before_converting(tmp_path):
    src = tmp_path / 'src.pth'
    src.write_bytes(b'not even read')  # refused before loading
    res = run_cli(src, tmp_path / 'nope' / 'out.pth')
    assert error_line(res) == (
        f'itpn_to_mmitpn: Output folder {tmp_path / "nope"} does not exist; '
        f'create it (mkdir -p {tmp_path / "nope"}) or choose another DST.')


def test_truncated_checkpoint_gives_one_line_error(tmp_path):
    src = tmp_path / 'bad.pth'
    torch.save({'model': {'a': torch.zeros(1000)}}, src)
    src.write_bytes(src.read_bytes()[:200])
    line = error_line(run_cli(src, tmp_path / 'out.pth'))
    assert line == (f'itpn_to_mmitpn: Cannot read {src} (200 bytes): '
                    f'EOFError: no zip central directory. Is it '
                    f'a complete PyTorch checkpoint (not truncated)? '
                    f'Download it again.')
    assert not (tmp_path / 'out.pth').exists()


class _WritesAFile:
    """Unpickling it calls ``open(path, 'w')``: creates the file."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return open, (self.path, 'w')


def test_file_whose_pickle_runs_code_is_refused(tmp_path, official):
    marker = tmp_path / 'marker'
    src, dst = tmp_path / 'evil.pth', tmp_path / 'dst.pth'
    torch.save(dict(model=official['state_dict'],
                    payload=_WritesAFile(marker)), src)
    assert not marker.exists()
    line = error_line(run_cli(src, dst, '--num-heads', 4))
    assert line.startswith(f"itpn_to_mmitpn: Checkpoint '{src}' asks to "
                           f'unpickle ')
    assert '.open' in line  # the global (io.open / builtins.open)
    assert '--allow-unsafe-load' in line
    assert not marker.exists() and not dst.exists()
    # the payload is real: the explicit opt-in runs it (and converts)
    res = run_cli(src, dst, '--num-heads', 4, '--allow-unsafe-load')
    assert res.returncode == 0, res.stderr
    assert marker.exists()
    assert 'allow_unsafe_load' in res.stdout + res.stderr  # logged
    assert len(torch.load(dst, weights_only=True)['state_dict']) == 129
