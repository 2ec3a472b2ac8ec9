"""Tests of :mod:`mmitpn.experiments.rendering`: the page from
written-out results (numbers computed by hand in the comments)."""
import json

import pytest

from mmitpn.experiments.ablation import TOOL
from mmitpn.experiments.rendering import gain_line, plot_losses, render_page

INFO = dict(cpu='Test CPU', cores=2, omp_num_threads='2', isa='AVX2',
            flags=['avx2'], torch='2.x', python='3.11')


def _results(tmp_path, seeds=(0, 1, 2), cfg_options=()):
    maps = dict(a=(0.30, 0.35, 0.32), b=(0.40, 0.43, 0.44),
                c=(0.51, 0.50, 0.55), d=(0.50, 0.52, 0.54))
    runs = [dict(seed=s, stage='det', variant=v, bbox_mAP=m[i],
                 segm_mAP=m[i], wall_s=60.0, machine=INFO)
            for v, m in maps.items() for i, s in enumerate(seeds)]
    runs += [dict(seed=s, stage='pretrain', variant=k, wall_s=600.0,
                  work_dir=str(tmp_path / f'absent{s}{k}'), machine=INFO)
             for s in seeds for k in ('pixel', 'pixel-mfm')]
    return dict(cfg_options=list(cfg_options), seeds=list(seeds),
                tasks=['det'], runs=runs)


def test_page_from_written_out_results(tmp_path):
    render_page(_results(tmp_path), tmp_path / 'page.md')
    page = (tmp_path / 'page.md').read_text()
    # mean 0.52, sample std 0.02
    assert ('| d: backbone + pyramid from pixel + MFM | 0.520 ± 0.020 | '
            '0.500 / 0.520 / 0.540 |') in page
    # b - d = -0.10, -0.09, -0.10: mean -0.0967, std 0.00577, 95% CI
    # -0.0967 -+ 4.303 * 0.00577 / sqrt(3) = [-0.111, -0.082]
    assert ('| b − d | integral pyramid pre-training | bbox mAP | -0.100 / '
            '-0.090 / -0.100 | -0.097 ± 0.006 | [-0.111, -0.082] | d better '
            '|') in page
    # c - d = +0.01, -0.02, +0.01: mean 0, std 0.0173
    assert ('| c − d | MFM | bbox mAP | +0.010 / -0.020 / +0.010 | +0.000 ± '
            '0.017 | [-0.043, +0.043] | no measurable difference |') in page
    assert ('- **MFM** (c − d): no measurable difference on this data at '
            'this scale') in page
    assert ('- **integral pyramid pre-training** (b − d): measurable on det '
            'bbox mAP (d better), det segm mAP (d better)') in page
    assert '- **pre-training at all** (a − d): measurable' in page
    assert 'Test CPU, 2 cores' in page and 'Not a result' not in page
    assert 'Incomplete' not in page and 'Fewer than 3' not in page
    assert f'    python {TOOL} --seeds 0 1 2\n' in page
    assert 'total 72.0 min' in page  # 6 x 10 + 12 x 1 minutes
    # no run logged a loss: no picture, no section
    assert 'Pre-training losses' not in page
    assert not (tmp_path / 'page_losses.png').exists()


def test_page_of_a_cut_down_incomplete_run(tmp_path):
    results = _results(tmp_path, seeds=(5, ), cfg_options=['det.x=1'])
    results['runs'] = [r for r in results['runs'] if r['variant'] != 'c']
    render_page(results, tmp_path / 'page.md')
    page = (tmp_path / 'page.md').read_text()
    assert '**Not a result.**' in page and '**Fewer than 3 seeds** (1)' in page
    # 2 pre-trainings + 4 fine-tunes expected, 5 done
    assert '**Incomplete:** 5 of the 6 runs of seeds 5 are done.' in page
    assert f'python {TOOL} --seeds 5 --cfg-options det.x=1' in page
    assert '| c: backbone + pyramid from pixel only | — | — |' in page
    assert '| b − d | integral pyramid pre-training | bbox mAP | -0.100 | ' \
        '-0.100 ± — | — | one seed: no spread, no verdict |' in page
    assert '- **MFM**' not in page  # no c runs: no difference
    assert '- **integral pyramid pre-training** (b − d): no verdict from ' \
        'one seed: det bbox mAP -0.100' in page


def test_not_yet_run_page(tmp_path):
    render_page(None, tmp_path / 'docs' / 'page.md')
    page = (tmp_path / 'docs' / 'page.md').read_text()
    assert '## Status: not yet run' in page
    assert f'python {TOOL} --seeds 0 1 2' in page
    assert '±' not in page  # no numbers


def test_loss_curves_are_drawn_from_the_logs(tmp_path):
    results = _results(tmp_path, seeds=(0, ))
    run = next(r for r in results['runs'] if r['variant'] == 'pixel-mfm')
    log = tmp_path / 'absent0pixel-mfm' / '20240101_000000' / 'vis_data'
    log.mkdir(parents=True)
    log.joinpath('scalars.json').write_text(''.join(
        json.dumps(dict(loss=3.0 - i, loss_pixel=1.0, loss_mfm_s4=0.5,
                        epoch=1, iter=i)) + '\n' for i in (1, 2)))
    assert run['work_dir'] == str(log.parent.parent)
    render_page(results, tmp_path / 'page.md')
    page = (tmp_path / 'page.md').read_text()
    assert '![pre-training losses](page_losses.png)' in page
    png = (tmp_path / 'page_losses.png').read_bytes()
    assert png[:8] == b'\x89PNG\r\n\x1a\n' and len(png) > 10000
    # nothing logged: nothing drawn
    assert plot_losses(_results(tmp_path / 'other'), tmp_path / 'x.png') is \
        False
    assert not (tmp_path / 'x.png').exists()


def test_gain_line():
    pre = {'bbox_mAP': 0.510, 'segm_mAP': 0.556}
    scr = {'bbox_mAP': 0.414, 'segm_mAP': 0.489}
    assert gain_line(pre, scr) == ('pre-trained minus scratch: bbox mAP '
                                   '+0.096, segm mAP +0.067')
    with pytest.raises(KeyError):
        gain_line({'bbox_mAP': 0.5}, scr)
