"""Tests of ``tools/analysis_tools/ablation.py``: the statistics on literal
numbers, and the machinery end to end on a cut-down schedule (two
iterations per training, one seed; the numbers are not checked)."""
import json
import math
import re

import pytest
from conftest import REPO, load_tool

abl = load_tool('tools/analysis_tools/ablation.py')

# two iterations per training, no validation during training, four test
# images with few detections, a log line per iteration (loss curves)
CUT_DOWN = [
    'pretrain.train_cfg.max_epochs=2',
    'pretrain.train_dataloader.dataset.indices=8',
    'pretrain.train_dataloader.batch_size=8',
    'pretrain.default_hooks.logger.interval=1',
    'det.train_cfg.max_epochs=1',
    'det.train_cfg.val_begin=10',
    'det.train_dataloader.dataset.indices=4',
    'det.train_dataloader.batch_size=2',
    'det.test_dataloader.dataset.indices=4',
    'det.test_dataloader.num_workers=0',
    'det.test_dataloader.persistent_workers=False',
    'det.model.test_cfg.rpn.max_per_img=50',
    'det.model.test_cfg.rcnn.max_per_img=10',
    'det.default_hooks.logger.interval=1',
    'train_dataloader.num_workers=0',
    'train_dataloader.persistent_workers=False',
]


def test_cfg_options_are_routed_to_their_stage():
    routed = abl.split_options(
        ['det.train_cfg.max_epochs=1', 'env_cfg.cudnn_benchmark=True',
         'seg.train_cfg.max_iters=4', 'pretrain.model.mask_ratio=0.5'])
    assert routed == {
        'pretrain': ['env_cfg.cudnn_benchmark=True', 'model.mask_ratio=0.5'],
        'det': ['train_cfg.max_epochs=1', 'env_cfg.cudnn_benchmark=True'],
        'seg': ['env_cfg.cudnn_benchmark=True', 'train_cfg.max_iters=4'],
    }
    with pytest.raises(SystemExit, match='expected KEY=VALUE'):
        abl.split_options(['det.train_cfg'])


def test_variants_load_what_they_say():
    ckpts = {'pixel': 'P.pth', 'pixel-mfm': 'M.pth'}
    assert abl.variant_options('a', ckpts) == [
        'model.backbone.init_cfg=None', 'model.neck.init_cfg=None']
    assert abl.variant_options('b', ckpts) == [
        'model.backbone.init_cfg.checkpoint=M.pth',
        'model.neck.init_cfg=None']
    assert abl.variant_options('c', ckpts) == [
        'model.backbone.init_cfg.checkpoint=P.pth',
        'model.neck.init_cfg.checkpoint=P.pth']
    assert abl.variant_options('d', ckpts) == [
        'model.backbone.init_cfg.checkpoint=M.pth',
        'model.neck.init_cfg.checkpoint=M.pth']


def test_paired_verdict_on_written_out_numbers():
    # mean 0.02, sd 0.01, n 3: half-width 4.303 * 0.01 / sqrt(3) = 0.02484
    pv = abl.paired_verdict([0.01, 0.02, 0.03])
    assert pv['mean'] == pytest.approx(0.02)
    assert pv['std'] == pytest.approx(0.01)
    assert pv['ci'] == pytest.approx((0.02 - 0.024843, 0.02 + 0.024843),
                                     abs=1e-5)
    assert pv['measurable'] is False
    # mean -0.05, sd 0.01: the interval [-0.0748, -0.0252] excludes 0
    pv = abl.paired_verdict([-0.04, -0.05, -0.06])
    assert pv['measurable'] is True and pv['ci'][1] < 0
    # four seeds use t(3) = 3.182
    pv = abl.paired_verdict([0.1, 0.2, 0.3, 0.4])
    sd = math.sqrt((0.15**2 * 2 + 0.05**2 * 2) / 3)
    assert pv['ci'][1] - pv['mean'] == pytest.approx(3.182 * sd / 2)
    # one seed: no spread, no verdict
    assert abl.paired_verdict([0.3])['measurable'] is None


