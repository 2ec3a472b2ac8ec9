"""Smoke tests of ``tools/analysis_tools/benchmark.py`` (``--quick``: a
tiny architecture, one round; no timing is asserted)."""
import json
import subprocess
import sys

import pytest
import torch
from conftest import REPO, load_tool

bm = load_tool('tools/analysis_tools/benchmark.py')


def test_weight_mapping_covers_every_tensor_both_ways():
    a = bm.QUICK
    ref = bm.build_ref_itpn(a)
    ours = bm.build_ours_mim(a, mfm=False)
    mapped = bm.map_mmpretrain_to_mmitpn(ref.state_dict(), a['depths'])
    own = ours.state_dict()
    # every mmitpn tensor comes from mmpretrain, nothing is left over
    assert set(mapped) == set(own)
    for k, v in mapped.items():
        assert v.shape == own[k].shape, k
    # pyramid output blocks and level embeddings are reversed
    sd = ref.state_dict()
    assert torch.equal(mapped['neck.out_blocks.0.mlp.fc1.weight'],
                       sd['neck.fpn_modules.2.mlp.fc1.weight'])
    assert torch.equal(
        mapped['head.decoder.level_embeds.0.proj.weight'],
        sd['neck.decoder_embed.2.1.weight'])
    # stems: mmpretrain builds 2 x depth MLP blocks per stem stage
    assert bm.hivit_block_names((1, 1, 2)) == [
        'stages.0.0', 'stages.0.1', 'merges.0', 'stages.1.0', 'stages.1.1',
        'merges.1', 'stages.2.0', 'stages.2.1'
    ]


def test_fixed_masks_are_mae_masks():
    ids_keep, ids_restore, mask = bm.fixed_masks(3, 16)
    assert ids_keep.shape == (3, 4) and mask.sum(1).eq(12).all()
    assert torch.equal(mask.gather(1, ids_keep), torch.zeros(3, 4))
    assert torch.equal(bm.fixed_masks(3, 16)[0], ids_keep)


def test_quick_run_prints_ratios_and_json(tmp_path, capsys):
    out = tmp_path / 'bench.json'
    md = tmp_path / 'benchmark.md'
    md.write_text(f'intro\n{bm.MD_BEGIN}\nold table\n{bm.MD_END}\noutro\n')
    result = bm.main(['--quick', '--json', str(out), '--markdown', str(md),
                      '--profile'])
    doc = md.read_text()
    # the table replaces the old one between the markers; the rest is kept
    assert doc.startswith('intro\n') and doc.endswith('outro\n')
    assert 'old table' not in doc and '| b tiny' in doc
    assert '--markdown' in doc  # the command that made it
    text = capsys.readouterr().out
    assert 'speed-up' in text and 'peak MB' in text
    saved = json.loads(out.read_text())
    assert saved['env']['quick'] and saved['results'] == json.loads(
        json.dumps(result['results']))
    rows = {(r['case'].split()[0], r['impl']): r for r in saved['results']}
    for key in [('a', 'mmitpn'), ('b', 'mmitpn'), ('b', 'mmitpn pixel+MFM'),
                ('b', 'mmitpn teacher fwd only'),
                ('c', 'mmitpn'), ('c', 'mmitpn with_cp')]:
        assert key in rows, key
        r = rows[key]
        assert r['speedup'] > 0 and r['median_ms'] > 0
        assert len(r['round_speedups']) == len(r['times_ms']) == 1
        assert r['ref'] is not None
        if key[0] != 'c':  # profiled: share of time in matrix products
            assert 0 < r['gemm_share'] < 1
    # the outputs were checked equal before timing
    assert any('max diff' in n for n in saved['notes'])
    for r in saved['results']:
        if sys.platform.startswith('linux'):
            assert r['peak_mb'] is not None


def test_cli_subset_without_memory():
    proc = subprocess.run(
        [sys.executable, str(REPO / 'tools/analysis_tools/benchmark.py'),
         '--quick', '--cases', 'a', '--no-memory', '--threads', '1',
         '--in-process'],
        capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    table = proc.stdout.split('\n\n')[0]
    assert 'a tiny' in table and 'b tiny' not in table
    assert 'x ' in table and 'per round' in table  # e.g. "1.02x"
    data = json.loads(proc.stdout[proc.stdout.index('\n{') + 1:])
    assert data['env']['threads'] == 1
    assert all(r['peak_mb'] is None for r in data['results'])


def test_unequal_models_are_not_timed(monkeypatch):
    real = bm.copy_weights

    def broken(ref, ours, depths, prefix=''):
        real(ref, ours, depths, prefix)
        with torch.no_grad():
            list(ours.parameters())[-1].mul_(2.)

    monkeypatch.setattr(bm, 'copy_weights', broken)
    with pytest.raises(SystemExit, match='Outputs differ'):
        bm.main(['--quick', '--cases', 'a', '--no-memory', '--in-process'])
