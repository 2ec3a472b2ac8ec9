"""Tests of the launch scripts in ``tools/`` and of :mod:`mmitpn.utils`.

The Slurm and torchrun scripts run against stand-ins (an ``srun`` first on
``PATH``, a ``python`` given by ``MMITPN_PYTHON``) that record their argv;
``train.py`` / ``test.py`` run for real on a toy model on CPU.
"""
import os
import os.path as osp
import pickle
import re
import socket
import stat
import subprocess
import sys
import textwrap

import pytest
import torch
from mmengine.config import Config

import mmitpn.utils.device as device
import mmitpn.utils.distributed as distributed
from mmitpn.engine.optimizers import CPUAmpOptimWrapper
from mmitpn.utils import (get_host_scope, register_host_modules, setup_amp,
                          setup_cpu_dist, setup_tta,
                          trigger_visualization_hook)
from conftest import cpu_unless_gpus

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOLS = osp.join(REPO, 'tools')

# A stand-in executable: writes its argv (NUL-separated) to $RECORD_FILE and
# PYTHONPATH to $RECORD_FILE.env.
RECORDER = textwrap.dedent("""\
    #!/usr/bin/env bash
    printf '%s\\0' "$@" > "$RECORD_FILE"
    printf '%s' "${PYTHONPATH:-}" > "$RECORD_FILE.env"
    """)


def _make_recorder(path):
    with open(path, 'w') as f:
        f.write(RECORDER)
    os.chmod(path, os.stat(path).st_mode | stat.S_IEXEC)
    return str(path)


def _read_argv(record):
    with open(record) as f:
        return f.read().split('\0')[:-1]


def _clean_env(**extra):
    env = dict(os.environ)
    for key in ('GPUS', 'GPUS_PER_NODE', 'CPUS_PER_TASK', 'SRUN_ARGS',
                'NNODES', 'NODE_RANK', 'MASTER_ADDR', 'PORT',
                'MMITPN_PYTHON'):
        env.pop(key, None)
    env.update({k: str(v) for k, v in extra.items()})
    return env


def _run_script(script, args, env):
    return subprocess.run(['bash', osp.join(TOOLS, script), *args],
                          env=env,
                          capture_output=True,
                          text=True,
                          timeout=60)


@pytest.fixture
def fake_srun(tmp_path):
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    _make_recorder(bin_dir / 'srun')
    record = tmp_path / 'srun_argv'

    def env(**extra):
        return _clean_env(
            PATH=f'{bin_dir}{os.pathsep}{os.environ["PATH"]}',
            RECORD_FILE=record,
            **extra)

    return env, record


# --------------------------------------------------------------- slurm ---
def test_slurm_train_defaults(fake_srun):
    env, record = fake_srun
    res = _run_script(
        'slurm_train.sh',
        ['part1', 'job-a', 'configs/x.py', 'work_dirs/x', '--amp',
         '--cfg-options', 'a=1 b'], env())
    assert res.returncode == 0, res.stderr
    argv = _read_argv(record)
    i = argv.index('-u')
    srun_opts, cmd = argv[:i - 1], argv[i - 1:]
    assert srun_opts == [
        '-p', 'part1', '--job-name=job-a', '--gres=gpu:8', '--ntasks=8',
        '--ntasks-per-node=8', '--cpus-per-task=5', '--kill-on-bad-exit=1'
    ]
    assert cmd[0] == 'python'
    assert osp.realpath(cmd[2]) == osp.join(osp.realpath(TOOLS), 'train.py')
    assert cmd[3:] == [
        'configs/x.py', '--work-dir=work_dirs/x', '--launcher=slurm', '--amp',
        '--cfg-options', 'a=1 b'
    ]
    pythonpath = open(f'{record}.env').read().split(os.pathsep)
    assert osp.realpath(pythonpath[0]) == osp.realpath(REPO)