def test_demo_configs_are_found_by_name():
    for name in [abl.PRETRAIN_CFG] + [t[0] for t in abl.TASKS.values()]:
        path = abl.find_config(name)
        assert path.endswith('/' + name) and (REPO / path).is_file()
    with pytest.raises(FileNotFoundError, match='No config named nope.py'):
        abl.find_config('nope.py')


def test_page_from_written_out_results(tmp_path):
    maps = dict(a=(0.30, 0.35, 0.32), b=(0.40, 0.43, 0.44),
                c=(0.51, 0.50, 0.55), d=(0.50, 0.52, 0.54))
    info = dict(cpu='Test CPU', cores=2, omp_num_threads='2', isa='AVX2',
                flags=['avx2'], torch='2.x', python='3.11')
    runs = [dict(seed=s, stage='det', variant=v, bbox_mAP=m[i],
                 segm_mAP=m[i], wall_s=60.0, machine=info)
            for v, m in maps.items() for i, s in enumerate((0, 1, 2))]
    runs += [dict(seed=s, stage='pretrain', variant=k, wall_s=600.0,
                  work_dir=str(tmp_path / 'absent'), machine=info)
             for s in (0, 1, 2) for k in ('pixel', 'pixel-mfm')]
    results = dict(cfg_options=[], seeds=[0, 1, 2], tasks=['det'],
                   runs=runs)
    abl.render(results, tmp_path / 'page.md')
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
    assert f'    python {abl.TOOL} --seeds 0 1 2\n' in page
    assert 'total 72.0 min' in page  # 6 x 10 + 12 x 1 minutes


def test_a_failed_run_stops_with_one_line(tmp_path, monkeypatch):
    import subprocess

    def failing_run(cmd, in_process=False):
        raise subprocess.CalledProcessError(1, [str(c) for c in cmd])

    monkeypatch.setattr(abl, 'run', failing_run)
    monkeypatch.setattr(abl, 'machine', lambda: {})
    monkeypatch.setattr(abl, 'load_tool', lambda path: type(
        'Stub', (), dict(make_demo_data=staticmethod(lambda *a, **k: None),
                         check_work_dir=staticmethod(lambda *a: None)))())
    with pytest.raises(SystemExit, match=r'seed 0 pretrain pixel-mfm: '
                       r'tools/train.py failed \(exit 1.*the same command '
                       r'continues from there'):
        abl.main(['--seeds', '0', '--work-dir', str(tmp_path)])


def test_not_yet_run_page(tmp_path):
    abl.main(['--render-only', '--out', str(tmp_path / 'absent.json'),
              '--doc', str(tmp_path / 'page.md')])
    page = (tmp_path / 'page.md').read_text()
    assert 'not yet run' in page
    assert f'python {abl.TOOL} --seeds 0 1 2' in page
    assert '±' not in page  # no numbers


