"""Tests of :mod:`mmitpn.experiments.runs`: configs with a command line's
edits, checkpoint names, work-dir checks, and runs of the demo configs in
this process (a few iterations on a few images)."""
import json
import logging
import multiprocessing
import os
import sys

import pytest
from conftest import REPO

from mmitpn.experiments import runs

PRETRAIN = 'itpn-tiny_pixel-mfm_1xb32-20e_demo.py'
DET = 'itpn-tiny_mask-rcnn_1xb4-6e_demo.py'
# two iterations per epoch, a log line per iteration, the shipped
# data-loader workers (2, persistent)
SMALL = ['train_dataloader.batch_size=2', 'train_dataloader.dataset.indices=4',
         'train_cfg.max_epochs=2', 'default_hooks.logger.interval=1',
         'default_hooks.checkpoint.interval=1']


def test_options_are_typed_as_the_tools_read_them():
    assert runs.parse_options(['a.b=1', 'c=[1,2]', 'd=None', 'e=x',
                               'f=0.5', 'a.b=2']) == {
        'a.b': 2, 'c': [1, 2], 'd': None, 'e': 'x', 'f': 0.5}
    assert runs.parse_options([]) == {}
    with pytest.raises(ValueError, match="'train_cfg': expected KEY=VALUE"):
        runs.parse_options(['train_cfg'])


def test_config_with_a_command_lines_edits(tmp_path):
    cfg_file = tmp_path / 'toy_cfg.py'
    cfg_file.write_text('train_cfg = dict(max_epochs=3)\n'
                        'model = dict(depth=2, init_cfg=dict(type="x"))\n')
    cfg = runs.load_config(cfg_file, tmp_path / 'w',
                           ['model.init_cfg=None', 'train_cfg.max_epochs=5'])
    assert cfg.work_dir == str(tmp_path / 'w')
    assert cfg.model.init_cfg is None and cfg.model.depth == 2
    assert cfg.train_cfg.max_epochs == 5 and cfg.launcher == 'none'
    # the tools' default work dir
    assert runs.load_config(cfg_file).work_dir == './work_dirs/toy_cfg'
    # the config's own work_dir wins over the default
    cfg_file.write_text('work_dir = "mine"\ntrain_cfg = dict(max_iters=7)\n')
    assert runs.load_config(cfg_file).work_dir == 'mine'
    assert runs.final_checkpoint(cfg_file) == 'iter_7.pth'
    assert runs.final_checkpoint(cfg_file, ['train_cfg.max_iters=9']) == \
        'iter_9.pth'


def test_checkpoint_names_follow_the_demo_configs():
    # the schedules the config names announce: 200 epochs, 6 epochs, 2k
    assert runs.final_checkpoint(
        runs.find_config('itpn-tiny_pixel-mfm_1xb32-200e_demo.py')) == \
        'epoch_200.pth'
    assert runs.final_checkpoint(runs.find_config(DET)) == 'epoch_6.pth'
    assert runs.final_checkpoint(runs.find_config(DET),
                                 ['train_cfg.max_epochs=1']) == 'epoch_1.pth'
    assert runs.final_checkpoint(runs.find_config(
        'itpn-tiny_upernet_1xb4-2k_demo.py')) == 'iter_2000.pth'


def test_configs_are_found_by_name(tmp_path):
    path = runs.find_config(DET)
    assert path == REPO / 'configs' / 'itpn' / DET
    with pytest.raises(FileNotFoundError, match='No config named nope.py'):
        runs.find_config('nope.py')
    # configs/itpn wins over another folder
    for folder in ('a', 'itpn', 'z'):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / 'x.py').write_text('')
    assert runs.find_config('x.py', tmp_path) == tmp_path / 'itpn' / 'x.py'


def test_stale_work_dir_of_another_config_is_refused(tmp_path):
    config = runs.find_config(PRETRAIN)
    run = tmp_path / 'pretrain'
    run.mkdir()
    (run / 'itpn-tiny_pixel-mfm_1xb32-10e_demo.py').write_text('')
    runs.check_work_dir(run, config)  # nothing to resume: fine
    (run / 'last_checkpoint').write_text(str(run / 'epoch_5.pth'))
    with pytest.raises(runs.StaleWorkDirError,
                       match=r'holds a run of itpn-tiny_pixel-mfm_1xb32-'
                       r'10e_demo\.py.*--force.*another --work-dir'):
        runs.check_work_dir(run, config)
    # an unfinished run of the same config resumes
    (run / PRETRAIN).write_text('')
    runs.check_work_dir(run, config)
    runs.check_work_dir(tmp_path / 'absent', config)


