"""configs/itpn/metafile.yml and configs/itpn/README.md list every config
of configs/itpn/, and nothing else; every paper row carries the paper's
number and the pre-training the paper's row used."""
import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
ITPN = REPO / 'configs' / 'itpn'
ON_DISK = {p.name for p in ITPN.glob('*.py')}

PIX_B_400 = 'itpn-pixel_hivit-base-p16_8xb512-amp-coslr-400e_in1k'
PIX_B_1600 = 'itpn-pixel_hivit-base-p16_8xb512-amp-coslr-1600e_in1k'
PIX_L_400 = 'itpn-pixel_hivit-large-p16_8xb512-amp-coslr-400e_in1k'
PIX_L_1600 = 'itpn-pixel_hivit-large-p16_8xb512-amp-coslr-1600e_in1k'
CLIP_B_300 = 'itpn-clip-b_hivit-base-p16_8xb256-amp-coslr-300e_in1k'
CLIP_B_800 = 'itpn-clip-b_hivit-base-p16_8xb256-amp-coslr-800e_in1k'
CLIP_L_300 = 'itpn-clip-l_hivit-large-p16_8xb256-amp-coslr-300e_in1k'
CLIP_B_L_300 = 'itpn-clip-b_hivit-large-p16_8xb256-amp-coslr-300e_in1k'

# paper row -> (config, numbers, pre-training of the row). CVPR 2023
# version: Table 2 (COCO, ADE20K; "Eps." column: iTPN-B pixel 1600, CLIP-B
# 800, iTPN-L pixel 1600, CLIP-L 300) and Table 1 (ImageNet-1K: B pixel
# 400 / 1600 -> 85.1 / 85.5, B CLIP-B 300 / 800 -> 85.9 / 86.2, L pixel
# 400 / 1600 -> 86.3 / 86.7, L/16 CLIP-B 300 -> 87.0, L/16 CLIP-L 300 ->
# 87.8).
PAPER = {
    'itpn-base-pixel_mask-rcnn_8xb8-amp-1x_coco':
    (None, (53.0, 46.5), PIX_B_1600),
    'itpn-base-pixel_mask-rcnn_8xb8-amp-3x_coco':
    (None, (54.0, 47.4), PIX_B_1600),
    'itpn-base-clip_mask-rcnn_8xb8-amp-3x_coco':
    (None, (54.1, 47.5), CLIP_B_800),
    'itpn-large-clip_mask-rcnn_8xb8-amp-1x_coco':
    (None, (55.2, 48.2), CLIP_L_300),
    'itpn-base-pixel_cascade-mask-rcnn_8xb8-amp-3x_coco':
    (None, (56.0, 48.5), PIX_B_1600),
    'itpn-base-clip_cascade-mask-rcnn_8xb8-amp-3x_coco':
    (None, (56.1, 48.6), CLIP_B_800),
    'itpn-base-pixel_upernet_8xb2-amp-160k_ade20k-512x512':
    (None, (53.5, ), PIX_B_1600),
    'itpn-base-clip_upernet_8xb2-amp-160k_ade20k-512x512':
    (None, (54.7, ), CLIP_B_800),
    'itpn-large-pixel_upernet_8xb2-amp-160k_ade20k-512x512':
    (None, (56.1, ), PIX_L_1600),
    'itpn-large-clip_upernet_8xb2-amp-160k_ade20k-512x512':
    (None, (57.7, ), CLIP_L_300),
    'itpn-base-pixel_8xb128-coslr-100e_in1k': (None, (85.5, ), PIX_B_1600),
    'itpn-base-pixel-400e-pre_8xb128-coslr-100e_in1k':
    ('itpn-base-pixel_8xb128-coslr-100e_in1k', (85.1, ), PIX_B_400),
    'itpn-large-pixel_8xb128-coslr-50e_in1k': (None, (86.7, ), PIX_L_1600),
    'itpn-large-pixel-400e-pre_8xb128-coslr-50e_in1k':
    ('itpn-large-pixel_8xb128-coslr-50e_in1k', (86.3, ), PIX_L_400),
    'itpn-base-clip_16xb128-coslr-100e_in1k': (None, (86.2, ), CLIP_B_800),
    'itpn-base-clip-300e-pre_16xb128-coslr-100e_in1k':
    ('itpn-base-clip_16xb128-coslr-100e_in1k', (85.9, ), CLIP_B_300),
    'itpn-large-clip_8xb128-coslr-50e_in1k': (None, (87.8, ), CLIP_L_300),
    'itpn-large-clip-b-pre_8xb128-coslr-50e_in1k':
    ('itpn-large-clip_8xb128-coslr-50e_in1k', (87.0, ), CLIP_B_L_300),
}


def metafile():
    return yaml.safe_load((ITPN / 'metafile.yml').read_text())


def test_metafile_lists_every_config():
    models = metafile()['Models']
    names = [m['Name'] for m in models]
    assert len(names) == len(set(names))
    assert {Path(m['Config']).name for m in models} == ON_DISK
    for m in models:
        assert (REPO / m['Config']).is_file(), m['Config']
        assert m['In Collection'] == 'iTPN'
        config = PAPER.get(m['Name'], (None, ))[0] or m['Name']
        assert m['Config'] == f'configs/itpn/{config}.py', m['Name']
    # every config has an entry of its own name (`mim search` config id)
    assert {f'{n}.py' for n in names} >= ON_DISK


def test_metafile_paper_numbers_and_pre_training():
    models = {m['Name']: m for m in metafile()['Models']}
    with_results = {n for n, m in models.items() if m.get('Results')}
    assert with_results == set(PAPER)
    for name, (_, numbers, pre_training) in PAPER.items():
        m = models[name]
        got = tuple(v for r in m['Results'] for v in r['Metrics'].values())
        assert got == numbers, name
        meta = m['Metadata']
        assert meta['Pre-training'] == pre_training, name
        assert f'{pre_training}.py' in ON_DISK
        epochs = int(pre_training.split('coslr-')[1].split('e_')[0])
        assert meta['Pre-training Epochs'] == epochs, name
    assert 'openaccess.thecvf.com/content/CVPR2023' in \
        metafile()['Collections'][0]['Paper']['URL']


def test_readme_lists_every_config():
    text = (ITPN / 'README.md').read_text()
    named = set(re.findall(r'`(itpn-[\w.-]+\.py)`', text))
    assert named == ON_DISK
    # every paper row sits in the paper-row table with its number and the
    # pre-training config of the row
    lines = text.splitlines()
    for name, (config, numbers, pre_training) in PAPER.items():
        config = config or name
        rows = [line for line in lines
                if line.startswith(f'| `{config}.py`')
                and str(numbers[0]) in line]
        assert rows, name
        assert any(f'`{pre_training}.py`' in row for row in rows), name