def test_cut_down_run_end_to_end_and_resume(tmp_path, demo_data,
                                            monkeypatch):
    work, out, doc = tmp_path / 'work', tmp_path / 'runs.json', \
        tmp_path / 'docs' / 'ablation.md'
    argv = ['--seeds', '3', '--work-dir', str(work), '--out', str(out),
            '--doc', str(doc), '--in-process', '--cfg-options', *CUT_DOWN]
    commands = []
    real_run = abl.run

    def recording_run(cmd, in_process=False):
        assert in_process
        commands.append([str(c) for c in cmd])
        real_run(cmd, in_process)

    monkeypatch.setattr(abl, 'run', recording_run)
    # MMEngine formats every config it logs and dumps with yapf (about
    # half of this test's time on 2 cores); unformatted is the same config
    import mmengine.config.config as mmengine_config
    monkeypatch.setattr(mmengine_config, 'FormatCode',
                        lambda text, **kwargs: (text, False))
    abl.main(argv)

    results = json.loads(out.read_text())
    runs = {(r['stage'], r['variant']): r for r in results['runs']}
    assert sorted(runs) == [('det', v) for v in 'abcd'] + [
        ('pretrain', 'pixel'), ('pretrain', 'pixel-mfm')]
    for (stage, _), r in runs.items():
        assert r['seed'] == 3 and r['wall_s'] > 0
        assert {'cpu', 'cores', 'isa', 'torch'} <= set(r['machine'])
        if stage == 'det':
            assert 0 <= r['bbox_mAP'] <= 1 and 0 <= r['segm_mAP'] <= 1
    assert results['cfg_options'] == CUT_DOWN
    assert set(runs['pretrain', 'pixel-mfm']['last_epoch_losses']) >= {
        'loss', 'loss_pixel', 'loss_mfm_s4'}
    assert 'loss_mfm_s4' not in runs['pretrain', 'pixel'][
        'last_epoch_losses']

    # each pre-training ran once, for the seed, and every fine-tune loads
    # the checkpoint of its variant
    trains = {c[c.index('--work-dir') + 1].rsplit('/', 1)[-1]: c
              for c in commands if 'tools/train.py' in c}
    assert sorted(trains) == ['det_a', 'det_b', 'det_c', 'det_d',
                              'pretrain_pixel', 'pretrain_pixel-mfm']
    assert all('randomness.seed=3' in c and '--resume' in c
               for c in trains.values())
    assert 'model.mfm_head=None' in trains['pretrain_pixel']
    assert 'model.mfm_head=None' not in trains['pretrain_pixel-mfm']
    ckpt = {k: str(work / 'seed3' / f'pretrain_{k}' / 'epoch_2.pth')
            for k in ('pixel', 'pixel-mfm')}
    assert f'model.neck.init_cfg.checkpoint={ckpt["pixel"]}' in trains[
        'det_c']
    assert 'model.neck.init_cfg=None' in trains['det_b']
    assert f'model.backbone.init_cfg.checkpoint={ckpt["pixel-mfm"]}' in \
        trains['det_b']
    assert f'model.neck.init_cfg.checkpoint={ckpt["pixel-mfm"]}' in trains[
        'det_d']
    # the load-time summary of the fine-tune says what came from where
    log_b = next((work / 'seed3' / 'det_b').glob('*/*.log')).read_text()
    assert re.search(r'HiViTBackbone[^\n]*: loaded \d+ of', log_b)
    assert not re.search(r'ITPNPyramid[^\n]*: loaded', log_b)

    page = doc.read_text()
    assert page.count('\n| a: from scratch |') == 1
    for v in 'bcd':
        assert f'\n| {v}: ' in page
    for diff in ('b − d | integral pyramid pre-training | bbox mAP',
                 'c − d | MFM | segm mAP'):
        assert diff in page
    assert 'one seed: no spread, no verdict' in page
    assert '**Not a result.**' in page and '**Fewer than 3 seeds**' in page
    assert '**Incomplete:**' not in page
    assert '- **MFM** (c − d): no verdict from one seed: det bbox mAP' in page
    assert f'python {abl.TOOL} --seeds 3 --cfg-options ' in page
    assert 'Rule: a paired difference is *measurable*' in page
    assert (doc.parent / 'ablation_losses.png').stat().st_size > 0
    assert '![pre-training losses](ablation_losses.png)' in page

    # a second call finds every run in the JSON: no new process at all
    def no_run(cmd, in_process=False):
        raise AssertionError(f'unexpected new run: {cmd}')

    monkeypatch.setattr(abl, 'run', no_run)
    doc.unlink()
    abl.main(argv)
    assert json.loads(out.read_text()) == results
    assert doc.read_text() == page

    # a fine-tune whose training finished but whose result was not
    # recorded (killed during the evaluation) is only evaluated
    commands.clear()
    monkeypatch.setattr(abl, 'run', recording_run)
    results['runs'] = [r for r in results['runs']
                       if (r['stage'], r['variant']) != ('det', 'd')]
    out.write_text(json.dumps(results))
    abl.main(argv)
    assert [c[1] for c in commands] == ['tools/test.py']
    assert commands[0][2:4] == [
        abl.find_config(abl.TASKS['det'][0]),
        str(work / 'seed3' / 'det_d' / 'epoch_1.pth')]
    assert ('det', 'd') in {(r['stage'], r['variant'])
                           for r in json.loads(out.read_text())['runs']}

    # other options on the same JSON are refused, naming the fix
    with pytest.raises(SystemExit, match='another --work-dir / --out'):
        abl.main(argv[:-1])
