"""Every checkpoint a run loads goes through weights_only=True and the
allow-list: a pickle that would create a file is refused on each path
(``load_from``, resume, ``init_cfg``, ``tools/train.py --resume``,
``tools/test.py``, a plain ``torch.load`` after ``import mmitpn``), and
the checkpoints MMEngine itself writes still resume."""
import os
import subprocess
import sys
import textwrap

import pytest
import torch
import torch.nn as nn
from mmengine.model import BaseModel
from mmengine.registry import MODELS
from mmengine.runner import Runner
from torch import serialization

from conftest import REPO
from mmitpn.utils.safe_load import UnsafeCheckpointError


class WritesAFile:
    """Unpickling it creates ``path``."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, 'w'))


def evil(path, marker):
    torch.save({'state_dict': {'linear.weight': torch.ones(2, 2)},
                'meta': WritesAFile(marker)}, path)
    return str(path)


@MODELS.register_module(force=True)
class SafeLoadToy(BaseModel):

    def __init__(self, init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        self.linear = nn.Linear(2, 2)

    def forward(self, inputs, labels=None, mode='tensor'):
        out = self.linear(torch.stack(inputs))
        return dict(loss=(out - torch.stack(labels)).pow(2).mean())


class Data(torch.utils.data.Dataset):

    def __len__(self):
        return 8

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(i)
        return dict(inputs=torch.randn(2, generator=g),
                    labels=torch.randn(2, generator=g))


def runner(work_dir, model=None, **kwargs):
    return Runner(
        model=model or dict(type='SafeLoadToy'),
        work_dir=str(work_dir),
        train_dataloader=dict(
            dataset=Data(), batch_size=4, num_workers=0,
            sampler=dict(type='DefaultSampler', shuffle=False),
            collate_fn=dict(type='pseudo_collate')),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)),
        train_cfg=dict(by_epoch=False, max_iters=2),
        default_hooks=dict(
            checkpoint=dict(type='mmitpn.CrashSafeCheckpointHook',
                            by_epoch=False, interval=1),
            weights_only_load=dict(type='mmitpn.WeightsOnlyLoadHook')),
        default_scope='mmengine', **kwargs)


def test_runner_checkpoints_resume_and_the_allow_list_closes(tmp_path):
    """A checkpoint the runner wrote (message hub: HistoryBuffer, numpy)
    resumes; torch's own default refuses it; the allow-list is open only
    while loading."""
    runner(tmp_path / 'a').train()
    path = tmp_path / 'a' / 'iter_2.pth'
    with pytest.raises(Exception, match='Weights only load failed'):
        torch.load(path, weights_only=True)
    before = set(map(id, serialization.get_safe_globals()))
    resumed = runner(tmp_path / 'a', resume=True)
    resumed._train_loop = dict(by_epoch=False, max_iters=3)
    resumed.train()
    assert resumed.iter == 3
    assert set(map(id, serialization.get_safe_globals())) == before


@pytest.mark.parametrize('path', ['load_from', 'resume', 'init_cfg'])
def test_each_runner_path_refuses_code(tmp_path, path):
    marker = tmp_path / 'pwned'
    work_dir = tmp_path / 'work'
    work_dir.mkdir()
    kwargs, model = {}, None
    if path == 'load_from':
        kwargs['load_from'] = evil(tmp_path / 'evil.pth', marker)
    elif path == 'resume':
        evil(work_dir / 'iter_1.pth', marker)  # found by the auto resume
        kwargs['resume'] = True
    else:
        model = dict(type='SafeLoadToy', init_cfg=dict(
            type='Pretrained',
            checkpoint=evil(tmp_path / 'evil.pth', marker)))
    with pytest.raises(UnsafeCheckpointError, match=r'io\.open.*refused'):
        runner(work_dir, model=model, **kwargs).train()
    assert not marker.exists()


def test_opt_in_is_per_run(tmp_path):
    marker = tmp_path / 'made'
    path = evil(tmp_path / 'legacy.pth', marker)
    opted = Runner(
        model=dict(type='SafeLoadToy'), work_dir=str(tmp_path / 'w1'),
        load_from=path, default_scope='mmengine',
        default_hooks=dict(weights_only_load=dict(
            type='mmitpn.WeightsOnlyLoadHook', allow_unsafe_load=True)))
    opted.call_hook('before_run')
    opted.load_or_resume()
    opted.call_hook('after_run')
    assert marker.exists()  # trusted on purpose: the legacy file loaded
    assert torch.equal(opted.model.linear.weight, torch.ones(2, 2))
    # the next run, without the opt-in, refuses the same file
    marker.unlink()
    with pytest.raises(UnsafeCheckpointError):
        runner(tmp_path / 'w2', load_from=path).train()
    assert not marker.exists()


def _tool(*args):
    return subprocess.run(
        [sys.executable, *args], cwd=str(REPO), capture_output=True,
        text=True, timeout=300,
        env=dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=str(REPO)))


def test_tools_and_plain_torch_load_refuse_code(tmp_path, demo_data):
    from conftest import config_path
    marker = tmp_path / 'pwned'
    path = evil(tmp_path / 'evil.pth', marker)
    config = str(config_path('itpn-tiny_pixel-mfm_1xb32-20e_demo.py'))
    res = _tool('tools/test.py',
                str(config_path('itpn-tiny_mask-rcnn_1xb4-6e_demo.py')),
                path, '--work-dir', str(tmp_path / 't'))
    assert res.returncode == 1, res.stderr[-2000:]
    lines = [ln for ln in res.stderr.splitlines() if ln.startswith('ERROR')]
    assert len(lines) == 1 and 'io.open' in lines[0] and \
        '--allow-unsafe-load' in lines[0], res.stderr[-2000:]
    res = _tool('tools/train.py', config, '--work-dir', str(tmp_path / 'r'),
                '--resume', path)
    assert res.returncode == 1 and 'io.open' in res.stderr, \
        res.stderr[-2000:]
    script = textwrap.dedent(f'''
        import torch, mmitpn, mmitpn.engine, mmitpn.models
        try:
            torch.load({path!r})
        except Exception as e:
            print('REFUSED', type(e).__name__)
        ''')
    res = _tool('-c', script)
    assert 'REFUSED UnpicklingError' in res.stdout, res.stderr[-2000:]
    assert not marker.exists()