def _open_log_files(folder):
    """Log files under ``folder`` that a logger of this process holds."""
    from mmengine.logging import MMLogger
    return [h.baseFilename for logger in MMLogger._instance_dict.values()
            for h in logger.handlers if isinstance(h, logging.FileHandler)
            and h.baseFilename.startswith(str(folder))]


def test_train_resume_in_process_leaves_the_process_as_it_was(
        tmp_path, demo_data, monkeypatch):
    monkeypatch.chdir(REPO)  # the configs name data/demo
    argv, cwd, env = list(sys.argv), os.getcwd(), dict(os.environ)
    config = runs.find_config(PRETRAIN)
    work = tmp_path / 'run'
    assert runs.train(config, work, SMALL) is False
    assert (work / 'epoch_2.pth').is_file()
    # two more epochs: resumed from epoch 2, iterations 5-8 only
    assert runs.train(config, work, SMALL[:2] + [
        'train_cfg.max_epochs=4'] + SMALL[3:]) is True
    sessions = sorted(work.glob('*/vis_data/scalars.json'))
    assert len(sessions) == 2
    iters = [[json.loads(line)['iter'] for line in s.read_text().splitlines()
              if 'loss' in line] for s in sessions]
    assert iters == [[1, 2, 3, 4], [5, 6, 7, 8]]
    # nothing swapped: the same argv and working directory; no variable
    # of the environment changed or removed, none of a launcher added
    # (libraries imported on the way may add their own)
    assert sys.argv == argv and os.getcwd() == cwd
    assert {k: os.environ.get(k) for k in env} == env
    added = set(os.environ) - set(env)
    assert not {'LOCAL_RANK', 'RANK', 'WORLD_SIZE'} & added
    # the runners' log files are closed and their workers gone
    assert _open_log_files(work) == []
    assert multiprocessing.active_children() == []


def test_test_in_process_returns_the_logged_metrics(tmp_path, demo_data,
                                                    monkeypatch):
    monkeypatch.chdir(REPO)
    config = runs.find_config(DET)
    options = ['model.backbone.init_cfg=None', 'model.neck.init_cfg=None',
               'train_cfg.max_epochs=1', 'train_cfg.val_begin=10',
               'train_dataloader.dataset.indices=2',
               'train_dataloader.batch_size=2',
               'test_dataloader.dataset.indices=3',
               'model.test_cfg.rcnn.max_per_img=10']
    runs.train(config, tmp_path / 'det', options)
    metrics = runs.test(config, tmp_path / 'det' / 'epoch_1.pth',
                        tmp_path / 'eval', options, show_dir='pictures')
    # what MMEngine logged for the test, read back from its JSON
    logged = json.loads(next((tmp_path / 'eval').glob('*/*.json'))
                        .read_text().splitlines()[-1])
    assert metrics.keys() <= logged.keys()
    assert {'coco/bbox_mAP', 'coco/segm_mAP'} <= metrics.keys()
    for k, v in metrics.items():
        assert type(v) is float and v == pytest.approx(logged[k], abs=5e-4)
    # one picture per test image
    drawn = sorted(p.name for p in (tmp_path / 'eval').glob('*/pictures/*'))
    assert drawn == ['00000.jpg', '00001.jpg', '00002.jpg']
    assert _open_log_files(tmp_path) == []
    # a checkpoint that is not of the model stops the test
    import torch
    torch.save({'state_dict': {'unrelated.weight': torch.zeros(1)}},
               tmp_path / 'other.pth')
    with pytest.raises(Exception, match='unrelated'):
        runs.test(config, tmp_path / 'other.pth', tmp_path / 'eval2',
                  options)


def test_all_cores_unless_omp_num_threads_is_set(monkeypatch):
    import torch
    before = torch.get_num_threads()
    try:
        monkeypatch.setenv('OMP_NUM_THREADS', '1')
        torch.set_num_threads(1)
        assert runs.use_all_cores() == 1
        monkeypatch.delenv('OMP_NUM_THREADS')
        assert runs.use_all_cores() == (os.cpu_count() or 1)
    finally:
        torch.set_num_threads(before)
