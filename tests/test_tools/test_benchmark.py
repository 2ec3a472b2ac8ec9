"""tools/analysis_tools/benchmark.py, the command line: smoke runs with a
tiny architecture (``--quick``); what is timed and how is tested in
tests/test_benchmark/. No timing is asserted."""
import json
import subprocess
import sys

import pytest
from conftest import REPO

from mmitpn.benchmark.report import MD_BEGIN, MD_END

TOOL = str(REPO / 'tools/analysis_tools/benchmark.py')


def run(*args):
    proc = subprocess.run([sys.executable, TOOL, *args], capture_output=True,
                          text=True, timeout=900, cwd=str(REPO))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_smoke_quick_run_prints_ratios_and_json(tmp_path):
    """Smoke: all cases, one fresh process per group, with memory and
    profile; the table, JSON and Markdown come out with their fields. The
    numbers are not checked."""
    out = tmp_path / 'bench.json'
    md = tmp_path / 'benchmark.md'
    md.write_text(f'intro\n{MD_BEGIN}\nold table\n{MD_END}\noutro\n')
    text = run('--quick', '--json', str(out), '--markdown', str(md),
               '--profile')
    doc = md.read_text()
    # the table replaces the old one between the markers; the rest is kept
    assert doc.startswith('intro\n') and doc.endswith('outro\n')
    assert 'old table' not in doc and '| b tiny' in doc
    assert '--markdown' in doc  # the command that made it
    assert 'ISA flags: ' in doc
    assert 'speed-up' in text and 'peak MB' in text
    saved = json.loads(out.read_text())
    printed = json.loads(text[text.index('\n{') + 1:])
    assert saved['env']['quick'] and saved['results'] == printed['results']
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
        if key[0] != 'c':  # profiled: share of time in matrix products
            assert 0 < r['gemm_share'] < 1
    # the outputs were checked equal before timing
    assert any('max diff' in n for n in saved['notes'])
    for r in saved['results']:
        if sys.platform.startswith('linux'):
            assert r['peak_mb'] is not None


def test_smoke_cli_subset_without_memory():
    """Smoke: one case in one process, no memory round; the table holds
    only that case."""
    stdout = run('--quick', '--cases', 'a', '--no-memory', '--threads', '1',
                 '--in-process', '--batch', '1')
    table = stdout.split('\n\n')[0]
    assert 'a tiny 64 b1 ' in table and 'b tiny' not in table
    assert 'x ' in table and 'per round' in table  # e.g. "1.02x"
    data = json.loads(stdout[stdout.index('\n{') + 1:])
    assert data['env']['threads'] == 1
    assert all(r['peak_mb'] is None for r in data['results'])


def test_smoke_cli_throughput(tmp_path):
    """Smoke: --throughput on the CPU (bf16 only, doubling to 4) writes
    its JSON and a tagged Markdown table. The numbers are not checked."""
    out, md = tmp_path / 'gpu.json', tmp_path / 'gpu.md'
    md.write_text('# page\n')
    stdout = run('--throughput', '--quick', '--precisions', 'bf16',
                 '--max-batch', '4', '--peak-tflops', '1', '--budget-s',
                 '300', '--threads', '1', '--warmup', '1', '--repeat', '1',
                 '--json', str(out), '--markdown', str(md), '--markdown-tag',
                 'gpu')
    assert 'images/s' in stdout.splitlines()[0] and 'MFU' in stdout
    data = json.loads(out.read_text())
    assert data['env']['peak_source'] == '--peak-tflops'
    assert data['env']['precisions'] == ['bf16']
    assert {r['phase'] for r in data['rows']} == {'batch', 'max batch'}
    assert all(r['status'] == 'ok' for r in data['rows'])
    doc = md.read_text()
    assert doc.startswith('# page\n\n<!-- benchmark:gpu:begin -->\n')
    assert '| max batch | bf16 | 4 | pixel step | mmitpn |' in doc
