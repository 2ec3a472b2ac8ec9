"""Tests of :mod:`mmitpn.experiments.ablation`: its variants and options,
the JSON of runs, and the runner end to end on a cut-down schedule (two
iterations per training, one seed; the numbers are not checked)."""
import json
import re
from pathlib import Path

import pytest
from conftest import REPO

from mmitpn.experiments import ablation as abl
from mmitpn.experiments import runs
from mmitpn.experiments.rendering import render_page

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
    with pytest.raises(ValueError, match='expected KEY=VALUE'):
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


def test_jobs_run_the_needed_pretrainings_first():
    assert list(abl.jobs([0, 1], ['det'])) == [
        (s, st, v) for s in (0, 1) for st, v in
        [('pretrain', 'pixel-mfm'), ('pretrain', 'pixel'), ('det', 'a'),
         ('det', 'b'), ('det', 'c'), ('det', 'd')]]
    # the demo's preset: variants d and a need the pixel + MFM one only
    assert list(abl.jobs([0], ['det'], ('d', 'a'))) == [
        (0, 'pretrain', 'pixel-mfm'), (0, 'det', 'd'), (0, 'det', 'a')]
    assert list(abl.jobs([2], ['det', 'seg'], ('a', ))) == [
        (2, 'det', 'a'), (2, 'seg', 'a')]


def test_json_of_runs(tmp_path):
    out = tmp_path / 'runs.json'
    results = abl.open_results(out, [1, 0], ['det'], ['det.x=1'])
    assert results == dict(
        pretrain_config='itpn-tiny_pixel-mfm_1xb32-200e_demo.py',
        configs={'det': 'itpn-tiny_mask-rcnn_1xb4-6e_demo.py'},
        cfg_options=['det.x=1'], seeds=[0, 1], tasks=['det'], runs=[])
    abl.add_run(results, out, dict(seed=1, stage='det', variant='a', x=1))
    abl.add_run(results, out, dict(seed=0, stage='det', variant='a', x=2))
    # a second record of a run replaces the first
    abl.add_run(results, out, dict(seed=1, stage='det', variant='a', x=3))
    assert abl.load_results(out) == results
    assert [r['x'] for r in results['runs']] == [2, 3]
    assert abl.find_run(results, 1, 'det', 'a')['x'] == 3
    assert abl.find_run(results, 1, 'det', 'b') is None
    assert abl.metric_values(results, 'det', 'a', 'x') == {0: 2, 1: 3}
    assert not list(tmp_path.glob('*.tmp'))
    # more seeds and tasks join; other options or configs are refused
    more = abl.open_results(out, [2], ['seg'], ['det.x=1'])
    assert more['seeds'] == [0, 1, 2] and more['tasks'] == ['det', 'seg']
    assert more['configs'] == {
        'det': 'itpn-tiny_mask-rcnn_1xb4-6e_demo.py',
        'seg': 'itpn-tiny_upernet_1xb4-2k_demo.py'}
    with pytest.raises(ValueError, match='other configs or --cfg-options.*'
                       'another --work-dir / --out'):
        abl.open_results(out, [0], ['det'], [])
    results['configs']['det'] = 'other.py'
    abl.save_results(out, results)
    with pytest.raises(ValueError, match='other.py'):
        abl.open_results(out, [0], ['det'], ['det.x=1'])


def test_command_that_reproduces_the_runs():
    results = dict(seeds=[0, 1, 2], tasks=['det'], cfg_options=[], runs=[])
    assert abl.command(results) == f'python {abl.TOOL} --seeds 0 1 2'
    results['runs'] = [dict(seed=4, stage='seg', variant='a')]
    results['cfg_options'] = ['det.a=[1, 2]']
    assert abl.command(results) == (
        f"python {abl.TOOL} --seeds 4 --tasks det,seg --cfg-options "
        f"'det.a=[1, 2]'")


def test_run_folders(tmp_path):
    many = abl.Ablation(tmp_path, tmp_path / 'r.json', seeds=[0, 1])
    assert many.run_dir(1, 'det', 'c') == tmp_path / 'seed1' / 'det_c'
    assert many.run_dir(0, 'pretrain', 'pixel') == \
        tmp_path / 'seed0' / 'pretrain_pixel'
    demo = abl.Ablation(tmp_path, tmp_path / 'd.json',
                        layout=abl.DEMO_LAYOUT)
    assert demo.run_dir(0, 'det', 'a') == tmp_path / 'mask_rcnn_scratch'
    assert demo.run_dir(0, 'pretrain', 'pixel-mfm') == tmp_path / 'pretrain'
    with pytest.raises(ValueError, match='one seed'):
        abl.Ablation(tmp_path, tmp_path / 'e.json', seeds=[0, 1],
                     layout=abl.DEMO_LAYOUT)
    with pytest.raises(ValueError, match='choose from det, seg'):
        abl.Ablation(tmp_path, tmp_path / 'e.json', tasks=['cls'])


def test_a_failed_run_says_how_to_continue(tmp_path, monkeypatch, capsys):

    def failing_train(*args, **kwargs):
        raise RuntimeError('boom')

    monkeypatch.setattr(runs, 'train', failing_train)
    out = tmp_path / 'runs.json'
    with pytest.raises(RuntimeError, match='boom'):
        abl.Ablation(tmp_path, out, seeds=[0]).run()
    printed = capsys.readouterr().out
    assert re.search(r'seed 0 pretrain pixel-mfm failed \(the error '
                     r'follows\)\. The runs before it are in .*runs\.json; '
                     r'the same command continues from there', printed)
    assert not out.exists()  # nothing was recorded


