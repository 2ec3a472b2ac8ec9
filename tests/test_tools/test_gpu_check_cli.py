"""tools/gpu_check.sh and tools/env/gpu_wheels.sh, the command lines: bad
arguments end in one line (the check itself, ``bash tools/gpu_check.sh
--dry-run``, takes minutes; its parts are tested in
tests/test_benchmark/test_gpu_check.py)."""
import subprocess

from conftest import REPO


def run(*cmd):
    return subprocess.run(['bash', *cmd], capture_output=True, text=True,
                          timeout=60, cwd=str(REPO))


def test_bad_arguments_are_one_line():
    proc = run('tools/gpu_check.sh', '--budget-s', '8m')
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        "gpu_check.sh: --budget-s takes whole seconds, got '8m'")
    proc = run('tools/gpu_check.sh', '--fast')
    assert proc.returncode == 2 and "unknown argument '--fast'" in \
        proc.stderr
    proc = run('tools/env/gpu_wheels.sh', '--fast')
    assert proc.returncode == 2 and "unknown argument '--fast'" in \
        proc.stderr


def test_help_names_the_options():
    text = run('tools/gpu_check.sh', '--help').stdout
    assert '--budget-s' in text and '--dry-run' in text and '$OUT' in text
    assert 'MMCV_WITH_OPS=0' in run('tools/env/gpu_wheels.sh',
                                    '--help').stdout
