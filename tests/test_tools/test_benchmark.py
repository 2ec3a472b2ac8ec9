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


def test_smoke_quick_run_prints_ratios_and_json(tmp_path, capsys):
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
    assert 'ISA flags: ' in doc
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
        # speed-up = the reference's time / this row's (one round; the
        # JSON's times are rounded to 0.01 ms)
        ref_row = next(x for x in saved['results']
                       if x['case'] == r['case'] and x['impl'] == r['ref'])
        assert r['speedup'] == pytest.approx(
            ref_row['times_ms'][0] / r['times_ms'][0], rel=0.02)
        assert len(r['round_speedups']) == len(r['times_ms']) == 1
        assert r['ref'] is not None
        if key[0] != 'c':  # profiled: share of time in matrix products
            assert 0 < r['gemm_share'] < 1
    # the outputs were checked equal before timing
    assert any('max diff' in n for n in saved['notes'])
    for r in saved['results']:
        if sys.platform.startswith('linux'):
            assert r['peak_mb'] is not None


def test_smoke_cli_subset_without_memory():
    proc = subprocess.run(
        [sys.executable, str(REPO / 'tools/analysis_tools/benchmark.py'),
         '--quick', '--cases', 'a', '--no-memory', '--threads', '1',
         '--in-process', '--batch', '1'],
        capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    table = proc.stdout.split('\n\n')[0]
    assert 'a tiny 64 b1 ' in table and 'b tiny' not in table
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


def test_teacher_entry_runs_the_teacher_as_the_mfm_step_does():
    """The "teacher fwd only" entry runs under the step's autocast and in
    the model's teacher_dtype (it once ran fp32 in a --dtype bf16 run);
    its fp32 twin runs fp32 whatever teacher_dtype is."""
    img = torch.randn(1, 3, 64, 64)

    def bf16():
        return torch.autocast('cpu', dtype=torch.bfloat16)

    fp32_teacher = bm.build_ours_mim(bm.QUICK, mfm=True)
    bf16_teacher = bm.build_ours_mim(bm.QUICK, mfm=True,
                                     teacher_dtype='bf16')
    dtypes = {
        'fp32 teacher, bf16 autocast':
        bm.teacher_fwd(fp32_teacher, img, bf16)()[0].dtype,
        'fp32 teacher, no autocast':
        bm.teacher_fwd(fp32_teacher, img, bm.nullcontext)()[0].dtype,
        'bf16 teacher': bm.teacher_fwd(bf16_teacher, img, bm.nullcontext)()
        [0].dtype,
        'bf16 teacher forced fp32': bm.teacher_fwd(
            bf16_teacher, img, bf16, fp32=True)()[0].dtype,
    }
    assert dtypes == {
        'fp32 teacher, bf16 autocast': torch.bfloat16,
        'fp32 teacher, no autocast': torch.float32,
        'bf16 teacher': torch.bfloat16,
        'bf16 teacher forced fp32': torch.float32,
    }
    assert bf16_teacher.teacher_dtype == torch.bfloat16  # restored


def test_cpu_isa_flags(tmp_path):
    info = tmp_path / 'cpuinfo'
    info.write_text('model name\t: X\nflags\t\t: fpu sse avx2 fma avx512f '
                    'avx512_bf16 amx_tile amx_bf16 avx512_vnni\n')
    assert bm.cpu_isa(str(info)) == ['avx2', 'fma', 'avx512f', 'avx512_vnni',
                                     'avx512_bf16', 'amx_tile', 'amx_bf16']
    assert bm.cpu_isa(str(tmp_path / 'missing')) is None
    result = dict(env=dict(
        command='c', device='cpu', cpu='X', cpu_isa=['avx2', 'avx512_bf16'],
        cores=2, threads=2, dtype='bf16', torch='t', mmpretrain='m',
        repeat=1, heavy_repeat=1, load_avg_start=None, load_avg_end=None,
        wall_s=1), notes=[], results=[])
    assert 'ISA flags: avx2 avx512_bf16' in bm.format_markdown(result)


def test_tagged_tables_replace_only_their_own(tmp_path):
    def result(cmd):
        return dict(env=dict(
            command=cmd, device='cpu', cpu='X', cpu_isa=None, cores=2,
            threads=2, dtype='fp32', torch='t', mmpretrain='m', repeat=1,
            heavy_repeat=1, load_avg_start=None, load_avg_end=None,
            wall_s=1), notes=[], results=[])

    md = tmp_path / 'b.md'
    md.write_text(f'intro\n{bm.MD_BEGIN}\nold\n{bm.MD_END}\nmiddle\n')
    bm.write_markdown(str(md), result('first bf16'), 'bf16')
    bm.write_markdown(str(md), result('second bf16'), 'bf16')
    bm.write_markdown(str(md), result('fp32 again'))
    text = md.read_text()
    assert text.startswith('intro\n') and '\nmiddle\n' in text
    assert text.count('<!-- benchmark:bf16:begin -->') == 1
    assert 'second bf16' in text and 'first bf16' not in text
    assert 'fp32 again' in text and 'old' not in text
    assert 'ISA flags: n/a' in text
