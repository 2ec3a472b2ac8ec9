"""configs/itpn/metafile.yml and configs/itpn/README.md list every config
of configs/itpn/, and nothing else."""
import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
ITPN = REPO / 'configs' / 'itpn'
ON_DISK = {p.name for p in ITPN.glob('*.py')}
# the ten downstream paper rows and their paper numbers (ITPN_SPEC.md s. 5)
PAPER = {
    'itpn-base-pixel_mask-rcnn_8xb8-amp-1x_coco': (53.0, 46.5),
    'itpn-base-pixel_mask-rcnn_8xb8-amp-3x_coco': (54.0, 47.4),
    'itpn-base-clip_mask-rcnn_8xb8-amp-3x_coco': (54.1, 47.5),
    'itpn-large-clip_mask-rcnn_8xb8-amp-1x_coco': (55.2, 48.2),
    'itpn-base-pixel_cascade-mask-rcnn_8xb8-amp-3x_coco': (56.0, 48.5),
    'itpn-base-clip_cascade-mask-rcnn_8xb8-amp-3x_coco': (56.1, 48.6),
    'itpn-base-pixel_upernet_8xb2-amp-160k_ade20k-512x512': (53.5, ),
    'itpn-base-clip_upernet_8xb2-amp-160k_ade20k-512x512': (54.7, ),
    'itpn-large-pixel_upernet_8xb2-amp-160k_ade20k-512x512': (56.1, ),
    'itpn-large-clip_upernet_8xb2-amp-160k_ade20k-512x512': (57.7, ),
}


def metafile():
    return yaml.safe_load((ITPN / 'metafile.yml').read_text())


def test_metafile_lists_every_config_once():
    models = metafile()['Models']
    paths = [m['Config'] for m in models]
    assert len(paths) == len(set(paths))
    assert {Path(p).name for p in paths} == ON_DISK
    for m in models:
        assert m['Config'] == f'configs/itpn/{m["Name"]}.py'
        assert (REPO / m['Config']).is_file()
        assert m['In Collection'] == 'iTPN'


def test_metafile_paper_numbers():
    models = {m['Name']: m for m in metafile()['Models']}
    for name, numbers in PAPER.items():
        got = tuple(v for r in models[name]['Results']
                    for v in r['Metrics'].values())
        assert got == numbers, name


def test_readme_lists_every_config():
    text = (ITPN / 'README.md').read_text()
    named = set(re.findall(r'`(itpn-[\w.-]+\.py)`', text))
    assert named == ON_DISK
    # every paper row sits in the paper-row table with its number
    for name, numbers in PAPER.items():
        row = next(line for line in text.splitlines()
                   if line.startswith(f'| `{name}.py`'))
        assert str(numbers[0]) in row, name
