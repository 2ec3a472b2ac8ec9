"""mmitpn.visualization.reconstruction: four labelled panels per image."""
import numpy as np
import pytest
from mmitpn.visualization import reconstruction as vis


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
