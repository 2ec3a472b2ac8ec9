"""Tests of ``tools/analysis_tools/visualize_reconstruction.py``: four
labelled panels per image."""
import cv2
import numpy as np
import pytest
import torch
from conftest import load_tool, tiny_itpn_cfg

vis = load_tool('tools/analysis_tools/visualize_reconstruction.py')


def _tiles(size=32):
    """Four flat tiles of distinct mid-grey colours (no black pixels)."""
    return [np.full((size, size, 3), c, np.uint8) for c in (60, 100, 140,
                                                            180)]


def test_label_panels_layout_and_labels():
    row = vis.label_panels(_tiles(), vis.PANEL_LABELS, zoom=3, sep=4)
    # four 96-px panels (32 px x 3) and three 4-px gaps
    assert row.shape[1] == 4 * 96 + 3 * 4 and row.dtype == np.uint8
    header = row.shape[0] - 96
    assert header > 0
    for i, c in enumerate((60, 100, 140, 180)):
        x0 = i * 100
        assert (row[header:, x0:x0 + 96] == c).all()
        # a label is drawn in black on white above every panel
        top = row[:header, x0:x0 + 96]
        assert top.min() < 50 and (top == 255).mean() > 0.5
        if i < 3:  # white gaps between panels
            assert (row[:, x0 + 96:x0 + 100] == 255).all()


def test_longer_labels_wrap_in_the_header():
    one_line = vis.label_panels(_tiles(), ['a'] * 4, zoom=6)
    wrapped = vis.label_panels(_tiles(), ['a'] * 3 + ['word ' * 12],
                               zoom=6)
    # twelve words do not fit 192 px on one line
    assert wrapped.shape[0] > one_line.shape[0]
    assert wrapped.shape[1] == one_line.shape[1] == 4 * 192 + 3 * 4


def test_label_count_must_match():
    with pytest.raises(ValueError, match='4 panels but 3 labels'):
        vis.label_panels(_tiles(), vis.PANEL_LABELS[:3])


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
    vis.main([str(cfg_file), str(tmp_path / 'tiny.pth'),
              str(tmp_path / 'x.png'), '--out-dir', str(tmp_path / 'out')])
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
