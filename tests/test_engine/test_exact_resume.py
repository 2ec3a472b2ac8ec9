"""k iterations + resumed k == 2k, bit for bit, with the shipped demo configs
as shipped (data-loader workers, persistent workers), through every door:
``tools/train.py``, the host's own train script (mmpretrain's for the
pre-training, mmdet's for Mask R-CNN, as shipped in their wheels) and
``Runner.from_cfg(cfg).train()``.

Each config runs two epochs of two iterations (batch 2 on 4 images, set by
``--cfg-options``; the data loader keeps its shipped ``num_workers`` and
``persistent_workers``), saving a checkpoint per epoch. A second run
resumes from the first run's epoch-1 checkpoint in a new work directory
(new processes, new workers) and runs epoch 2. Its epoch-2 checkpoint must
equal the uninterrupted run's in every tensor (weights, EMA teacher,
optimizer state) and its logged losses must be the same floats. The
uninterrupted run through the host's script and through
``Runner.from_cfg`` logs the same losses as through ``tools/train.py``,
and a resume through the host's script (its ``--resume``, which finds the
checkpoint itself) is exact too.
"""
import glob
import json
import os
import os.path as osp
import shutil
import subprocess
import sys

import pytest
import torch
from conftest import REPO, config_path
from mmengine.config import Config

SMALL = ['train_dataloader.batch_size=2', 'train_dataloader.dataset.indices=4',
         'train_cfg.max_epochs=2', 'default_hooks.checkpoint.interval=1',
         'default_hooks.checkpoint.max_keep_ckpts=3',
         'default_hooks.logger.interval=1', 'randomness.seed=0']

CASES = {
    'pretrain': ('itpn-tiny_pixel-mfm_1xb32-20e_demo.py', 'mmpretrain', []),
    'mask-rcnn': ('itpn-tiny_mask-rcnn_1xb4-6e_demo.py', 'mmdet', [
        'model.backbone.init_cfg=None', 'model.neck.init_cfg=None',
        'train_cfg.val_begin=100'
    ]),
}

# Runner.from_cfg, as a notebook calls it (the config's default scope is
# the host's, as the host's tools set it up)
NOTEBOOK = """
import argparse
from mmengine.config import Config, DictAction
from mmengine.runner import Runner
parser = argparse.ArgumentParser()
parser.add_argument('config')
parser.add_argument('work_dir')
parser.add_argument('--cfg-options', nargs='+', action=DictAction)
args = parser.parse_args()
cfg = Config.fromfile(args.config)
cfg.work_dir = args.work_dir
cfg.merge_from_dict(args.cfg_options)
Runner.from_cfg(cfg).train()
"""


def host_train_script(host):
    """The train script the host ships in its wheel."""
    pkg = __import__(host)
    path = osp.join(osp.dirname(pkg.__file__), '.mim', 'tools', 'train.py')
    assert osp.isfile(path), path
    return path


def train(config, work_dir, options, *extra, door='tools'):
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=str(REPO))
    if door == 'notebook':
        cmd = [sys.executable, '-c', NOTEBOOK, str(config), str(work_dir),
               '--cfg-options', *options]
    else:
        script = str(REPO / 'tools' / 'train.py') if door == 'tools' \
            else host_train_script(door)
        cmd = [sys.executable, script, str(config), '--work-dir',
               str(work_dir), *extra, '--cfg-options', *options]
    res = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True,
                         text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return res.stdout + res.stderr


def logged_losses(work_dir):
    """{iteration: {loss key: value}} from the runs' scalars.json files."""
    out = {}
    for path in glob.glob(osp.join(work_dir, '*', 'vis_data',
                                   'scalars.json')):
        with open(path) as f:
            for line in f:
                rec = json.loads(line)
                losses = {k: v for k, v in rec.items()
                          if k.startswith('loss')}
                if losses:
                    out[rec['iter']] = losses
    return out


@pytest.mark.parametrize('case', list(CASES))
def test_resumed_run_equals_the_uninterrupted_run(case, demo_data,
                                                  tmp_path):
    name, host, extra = CASES[case]
    config = config_path(name)
    shipped = Config.fromfile(str(config)).train_dataloader
    assert shipped.num_workers > 0  # the shipped loader, workers included
    options = SMALL + extra

    full = tmp_path / 'full'
    log = train(config, full, options)
    # the frozen teacher is summed up in one line, not 47 warnings
    assert 'is skipped since its requires_grad' not in log
    dumped = Config.fromfile(str(full / osp.basename(config)))
    loader = dumped.train_dataloader
    assert loader.num_workers == shipped.num_workers
    assert loader.get('persistent_workers') == shipped.get(
        'persistent_workers')
    assert loader.sampler.type == 'mmitpn.SeededSampler'
    resumed = tmp_path / 'resumed'
    resumed.mkdir()
    shutil.copy(full / 'epoch_1.pth', resumed / 'epoch_1.pth')
    log = train(config, resumed, options, '--resume',
                str(resumed / 'epoch_1.pth'))
    assert 'resumed epoch: 1' in log, log[-3000:]

    a = torch.load(full / 'epoch_2.pth', map_location='cpu',
                   weights_only=False)
    b = torch.load(resumed / 'epoch_2.pth', map_location='cpu',
                   weights_only=False)
    assert a['meta']['iter'] == b['meta']['iter'] == 4
    sa, sb = a['state_dict'], b['state_dict']
    assert set(sa) == set(sb)
    if case == 'pretrain':
        assert any(k.startswith('teacher.') for k in sa)  # EMA teacher
    differ = [k for k in sa if not torch.equal(sa[k], sb[k])]
    assert not differ, f'{len(differ)} tensors differ, e.g. {differ[:3]}'
    # optimizer moments too
    ma = a['optimizer']['state']
    mb = b['optimizer']['state']
    assert all(torch.equal(ma[i][k], mb[i][k]) for i in ma for k in ma[i]
               if torch.is_tensor(ma[i][k]))

    la, lb = logged_losses(full), logged_losses(resumed)
    assert sorted(la) == [1, 2, 3, 4], la
    assert sorted(lb) == [3, 4], lb
    for it in (3, 4):
        assert la[it] == lb[it], (it, la[it], lb[it])

    # the same run through the host's own script and through a notebook
    for door in (host, 'notebook'):
        other = tmp_path / door
        train(config, other, options, door=door)
        assert logged_losses(other) == la, (door, logged_losses(other), la)
    # a resume through the host's script, which finds the checkpoint itself
    again = tmp_path / 'host-resumed'
    again.mkdir()
    shutil.copy(full / 'epoch_1.pth', again / 'epoch_1.pth')
    log = train(config, again, options, '--resume', door=host)
    assert 'resumed epoch: 1' in log, log[-3000:]
    c = torch.load(again / 'epoch_2.pth', map_location='cpu',
                   weights_only=False)['state_dict']
    differ = [k for k in sa if not torch.equal(sa[k], c[k])]
    assert not differ, f'{len(differ)} tensors differ, e.g. {differ[:3]}'
    lc = logged_losses(again)
    assert all(la[it] == lc[it] for it in (3, 4)), (la, lc)
