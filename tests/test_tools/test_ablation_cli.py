"""Tests of ``tools/analysis_tools/ablation.py``, the command line of
:mod:`mmitpn.experiments.ablation`, whose own tests (runs end to end
included) are ``tests/test_experiments/test_ablation.py`` (hence this
file's name: test modules need unique names here)."""
import json
import subprocess
import sys

from conftest import REPO

from mmitpn.experiments.ablation import TOOL
from mmitpn.experiments.rendering import render_page

INFO = dict(cpu='Test CPU', cores=2, omp_num_threads='2', isa='AVX2',
            flags=['avx2'], torch='2.x', python='3.11')


def _tool(*args, cwd):
    return subprocess.run([sys.executable, str(REPO / TOOL), *args],
                          capture_output=True, text=True, cwd=cwd)


def test_render_only(tmp_path):
    # no JSON yet: the page of an ablation not run yet
    done = _tool('--render-only', '--out', str(tmp_path / 'absent.json'),
                 '--doc', 'page.md', cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    page = (tmp_path / 'page.md').read_text()
    assert 'not yet run' in page and f'python {TOOL} --seeds 0 1 2' in page
    assert '±' not in page  # no numbers
    assert not (tmp_path / 'work_dirs').exists()  # nothing ran
    # a JSON of runs: the page the package renders from it
    runs = [dict(seed=s, stage='det', variant=v, bbox_mAP=0.1 * s + i / 10,
                 segm_mAP=0.2, wall_s=60.0, machine=INFO)
            for s in (0, 1) for i, v in enumerate('abcd')]
    results = dict(pretrain_config='x', configs={}, cfg_options=[],
                   seeds=[0, 1], tasks=['det'], runs=runs)
    (tmp_path / 'runs.json').write_text(json.dumps(results))
    done = _tool('--render-only', '--out', 'runs.json', '--doc',
                 'docs/page.md', cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    render_page(results, tmp_path / 'expected.md')
    assert (tmp_path / 'docs' / 'page.md').read_text() == \
        (tmp_path / 'expected.md').read_text()


def test_bad_tasks_are_refused(tmp_path):
    done = _tool('--tasks', 'det,cls', cwd=tmp_path)
    assert done.returncode == 2
    assert '--tasks det,cls: choose from det,seg' in done.stderr