def test_slurm_train_env_and_srun_args(fake_srun):
    env, record = fake_srun
    res = _run_script(
        'slurm_train.sh', ['p', 'j', 'c.py', 'w'],
        env(GPUS=16, GPUS_PER_NODE=4, CPUS_PER_TASK=2,
            SRUN_ARGS='--quotatype=auto --time=1:00:00',
            MMITPN_PYTHON='/opt/py/bin/python'))
    assert res.returncode == 0, res.stderr
    argv = _read_argv(record)
    assert argv[:10] == [
        '-p', 'p', '--job-name=j', '--gres=gpu:4', '--ntasks=16',
        '--ntasks-per-node=4', '--cpus-per-task=2', '--kill-on-bad-exit=1',
        '--quotatype=auto', '--time=1:00:00'
    ]
    assert argv[10:12] == ['/opt/py/bin/python', '-u']
    assert argv[13:] == ['c.py', '--work-dir=w', '--launcher=slurm']


def test_slurm_test(fake_srun):
    env, record = fake_srun
    res = _run_script(
        'slurm_test.sh',
        ['part2', 'job-b', 'c.py', 'ckpt.pth', '--out', 'r.pkl'],
        env(GPUS=2, GPUS_PER_NODE=2))
    assert res.returncode == 0, res.stderr
    argv = _read_argv(record)
    assert argv[:8] == [
        '-p', 'part2', '--job-name=job-b', '--gres=gpu:2', '--ntasks=2',
        '--ntasks-per-node=2', '--cpus-per-task=5', '--kill-on-bad-exit=1'
    ]
    assert argv[8:10] == ['python', '-u']
    assert osp.basename(argv[10]) == 'test.py'
    assert argv[11:] == [
        'c.py', 'ckpt.pth', '--launcher=slurm', '--out', 'r.pkl'
    ]


@pytest.mark.parametrize('script', ['slurm_train.sh', 'slurm_test.sh'])
def test_slurm_usage(fake_srun, script):
    env, record = fake_srun
    res = _run_script(script, ['p', 'j'], env())
    assert res.returncode != 0
    assert 'usage' in res.stderr
    assert not record.exists()


# ------------------------------------------------------------ torchrun ---
@pytest.fixture
def fake_python(tmp_path):
    record = tmp_path / 'python_argv'
    python = _make_recorder(tmp_path / 'python')

    def env(**extra):
        return _clean_env(
            MMITPN_PYTHON=python, RECORD_FILE=record, **extra)

    return env, record


def test_dist_train_defaults(fake_python):
    env, record = fake_python
    res = _run_script('dist_train.sh', ['c.py', '4'], env())
    assert res.returncode == 0, res.stderr
    argv = _read_argv(record)
    assert argv[:7] == [
        '-m', 'torch.distributed.run', '--nnodes=1', '--node_rank=0',
        '--master_addr=127.0.0.1', '--nproc_per_node=4', '--master_port=29500'
    ]
    assert osp.realpath(argv[7]) == osp.join(osp.realpath(TOOLS), 'train.py')
    assert argv[8:] == ['c.py', '--launcher', 'pytorch']
    pythonpath = open(f'{record}.env').read().split(os.pathsep)
    assert osp.realpath(pythonpath[0]) == osp.realpath(REPO)


def test_dist_train_env_and_args(fake_python):
    env, record = fake_python
    res = _run_script(
        'dist_train.sh',
        ['c.py', '8', '--amp', '--cfg-options', 'x=a b'],
        env(NNODES=2, NODE_RANK=1, MASTER_ADDR='10.0.0.7', PORT=29611,
            PYTHONPATH='/some/where'))
    assert res.returncode == 0, res.stderr
    argv = _read_argv(record)
    assert argv[2:7] == [
        '--nnodes=2', '--node_rank=1', '--master_addr=10.0.0.7',
        '--nproc_per_node=8', '--master_port=29611'
    ]
    assert argv[8:] == [
        'c.py', '--launcher', 'pytorch', '--amp', '--cfg-options', 'x=a b'
    ]
    pythonpath = open(f'{record}.env').read().split(os.pathsep)
    assert pythonpath[1:] == ['/some/where']


def test_dist_test(fake_python):
    env, record = fake_python
    res = _run_script('dist_test.sh', ['c.py', 'ckpt.pth', '2', '--tta'],
                      env(PORT=29700))
    assert res.returncode == 0, res.stderr
    argv = _read_argv(record)
    assert argv[:7] == [
        '-m', 'torch.distributed.run', '--nnodes=1', '--node_rank=0',
        '--master_addr=127.0.0.1', '--nproc_per_node=2', '--master_port=29700'
    ]
    assert osp.basename(argv[7]) == 'test.py'
    assert argv[8:] == ['c.py', 'ckpt.pth', '--launcher', 'pytorch', '--tta']


