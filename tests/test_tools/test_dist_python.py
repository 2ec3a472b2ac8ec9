"""Which Python ``tools/dist_train.sh`` / ``dist_test.sh`` run.

Each script is copied into a temporary checkout (``<tmp>/repo/tools/``)
whose candidate interpreters are stand-ins that record their argv: the
project's ``.venv/bin/python``, one under ``$MMITPN_VENV``, one given by
``$MMITPN_PYTHON`` and a ``python`` first on ``PATH``. The script must run
``$MMITPN_PYTHON`` if set, else the venv's python if it exists, else the
``python`` of ``PATH`` (so the README's command works without an active
venv).
"""
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
RECORDER = '#!/usr/bin/env bash\nprintf "%s\\n" "$0" > "$RECORD_FILE"\n'
ARGS = {'dist_train.sh': ['c.py', '2'], 'dist_test.sh': ['c.py', 'k.pth', '2']}


def _recorder(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(RECORDER)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


@pytest.fixture
def checkout(tmp_path):
    tools = tmp_path / 'repo' / 'tools'
    tools.mkdir(parents=True)
    for script in ARGS:
        shutil.copy(REPO / 'tools' / script, tools / script)
    path_dir = tmp_path / 'bin'
    pythons = dict(
        path=_recorder(path_dir / 'python'),
        venv=tmp_path / 'repo' / '.venv' / 'bin' / 'python',
        other_venv=_recorder(tmp_path / 'elsewhere' / 'bin' / 'python'),
        explicit=_recorder(tmp_path / 'explicit' / 'python'))

    def run(script, with_venv, **env_extra):
        if with_venv:
            _recorder(pythons['venv'])
        env = {k: v for k, v in os.environ.items()
               if k not in ('MMITPN_PYTHON', 'MMITPN_VENV')}
        env.update(PATH=f'{path_dir}{os.pathsep}{os.environ["PATH"]}',
                   RECORD_FILE=str(tmp_path / 'record'), **env_extra)
        res = subprocess.run(['bash', str(tools / script), *ARGS[script]],
                             env=env, capture_output=True, text=True,
                             timeout=60)
        assert res.returncode == 0, res.stderr
        return Path((tmp_path / 'record').read_text().strip()).resolve()

    return run, {k: v.resolve() if v.exists() else v
                 for k, v in pythons.items()}


@pytest.mark.parametrize('script', list(ARGS))
def test_the_projects_venv_first(checkout, script):
    run, py = checkout
    assert run(script, with_venv=True) == py['venv'].resolve()


@pytest.mark.parametrize('script', list(ARGS))
def test_python_from_path_without_a_venv(checkout, script):
    run, py = checkout
    assert run(script, with_venv=False) == py['path']


@pytest.mark.parametrize('script', list(ARGS))
def test_mmitpn_venv_and_mmitpn_python(checkout, script):
    run, py = checkout
    other = py['other_venv'].parent.parent
    assert run(script, with_venv=True,
               MMITPN_VENV=str(other)) == py['other_venv']
    assert run(script, with_venv=True, MMITPN_VENV=str(other),
               MMITPN_PYTHON=str(py['explicit'])) == py['explicit']