def test_cut_down_run_end_to_end_and_resume(tmp_path, demo_data,
                                            monkeypatch):
    monkeypatch.chdir(REPO)  # the configs name data/demo
    work, out, doc = tmp_path / 'work', tmp_path / 'runs.json', \
        tmp_path / 'docs' / 'ablation.md'
    calls = []
    real_train, real_test = runs.train, runs.test

    def recording_train(config, work_dir, options=(), resume=True):
        calls.append(('train', str(config), str(work_dir), list(options)))
        return real_train(config, work_dir, options, resume)

    def recording_test(config, checkpoint, work_dir, options=(), **kwargs):
        calls.append(('test', str(config), str(checkpoint), list(options)))
        return real_test(config, checkpoint, work_dir, options, **kwargs)

    monkeypatch.setattr(runs, 'train', recording_train)
    monkeypatch.setattr(runs, 'test', recording_test)
    # MMEngine formats every config it logs and dumps with yapf (about
    # half of this test's time on 2 cores); unformatted is the same config
    import mmengine.config.config as mmengine_config
    monkeypatch.setattr(mmengine_config, 'FormatCode',
                        lambda text, **kwargs: (text, False))

    def ablation():
        return abl.Ablation(work, out, seeds=[3], cfg_options=CUT_DOWN)

    results = ablation().run()
    assert abl.load_results(out) == results
    runs_ = {(r['stage'], r['variant']): r for r in results['runs']}
    assert sorted(runs_) == [('det', v) for v in 'abcd'] + [
        ('pretrain', 'pixel'), ('pretrain', 'pixel-mfm')]
    for (stage, variant), r in runs_.items():
        assert r['seed'] == 3 and r['wall_s'] > 0 and r['resumed'] is False
        assert {'cpu', 'cores', 'isa', 'torch'} <= set(r['machine'])
        assert r['work_dir'] == str(work / 'seed3' / f'{stage}_{variant}')
        # each run logged into its own folder (not an earlier run's)
        assert len(list(Path(r['work_dir']).glob(
            '*/vis_data/scalars.json'))) == 1
        if stage == 'det':
            assert r['checkpoint'] == 'epoch_1.pth'
            assert 0 <= r['bbox_mAP'] <= 1 and 0 <= r['segm_mAP'] <= 1
            # the record holds what the test reported
            metrics = json.loads((work / 'seed3' / f'det_{variant}' /
                                  'test_metrics.json').read_text())
            assert (r['bbox_mAP'], r['segm_mAP']) == (
                metrics['coco/bbox_mAP'], metrics['coco/segm_mAP'])
        else:
            assert r['checkpoint'] == 'epoch_2.pth'
    assert results['cfg_options'] == CUT_DOWN
    assert set(runs_['pretrain', 'pixel-mfm']['last_epoch_losses']) >= {
        'loss', 'loss_pixel', 'loss_mfm_s4'}
    assert 'loss_mfm_s4' not in runs_['pretrain', 'pixel'][
        'last_epoch_losses']

    # each pre-training ran once, for the seed, and every fine-tune loads
    # the checkpoint of its variant
    trains = {c[2].rsplit('/', 1)[-1]: c[3] for c in calls
              if c[0] == 'train'}
    assert len(trains) == len([c for c in calls if c[0] == 'train'])
    assert sorted(trains) == ['det_a', 'det_b', 'det_c', 'det_d',
                              'pretrain_pixel', 'pretrain_pixel-mfm']
    assert all('randomness.seed=3' in o for o in trains.values())
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
    # the pixel-only run trained without the MFM head (its dumped config)
    dumped = (work / 'seed3' / 'pretrain_pixel' /
              'itpn-tiny_pixel-mfm_1xb32-200e_demo.py').read_text()
    assert re.search(r'mfm_head\s*=\s*None', dumped)

    render_page(results, doc)
    page = doc.read_text()
    assert page.count('\n| a: from scratch |') == 1
    assert 'one seed: no spread, no verdict' in page
    assert '**Not a result.**' in page and '**Fewer than 3 seeds**' in page
    assert '**Incomplete:**' not in page
    assert f'python {abl.TOOL} --seeds 3 --cfg-options ' in page
    assert (doc.parent / 'ablation_losses.png').stat().st_size > 0
    assert '![pre-training losses](ablation_losses.png)' in page

    # a second call finds every run in the JSON: no new run at all
    calls.clear()
    assert ablation().run() == results
    assert calls == []

    # a fine-tune whose training finished but whose result was not
    # recorded (killed during the evaluation) is only evaluated
    results['runs'] = [r for r in results['runs']
                       if (r['stage'], r['variant']) != ('det', 'd')]
    out.write_text(json.dumps(results))
    again = ablation().run()
    assert [c[:3] for c in calls] == [(
        'test', str(runs.find_config(abl.TASKS['det'][0])),
        str(work / 'seed3' / 'det_d' / 'epoch_1.pth'))]
    assert abl.find_run(again, 3, 'det', 'd') is not None

    # other options on the same JSON are refused, naming the fix
    with pytest.raises(ValueError, match='another --work-dir / --out'):
        abl.Ablation(work, out, seeds=[3], cfg_options=CUT_DOWN[:-1])
