"""Tests of ``tools/data/make_demo_data.py``, the command line of
:mod:`mmitpn.datasets.demo_data` (whose own tests are in
``tests/test_datasets/test_demo_data.py``)."""
import hashlib
import json
import os
import subprocess
import sys

from conftest import REPO

from mmitpn.datasets.demo_data import make_demo_data


def _data_files(root):
    """``{relative path: sha1}`` of the files under ``root`` but the
    manifest (which records the time taken)."""
    out = {}
    for d, _, files in os.walk(root):
        for f in files:
            p = os.path.join(d, f)
            if f != 'manifest.json':
                with open(p, 'rb') as fh:
                    out[os.path.relpath(p, root)] = hashlib.sha1(
                        fh.read()).hexdigest()
    return out


def test_cli(tmp_path):
    script = str(REPO / 'tools' / 'data' / 'make_demo_data.py')
    out = tmp_path / 'cli'
    args = [sys.executable, script, '--out', str(out), '--seed', '0',
            '--scale', '0.02']
    first = subprocess.run(args, capture_output=True, text=True, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert 'coco' in first.stdout and str(out) in first.stdout
    second = subprocess.run(args, capture_output=True, text=True,
                            cwd=tmp_path)
    assert second.returncode == 0 and 'up to date' in second.stdout
    forced = subprocess.run(args + ['--force'], capture_output=True,
                            text=True, cwd=tmp_path)
    assert forced.returncode == 0 and 'up to date' not in forced.stdout
    # the tool writes what the package's function writes, for its arguments
    ref = make_demo_data(str(tmp_path / 'api'), seed=0, scale=0.02)
    assert _data_files(out) == _data_files(tmp_path / 'api')
    assert ref['counts'] == json.loads(
        (out / 'manifest.json').read_text())['counts']
    other = subprocess.run(
        [sys.executable, script, '--out', str(tmp_path / 'seed1'), '--seed',
         '1', '--scale', '0.02'], capture_output=True, text=True,
        cwd=tmp_path)
    assert other.returncode == 0, other.stderr
    assert json.loads((tmp_path / 'seed1' / 'manifest.json').read_text())[
        'seed'] == 1
