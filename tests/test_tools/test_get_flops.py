"""tools/analysis_tools/get_flops.py, the command line (the counts are
tested in tests/test_benchmark/test_flops.py)."""
import subprocess
import sys

from conftest import REPO

SEG_DEMO = 'configs/itpn/itpn-tiny_upernet_1xb4-2k_demo.py'


def test_smoke_main_prints_segmentor():
    """Smoke: the command line runs on the segmentation demo config and
    prints its summary; the counts themselves are not checked here."""
    proc = subprocess.run(
        [sys.executable, str(REPO / 'tools/analysis_tools/get_flops.py'),
         str(REPO / SEG_DEMO), '--shape', '128'],
        capture_output=True, text=True, timeout=600, cwd=str(REPO))
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    assert 'EncoderDecoder (segmentor)' in out
    assert 'Input shape: (1, 3, 128, 128)' in out
    assert 'FLOPs: ' in out and 'Params: ' in out


def test_bad_shape_is_one_line():
    proc = subprocess.run(
        [sys.executable, str(REPO / 'tools/analysis_tools/get_flops.py'),
         str(REPO / SEG_DEMO), '--shape', '1', '2', '3'],
        capture_output=True, text=True, timeout=600, cwd=str(REPO))
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines()[-1] == \
        '--shape takes H W or one size.'
