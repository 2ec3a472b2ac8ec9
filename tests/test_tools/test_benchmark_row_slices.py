"""Tests of ``tools/analysis_tools/benchmark_row_slices.py``."""
import json
import os
import subprocess
import sys
from pathlib import Path

TOOL = Path(__file__).resolve().parents[2] / 'tools' / 'analysis_tools' / \
    'benchmark_row_slices.py'


def test_smoke_one_measurement():
    """One in-process measurement (``--one``) of the smallest case runs and
    reports its numbers; it does not check that slicing pays (that is the
    benchmark's own result, in docs/benchmark.md)."""
    res = subprocess.run(
        [sys.executable, str(TOOL), '--one', 'cp_p4', 'off', '--size', '64',
         '--repeat', '1'],
        capture_output=True, text=True, timeout=300,
        env=dict(os.environ, OMP_NUM_THREADS='1'))
    assert res.returncode == 0, res.stderr[-2000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out['case'] == 'cp_p4' and out['mode'] == 'off'
    assert out['wall_s'] > 0 and out['cpu_s'] > 0 and out['peak_mb'] >= 0