# --------------------------------------------------------------- --help ---
@pytest.mark.parametrize('tool', ['train.py', 'test.py'])
def test_tool_help(tool):
    res = subprocess.run([sys.executable,
                          osp.join(TOOLS, tool), '--help'],
                         capture_output=True,
                         text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr
    assert '--launcher' in res.stdout
    assert '--cfg-options' in res.stdout


# ---------------------------------------------------------- mmitpn.utils ---
@pytest.fixture
def no_cuda(monkeypatch):
    monkeypatch.setattr(device, 'cuda_available', lambda: False)


@pytest.fixture
def with_cuda(monkeypatch):
    monkeypatch.setattr(device, 'cuda_available', lambda: True)


def test_register_host_modules_mmdet():
    cfg = Config(dict(default_scope='mmdet'))
    assert register_host_modules(cfg) == 'mmdet'
    assert cfg.default_scope == 'mmdet'
    from mmdet.registry import MODELS
    assert MODELS.get('FasterRCNN') is not None


@pytest.mark.parametrize('scope', ['mmseg', 'mmpretrain'])
def test_register_host_modules_hosts(scope):
    cfg = Config(dict(default_scope=scope))
    assert register_host_modules(cfg) == scope
    assert cfg.default_scope == scope


def test_register_host_modules_fallback():
    cfg = Config(dict(default_scope='mmitpn'))
    assert get_host_scope(cfg) == 'mmpretrain'
    assert register_host_modules(cfg) == 'mmpretrain'
    assert cfg.default_scope == 'mmitpn'

    cfg = Config(dict())
    assert register_host_modules(cfg) == 'mmpretrain'
    assert cfg.default_scope == 'mmpretrain'


def test_setup_cpu_dist_gloo(no_cuda):
    cfg = Config(
        dict(default_scope='mmdet',
             env_cfg=dict(dist_cfg=dict(backend='nccl', timeout=60))))
    register_host_modules(cfg)
    assert setup_cpu_dist(cfg, 'pytorch') is True
    assert cfg.env_cfg.dist_cfg.backend == 'gloo'
    assert cfg.env_cfg.dist_cfg.timeout == 60
    assert cfg.model_wrapper_cfg.type == 'MMDistributedDataParallel'
    assert cfg.model_wrapper_cfg.device_ids is None

    # launcher read from the config; missing env_cfg is created
    cfg = Config(dict(launcher='slurm'))
    assert setup_cpu_dist(cfg) is True
    assert cfg.env_cfg.dist_cfg.backend == 'gloo'


def test_setup_cpu_dist_noop(no_cuda):
    cfg = Config(dict(env_cfg=dict(dist_cfg=dict(backend='nccl'))))
    assert setup_cpu_dist(cfg, 'none') is False
    assert cfg.env_cfg.dist_cfg.backend == 'nccl'
    assert 'model_wrapper_cfg' not in cfg


def test_setup_cpu_dist_cuda(with_cuda):
    cfg = Config(dict(env_cfg=dict(dist_cfg=dict(backend='nccl'))))
    assert setup_cpu_dist(cfg, 'pytorch') is False
    assert cfg.env_cfg.dist_cfg.backend == 'nccl'


def test_setup_amp_cuda(with_cuda):
    cfg = Config(dict(optim_wrapper=dict(optimizer=dict(type='SGD'))))
    assert setup_amp(cfg) == 'AmpOptimWrapper'
    assert cfg.optim_wrapper.loss_scale == 'dynamic'
    assert 'dtype' not in cfg.optim_wrapper

    # an AmpOptimWrapper is kept with its settings
    cfg = Config(
        dict(optim_wrapper=dict(type='AmpOptimWrapper', loss_scale=512.)))
    assert setup_amp(cfg) == 'AmpOptimWrapper'
    assert cfg.optim_wrapper.loss_scale == 512.


def test_setup_amp_cpu(no_cuda):
    cfg = Config(dict(optim_wrapper=dict(type='OptimWrapper')))
    with pytest.warns(UserWarning, match='bfloat16'):
        assert setup_amp(cfg) == 'mmitpn.CPUAmpOptimWrapper'
    assert cfg.optim_wrapper.dtype == 'bfloat16'


def test_setup_amp_errors():
    with pytest.raises(KeyError):
        setup_amp(Config(dict()))
    with pytest.raises(TypeError, match='MyWrapper'):
        setup_amp(Config(dict(optim_wrapper=dict(type='MyWrapper'))))


def test_cpu_amp_optim_wrapper_step():
    from mmengine.registry import OPTIM_WRAPPERS
    model = torch.nn.Linear(4, 2)
    wrapper = OPTIM_WRAPPERS.build(
        dict(type='mmitpn.CPUAmpOptimWrapper',
             optimizer=torch.optim.SGD(model.parameters(), lr=0.1)))
    assert isinstance(wrapper, CPUAmpOptimWrapper)
    before = model.weight.detach().clone()
    with wrapper.optim_context(model):
        out = model(torch.randn(3, 4))
    assert out.dtype == torch.bfloat16
    wrapper.update_params(out.float().pow(2).mean())
    assert not torch.equal(before, model.weight)
    state = wrapper.state_dict()
    assert 'loss_scaler' not in state
    wrapper.load_state_dict(state)
    with pytest.raises(ValueError):
        CPUAmpOptimWrapper(
            dtype='float16',
            optimizer=torch.optim.SGD(model.parameters(), lr=0.1))


def test_trigger_visualization_hook():
    def vis(args):
        return dict(show_dir='out', wait_time=1., **args)

    cfg = Config(
        dict(default_scope='mmdet',
             default_hooks=dict(
                 visualization=dict(type='DetVisualizationHook'))))
    trigger_visualization_hook(cfg, **vis(dict(show=True)))
    hook = cfg.default_hooks.visualization
    assert hook.type == 'DetVisualizationHook'
    assert hook.draw and hook.show and hook.wait_time == 1.
    assert hook.test_out_dir == 'out'

    cfg = Config(dict(default_scope='mmseg'))  # hook and visualizer added
    trigger_visualization_hook(cfg, **vis({}))
    assert cfg.default_hooks.visualization.type == 'SegVisualizationHook'
    assert cfg.default_hooks.visualization.draw is True
    assert cfg.visualizer.save_dir == 'out'

    cfg = Config(dict(default_scope='mmitpn'))
    trigger_visualization_hook(cfg, **vis({}))
    hook = cfg.default_hooks.visualization
    assert hook.type == 'VisualizationHook'
    assert hook.enable is True and hook.out_dir == 'out'


def test_setup_tta():
    pipeline = [dict(type='LoadImageFromFile'), dict(type='PackInputs')]
    cfg = Config(
        dict(default_scope='mmpretrain',
             model=dict(type='ImageClassifier'),
             test_dataloader=dict(
                 dataset=dict(type='ImageNet', pipeline=pipeline))))
    with pytest.warns(UserWarning):
        setup_tta(cfg)
    assert cfg.model.type == 'mmpretrain.AverageClsScoreTTA'
    assert cfg.model.module.type == 'ImageClassifier'
    tta = cfg.test_dataloader.dataset.pipeline[-1]
    assert tta.type == 'TestTimeAug'
    assert tta.transforms[1] == [dict(type='PackInputs')]

    with pytest.raises(KeyError):
        setup_tta(Config(dict(default_scope='mmseg')))


# ---------------------------------------------- real runs on a toy model ---
TOY_MODULE = '''
import torch
import torch.nn as nn
from mmengine.evaluator import BaseMetric
from mmengine.model import BaseModel
from mmengine.registry import DATASETS, METRICS, MODELS
from torch.utils.data import Dataset


@MODELS.register_module()
class ToyToolsModel(BaseModel):

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 2)

    def forward(self, inputs, labels=None, mode='tensor'):
        out = self.linear(torch.stack(inputs))
        if mode == 'loss':
            if not getattr(self, 'reported', False):
                # what the tests assert: the autocast dtype and the rank
                import torch.distributed as dist
                rank, world = (dist.get_rank(), dist.get_world_size()) \
                    if dist.is_initialized() else (0, 1)
                print(f'TOY dtype={out.dtype} rank={rank} of {world}',
                      flush=True)
                self.reported = True
            return dict(loss=nn.functional.cross_entropy(
                out.float(), torch.stack(labels)))
        if mode == 'predict':
            return [dict(pred=o.float()) for o in out]
        return out


@DATASETS.register_module()
class ToyToolsDataset(Dataset):

    def __init__(self, n=16):
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(n, 4, generator=g)
        self.y = (self.x[:, 0] > 0).long()

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return dict(inputs=self.x[i], labels=self.y[i])


@METRICS.register_module()
class ToyToolsMetric(BaseMetric):

    def process(self, data_batch, data_samples):
        self.results.append(len(data_samples))

    def compute_metrics(self, results):
        return dict(count=sum(results))
'''

TOY_CONFIG = '''
default_scope = 'mmpretrain'
custom_imports = dict(imports=['toy_tools_modules'],
                      allow_failed_imports=False)
model = dict(type='ToyToolsModel')
train_dataloader = dict(
    batch_size=4, num_workers=0,
    dataset=dict(type='ToyToolsDataset', n=16),
    sampler=dict(type='DefaultSampler', shuffle=True))
train_cfg = dict(by_epoch=True, max_epochs=1)
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.01))
test_dataloader = dict(
    batch_size=4, num_workers=0,
    dataset=dict(type='ToyToolsDataset', n=8),
    sampler=dict(type='DefaultSampler', shuffle=False))
test_evaluator = dict(type='ToyToolsMetric')
test_cfg = dict()
default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', interval=1),
    logger=dict(type='LoggerHook', interval=1))
env_cfg = dict(dist_cfg=dict(backend='nccl'))
'''


@pytest.fixture
def toy_project(tmp_path):
    (tmp_path / 'toy_tools_modules.py').write_text(TOY_MODULE)
    config = tmp_path / 'toy_tools_config.py'
    config.write_text(TOY_CONFIG)
    env = _clean_env(
        PYTHONPATH=os.pathsep.join([str(tmp_path), REPO]),
        MMITPN_PYTHON=sys.executable,
        OMP_NUM_THREADS=1)
    return config, env


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_train_then_test_toy(toy_project, tmp_path):
    config, env = toy_project
    work_dir = tmp_path / 'work'
    amp = ['--amp'] if not torch.cuda.is_available() else []
    res = subprocess.run(
        [sys.executable, osp.join(TOOLS, 'train.py'), str(config),
         '--work-dir', str(work_dir), *amp],
        env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    ckpt = work_dir / 'epoch_1.pth'
    assert ckpt.exists()
    if amp:  # CPU: bfloat16 autocast in the forward
        assert 'CPUAmpOptimWrapper' in res.stdout
        assert 'TOY dtype=torch.bfloat16 rank=0 of 1' in res.stdout
    else:  # CUDA machine: the toy trains in float32 (no --amp)
        assert 'TOY dtype=torch.float32 rank=0 of 1' in res.stdout

    out = tmp_path / 'preds.pkl'
    res = subprocess.run(
        [sys.executable, osp.join(TOOLS, 'test.py'), str(config),
         str(ckpt), '--work-dir', str(work_dir), '--out', str(out)],
        env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    with open(out, 'rb') as f:
        preds = pickle.load(f)
    assert len(preds) == 8 and preds[0]['pred'].shape == (2, )

    # --resume without a path picks up the latest checkpoint
    res = subprocess.run(
        [sys.executable, osp.join(TOOLS, 'train.py'), str(config),
         '--work-dir', str(work_dir), '--resume',
         '--cfg-options', 'train_cfg.max_epochs=2'],
        env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert 'resumed epoch: 1' in res.stdout + res.stderr
    assert (work_dir / 'epoch_2.pth').exists()


def test_dist_train_toy(toy_project, tmp_path):
    config, env = toy_project
    env['PORT'] = str(_free_port())
    cpu_unless_gpus(env)
    work_dir = tmp_path / 'work_dist'
    res = subprocess.run(
        ['bash', osp.join(TOOLS, 'dist_train.sh'), str(config), '2',
         '--work-dir', str(work_dir)],
        env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert (work_dir / 'epoch_1.pth').exists()
    # two processes trained, one per rank
    out = res.stdout + res.stderr
    assert 'TOY dtype=torch.float32 rank=0 of 2' in out, out[-3000:]
    assert 'TOY dtype=torch.float32 rank=1 of 2' in out, out[-3000:]


@pytest.mark.parametrize('gpus,hidden', [(0, True), (1, True), (2, False)])
def test_two_process_tests_fall_back_to_the_cpu(monkeypatch, gpus, hidden):
    """The 2-process tests run on gloo (CUDA hidden) with fewer than two
    GPUs, instead of skipping on a one-GPU machine."""
    monkeypatch.setattr(torch.cuda, 'device_count', lambda: gpus)
    env = cpu_unless_gpus({})
    assert (env.get('CUDA_VISIBLE_DEVICES') == '') is hidden
    assert ('CUDA_VISIBLE_DEVICES' in env) is hidden


def test_close_dist_waits_for_every_rank_then_destroys(monkeypatch):
    """A rank that tears its gloo group down while another still works
    aborted now and then (``terminate called without an active
    exception``, 3 of 13 two-rank runs with rank 0 delayed 3 s): the ranks
    must meet in a barrier first."""
    import torch.distributed as dist
    calls = []
    monkeypatch.setattr(dist, 'is_initialized', lambda: True)
    monkeypatch.setattr(dist, 'barrier', lambda: calls.append('barrier'))
    monkeypatch.setattr(dist, 'destroy_process_group',
                        lambda: calls.append('destroy'))
    distributed.close_dist()
    assert calls == ['barrier', 'destroy']

    calls.clear()
    monkeypatch.setattr(dist, 'is_initialized', lambda: False)
    distributed.close_dist()  # no group: nothing to do
    assert calls == []


def test_close_dist_on_a_real_group():
    import torch.distributed as dist
    dist.init_process_group(
        'gloo', store=dist.HashStore(), rank=0, world_size=1)
    distributed.close_dist()
    assert not dist.is_initialized()


# ------------------------------------------- refusals and one-line causes
def test_test_py_refuses_a_checkpoint_that_does_not_fill_the_model(
        toy_project, tmp_path):
    """A checkpoint that leaves tensors of the model missing (here the
    bias) stops tools/test.py with one line and exit 1, without a
    traceback; --allow-partial reports metrics anyway (the gap logged at
    WARNING); MMITPN_DEBUG=1 shows the traceback."""
    config, env = toy_project
    ckpt = tmp_path / 'partial.pth'
    torch.save(dict(state_dict={'linear.weight': torch.zeros(2, 4),
                                'head.fc.weight': torch.zeros(3, 2)}), ckpt)

    def test(*extra, **more_env):
        return subprocess.run(
            [sys.executable, osp.join(TOOLS, 'test.py'), str(config),
             str(ckpt), '--work-dir', str(tmp_path / 'w'), *extra],
            env=dict(env, **more_env), capture_output=True, text=True,
            timeout=300, cwd=tmp_path)

    res = test()
    assert res.returncode == 1, res.stdout[-2000:] + res.stderr[-2000:]
    assert 'Traceback' not in res.stderr, res.stderr[-3000:]
    errors = [line for line in res.stderr.splitlines()
              if line.startswith('ERROR:')]
    assert len(errors) == 1, res.stderr[-3000:]
    assert re.search(r"ERROR: ValueError: '.*partial\.pth' fills 1 of 2 "
                     r'tensors of ToyToolsModel: 1 missing \(linear \(1\)\),'
                     r' 1 unexpected \(head \(1\)\); it is not a checkpoint '
                     r'of this config .* or pass --allow-partial', errors[0])
    assert "'count': 8" not in res.stdout  # no metrics reported

    res = test('--allow-partial')
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    out = res.stdout + res.stderr
    assert re.search(r'WARNING - --allow-partial: .* 1 missing', out)
    assert 'missing     linear.bias' in out
    assert 'count: 8' in out  # the metric

    res = test(MMITPN_DEBUG='1')
    assert res.returncode == 1
    assert 'Traceback' in res.stderr and 'fills 1 of 2' in res.stderr


def test_amp_on_cpu_trains_mask_rcnn(demo_data, tmp_path):
    """--amp on CPU: bfloat16 autocast with MMCV's NMS / RoIAlign in
    float32 (the RPN's NMS failed on bfloat16 boxes before)."""
    if torch.cuda.is_available():
        pytest.skip('CPU autocast path')
    from conftest import config_path
    env = _clean_env(PYTHONPATH=REPO, OMP_NUM_THREADS=1)
    res = subprocess.run(
        [sys.executable, osp.join(TOOLS, 'train.py'),
         str(config_path('itpn-tiny_mask-rcnn_1xb4-6e_demo.py')), '--amp',
         '--work-dir', str(tmp_path / 'w'), '--cfg-options',
         'train_dataloader.batch_size=1', 'train_dataloader.dataset.indices=2',
         'train_cfg.max_epochs=1', 'train_cfg.val_begin=100',
         'model.backbone.init_cfg=None', 'model.neck.init_cfg=None',
         'default_hooks.logger.interval=1'],
        env=env, capture_output=True, text=True, timeout=600, cwd=REPO)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-3000:]
    assert 'CPUAmpOptimWrapper' in out
    losses = re.findall(r'Epoch\(train\) \[1\]\[(\d)/2\].* loss: ([\d.]+)',
                        out)
    assert [it for it, _ in losses] == ['1', '2'], out[-3000:]
    assert all(0 < float(v) < 100 for _, v in losses)


def test_tta_refuses_mask_heads():
    """mmdet's DetTTAModel refuses instance masks: --tta names the mask
    head instead of failing inside mmdet."""
    from conftest import config_path
    cfg = Config.fromfile(
        str(config_path('itpn-tiny_mask-rcnn_1xb4-6e_demo.py')))
    with pytest.raises(ValueError) as err:
        setup_tta(cfg, 'mmdet')
    msg = str(err.value)
    assert '\n' not in msg
    assert re.search(r"--tta: mmdet's DetTTAModel merges boxes only .* "
                     r'mask head \(model\.roi_head\.mask_head\); test '
                     r'without --tta', msg), msg
    # a box-only detector gets the flip TTA
    cfg.model.roi_head.mask_head = None
    with pytest.warns(UserWarning):
        setup_tta(cfg, 'mmdet')
    assert cfg.model.type == 'DetTTAModel'


def test_train_py_one_line_cause_for_bad_data(toy_project, tmp_path):
    """mmitpn's own errors print one line (no traceback) in the tools."""
    config, env = toy_project
    cfg = tmp_path / 'bad_data.py'
    cfg.write_text(TOY_CONFIG + textwrap.dedent('''
        train_dataloader['dataset'] = dict(
            type='CocoDataset', data_root='nowhere/',
            ann_file='annotations/train.json', pipeline=[])
        '''))
    res = subprocess.run(
        [sys.executable, osp.join(TOOLS, 'train.py'), str(cfg),
         '--work-dir', str(tmp_path / 'w')],
        env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert res.returncode == 1
    assert 'Traceback' not in res.stderr
    assert res.stderr.strip().splitlines()[-1] == (
        "ERROR: FileNotFoundError: COCO annotation file "
        "'nowhere/annotations/train.json' does not exist; fix data_root / "
        "ann_file. (set MMITPN_DEBUG=1 for the traceback)")


def test_train_py_checks_what_a_user_changes_first(tmp_path, demo_data):
    """A one-epoch demo pre-training ends in one line naming the value and
    the fix (MMEngine's scheduler would say 'end should be larger than
    begin')."""
    res = subprocess.run(
        [sys.executable, osp.join(TOOLS, 'train.py'),
         osp.join(REPO, 'configs', 'itpn',
                  'itpn-tiny_pixel-mfm_1xb32-20e_demo.py'),
         '--work-dir', str(tmp_path), '--cfg-options',
         'train_cfg.max_epochs=1'],
        capture_output=True, text=True, timeout=300, cwd=REPO,
        env=dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1'))
    assert res.returncode == 1, res.stderr[-2000:]
    errors = [ln for ln in res.stderr.splitlines()
              if ln.startswith('ERROR:')]
    assert len(errors) == 1 and 'train_cfg.max_epochs=1' in errors[0] \
        and 'set train_cfg.max_epochs to at least 2' in errors[0], errors
