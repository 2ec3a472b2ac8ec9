"""``tools/analysis_tools/visualize_reconstruction.py`` from the command
line: one labelled row per image (the panels:
tests/test_visualization/test_reconstruction.py)."""
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch
from conftest import REPO, tiny_itpn_cfg


def test_main_writes_one_labelled_row_per_image(tmp_path):
    from mmengine.config import Config

    from mmitpn.registry import MODELS
    cfg_file = tmp_path / 'tiny.py'
    Config(dict(model=tiny_itpn_cfg(mfm=False, img_size=64))).dump(cfg_file)
    model = MODELS.build(tiny_itpn_cfg(mfm=False, img_size=64))
    torch.save(dict(state_dict=model.state_dict()), tmp_path / 'tiny.pth')
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / 'x.png'), img)
    res = subprocess.run(
        [sys.executable,
         str(REPO / 'tools' / 'analysis_tools' /
             'visualize_reconstruction.py'),
         str(cfg_file), str(tmp_path / 'tiny.pth'), str(tmp_path / 'x.png'),
         '--out-dir', str(tmp_path / 'out')],
        capture_output=True, text=True, timeout=300, cwd=str(REPO),
        env=dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=str(REPO)))
    assert res.returncode == 0, res.stderr[-2000:]
    row = cv2.imread(str(tmp_path / 'out' / 'x_reconstruction.png'))
    # 64-px input, panels enlarged 3x to reach --min-panel 192
    assert row.shape[1] == 4 * 192 + 3 * 4
    header = row.shape[0] - 192
    assert header > 0
    # the first panel is the input, enlarged by nearest neighbour
    np.testing.assert_array_equal(row[header:, :192],
                                  np.repeat(np.repeat(img, 3, 0), 3, 1))
    # the masked panel keeps 4 of the 16 patches (mask ratio 0.75), up to
    # the rounding of the de-normalisation
    same = np.abs(row[header:, 196:388].astype(int) - row[header:, :192])
    assert (same <= 1).all(-1).mean() == pytest.approx(0.25, abs=0.02)
