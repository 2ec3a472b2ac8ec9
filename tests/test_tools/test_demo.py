"""Checks of ``tools/demo.py`` that need no training run."""
from pathlib import Path

import pytest
from conftest import REPO, load_tool
from mmengine.config import Config


@pytest.fixture(scope='module')
def demo():
    return load_tool('tools/demo.py')


def test_checkpoint_names_follow_the_configs(demo):
    # the schedules the config names announce: 200 and 6 epochs
    assert demo.last_epoch(demo.PRETRAIN_CFG) == 'epoch_200.pth'
    assert demo.last_epoch(demo.DET_CFG) == 'epoch_6.pth'
    # the fine-tuning config starts, by default, from the pre-training's
    # last checkpoint in the demo's work dir
    det = Config.fromfile(REPO / demo.DET_CFG).model
    for part in (det.backbone, det.neck):
        assert part.init_cfg.checkpoint == \
            'work_dirs/demo/pretrain/epoch_200.pth'


def test_stale_work_dir_of_another_config_is_refused(demo, tmp_path):
    run = tmp_path / 'pretrain'
    run.mkdir()
    (run / 'itpn-tiny_pixel-mfm_1xb32-20e_demo.py').write_text('')
    demo.check_work_dir(run, demo.PRETRAIN_CFG)  # nothing to resume: fine
    (run / 'last_checkpoint').write_text(str(run / 'epoch_5.pth'))
    with pytest.raises(SystemExit, match=r'holds a run of itpn-tiny_pixel-'
                       r'mfm_1xb32-20e_demo\.py.*--force'):
        demo.check_work_dir(run, demo.PRETRAIN_CFG)
    # an unfinished run of the same config resumes
    (run / Path(demo.PRETRAIN_CFG).name).write_text('')
    demo.check_work_dir(run, demo.PRETRAIN_CFG)
    demo.check_work_dir(tmp_path / 'absent', demo.DET_CFG)


def test_gain_line(demo):
    pre = {'coco/bbox_mAP': 0.510, 'coco/segm_mAP': 0.556}
    scr = {'coco/bbox_mAP': 0.414, 'coco/segm_mAP': 0.489}
    assert demo.gain(pre, scr) == ('pre-trained minus scratch: bbox mAP '
                                   '+0.096, segm mAP +0.067')
