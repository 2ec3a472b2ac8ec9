"""A wheel of the checkout serves its configs to another project.

The module fixture copies the checkout (tracked and untracked, not ignored
files) to a temporary folder, builds a wheel there with ``pip wheel
--no-deps --no-build-isolation`` and installs it with ``pip install
--no-deps --target`` into an empty folder. The tests then run Python from a
folder outside the repository with ``PYTHONPATH`` set to that folder only:
``import mmitpn`` finds the wheel's copy (asserted), not the checkout.

- the README's inherit example (the code block after
  ``<!-- inherit-example -->``) loads through ``read_base()`` and gives the
  repository's demo config with exactly the example's changes;
- the wheel ships every config, the tools and the model index byte for byte
  where mim and MMEngine look (``mmitpn/.mim/``), and a pure-Python entry
  per config (``mmitpn/configs/``) that loads to the same values as the
  repository's file, for a config of each host;
- the model index parses with ``modelindex`` (the parser mim uses) without
  an error and names every shipped config;
- the example trains for one iteration with the wheel's own
  ``tools/train.py`` (smoke);
- with openmim importable, ``mim search mmitpn`` lists the configs (openmim
  0.3.9 cannot join the pinned stack, see the README's "Inheriting a
  config from your own project").
"""
import json
import os
import os.path as osp
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from mmengine.config import Config

REPO = Path(__file__).resolve().parents[2]
MARK = '<!-- inherit-example -->'
DEMO = 'configs/itpn/itpn-tiny_mask-rcnn_1xb4-6e_demo.py'
# the README example's changes, written out
ROOT = '/data/shapes/coco/'
CKPT = '/ckpts/pretrain/epoch_200.pth'


def _checkout_files():
    """Files of the checkout, relative paths (git's view when available:
    tracked plus untracked-but-not-ignored)."""
    if (REPO / '.git').exists() and shutil.which('git'):
        out = subprocess.run(
            ['git', 'ls-files', '-co', '--exclude-standard', '-z'],
            cwd=REPO, capture_output=True, check=True).stdout.decode()
        return [f for f in out.split('\0') if f and (REPO / f).is_file()]
    skip = {'.venv', 'work_dirs', 'build', 'data', '.git', '__pycache__',
            '.pytest_cache'}
    files = []
    for folder, dirs, names in os.walk(REPO):
        dirs[:] = [d for d in dirs if d not in skip and
                   not d.endswith('.egg-info') and d not in ('.mim', )]
        rel = osp.relpath(folder, REPO)
        if rel.startswith(osp.join('mmitpn', 'configs')):
            continue
        files += [osp.normpath(osp.join(rel, n)) for n in names
                  if not n.endswith('.pyc')]
    return files


@pytest.fixture(scope='module')
def installed(tmp_path_factory):
    """``(target, wheel, src)``: the folder the wheel was installed into,
    the wheel file and the copy of the checkout it was built from."""
    root = tmp_path_factory.mktemp('wheel')
    src, dist, target = root / 'src', root / 'dist', root / 'target'
    for rel in _checkout_files():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / rel, src / rel)
    pip = [sys.executable, '-m', 'pip', '--disable-pip-version-check']
    res = subprocess.run(
        pip + ['wheel', '-q', '--no-deps', '--no-build-isolation', '-w',
               str(dist), str(src)],
        capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    wheel, = dist.glob('mmitpn-*.whl')
    res = subprocess.run(
        pip + ['install', '-q', '--no-deps', '--target', str(target),
               str(wheel)],
        capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    return target, wheel, src


def _run(code, target, cwd, extra_path=(), timeout=300):
    """Run ``python -c code`` in ``cwd`` with PYTHONPATH = the wheel's
    folder (and ``extra_path``) only."""
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join([str(target), *map(str, extra_path)])
    env.pop('MMITPN_PYTHON', None)
    env.setdefault('OMP_NUM_THREADS', '1')
    res = subprocess.run([sys.executable, '-W', 'ignore', '-c', code],
                         cwd=cwd, env=env, capture_output=True, text=True,
                         timeout=timeout)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return res.stdout


def _readme_example(src=REPO):
    text = (src / 'README.md').read_text()
    after = text.split(MARK, 1)[1]
    block = re.match(r'\s*```python\n(.*?)```', after, re.S)
    assert block, f'no python block right after {MARK}'
    return block.group(1)


def _plain(obj):
    """JSON-normalised copy (tuples become lists)."""
    return json.loads(json.dumps(obj, default=repr))


LOAD = """
import json, sys, mmitpn
from mmengine.config import Config
cfg = Config.fromfile(sys.argv[1] if len(sys.argv) > 1 else {path!r})
print(json.dumps(dict(mmitpn=mmitpn.__file__,
                      cfg={{k: v for k, v in cfg.to_dict().items()
                           if not callable(v)}}), default=repr))
"""


def _load_in_user_folder(path, target, cwd):
    out = _run(LOAD.format(path=str(path)), target, cwd)
    got = json.loads(out.strip().splitlines()[-1])
    assert Path(got['mmitpn']).resolve().is_relative_to(target.resolve()), \
        got['mmitpn']
    return got['cfg']


def test_readme_example_inherits_the_demo_config_from_the_wheel(
        installed, tmp_path):
    target, _, src = installed
    project = tmp_path / 'my_project' / 'configs'
    project.mkdir(parents=True)
    user_cfg = project / 'shapes_mask-rcnn.py'
    user_cfg.write_text(_readme_example(installed[2]))
    got = _load_in_user_folder(user_cfg, target, tmp_path)

    # the repository's config, with the example's changes applied here
    want = Config.fromfile(str(src / DEMO)).to_dict()
    want['data_root'] = ROOT
    for split in ('train', 'val', 'test'):
        want[f'{split}_dataloader']['dataset']['data_root'] = ROOT
    for split in ('val', 'test'):
        want[f'{split}_evaluator']['ann_file'] = \
            ROOT + 'annotations/instances_val.json'
    want['train_cfg']['max_epochs'] = 12
    want['param_scheduler'][1].update(end=12, milestones=[8, 11])
    want['model']['backbone']['init_cfg']['checkpoint'] = CKPT
    want['model']['neck']['init_cfg']['checkpoint'] = CKPT
    want = _plain(want)
    assert set(got) == set(want)
    for key in want:
        assert got[key] == want[key], key
    # the values the example did not touch came from the shipped file
    assert got['model']['backbone']['arch'] == dict(
        embed_dims=128, depths=[1, 1, 2], num_heads=4)
    assert got['train_cfg']['val_interval'] == 2


CONFIGS = [
    DEMO,  # mmdet
    'configs/itpn/itpn-tiny_upernet_1xb4-2k_demo.py',  # mmseg
    'configs/itpn/itpn-base-pixel_8xb128-coslr-100e_in1k.py',  # mmpretrain
    'configs/itpn/itpn-clip-b_hivit-base-p16_8xb256-amp-coslr-300e_in1k.py',
]


def _entry(rel):
    """The module of a config's pure-Python entry (as setup.py names it)."""
    parts = rel[len('configs/'):-len('.py')].split('/')
    return '.'.join(['mmitpn', 'configs'] +
                    [re.sub(r'[^0-9A-Za-z_]', '_', p) for p in parts])


@pytest.mark.parametrize('rel', CONFIGS, ids=lambda r: Path(r).stem)
def test_entry_loads_the_shipped_config(installed, tmp_path, rel):
    target, _, src = installed
    user_cfg = tmp_path / 'inherit.py'
    user_cfg.write_text('from mmengine.config import read_base\n'
                        'with read_base():\n'
                        f'    from {_entry(rel)} import *\n')
    got = _load_in_user_folder(user_cfg, target, tmp_path)
    want = _plain(Config.fromfile(str(src / rel)).to_dict())
    assert got == want


def test_wheel_ships_configs_tools_and_model_index(installed):
    _, wheel, src = installed  # src: the checkout as it was built
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        configs = sorted((src / 'configs').rglob('*'))
        assert configs
        for path in configs:
            if path.is_dir():
                continue
            rel = path.relative_to(src).as_posix()
            assert z.read(f'mmitpn/.mim/{rel}') == path.read_bytes(), rel
            if rel.endswith('.py'):
                entry = _entry(rel).replace('.', '/') + '.py'
                assert entry in names, entry
        for tool in ('train.py', 'test.py', 'dist_train.sh', 'dist_test.sh',
                     'slurm_train.sh', 'slurm_test.sh'):
            assert z.read(f'mmitpn/.mim/tools/{tool}') == \
                (src / 'tools' / tool).read_bytes(), tool
        assert z.read('mmitpn/.mim/model-index.yml') == \
            (src / 'model-index.yml').read_bytes()
        entries = [n for n in names if n.startswith('mmitpn/configs/')]
        n_configs = len([p for p in configs if p.suffix == '.py'])
        assert len(entries) == n_configs


def test_model_index_parses_as_mim_reads_it(installed):
    from modelindex.load_model_index import load
    target = installed[0]
    mim_dir = target / 'mmitpn' / '.mim'
    cwd = os.getcwd()
    try:  # modelindex resolves Import paths from the working directory
        os.chdir(mim_dir)
        index = load('model-index.yml')
        errors = [
            err for e in index.collect_check_errors() for err in e['errors']
        ]
        models = index.models
        collections = [m.full_model for m in models]
    finally:
        os.chdir(cwd)
    # README paths are relative to the package root, as mmpretrain's
    # metafiles give them and mim resolves Config; modelindex alone reads
    # them from the metafile's folder
    readme = 'Path to README file configs/itpn/README.md is not a valid file.'
    assert [e for e in errors if e != readme] == []
    assert {c.readme for c in collections} == {'configs/itpn/README.md'}
    assert (mim_dir / 'configs' / 'itpn' / 'README.md').is_file()
    names = [m.name for m in models]
    assert len(names) == len(set(names))
    src = installed[2]
    on_disk = {p.relative_to(src).as_posix()
               for p in (src / 'configs' / 'itpn').glob('*.py')}
    listed = {m.config for m in models}
    assert listed == on_disk
    for m in models:
        assert (mim_dir / m.config).is_file(), m.config
        assert m.in_collection == 'iTPN'


def test_smoke_example_trains_one_iteration_with_the_wheels_tool(
        installed, tmp_path, demo_data):
    """Smoke: the README example, trained for one iteration (4 images, from
    random initialisation) by the wheel's ``.mim/tools/train.py`` from a
    folder outside the repository. Does not check what it learns."""
    target = installed[0]
    user_cfg = tmp_path / 'shapes_mask-rcnn.py'
    user_cfg.write_text(_readme_example(installed[2]))
    root = f'{demo_data}/coco/'
    tool = target / 'mmitpn' / '.mim' / 'tools' / 'train.py'
    options = [
        f'{s}_dataloader.dataset.data_root={root}'
        for s in ('train', 'val', 'test')
    ] + [
        f'{s}_evaluator.ann_file={root}annotations/instances_val.json'
        for s in ('val', 'test')
    ] + [
        'train_dataloader.dataset.indices=4',
        'val_dataloader.dataset.indices=4',
        'train_dataloader.num_workers=0',
        'train_dataloader.persistent_workers=False',
        'val_dataloader.num_workers=0',
        'val_dataloader.persistent_workers=False',
        'train_cfg.max_epochs=1', 'train_cfg.val_interval=1',
        'model.backbone.init_cfg=None', 'model.neck.init_cfg=None'
    ]
    env = dict(os.environ, PYTHONPATH=str(target), OMP_NUM_THREADS='1')
    env.pop('MMITPN_PYTHON', None)
    res = subprocess.run(
        [sys.executable, '-W', 'ignore', str(tool), str(user_cfg), '--work-dir', str(tmp_path / 'work'),
         '--cfg-options', *options],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-4000:]
    assert (tmp_path / 'work' / 'epoch_1.pth').is_file(), out[-3000:]
    assert 'coco/bbox_mAP' in out, out[-3000:]


def test_mim_search_lists_the_configs(installed, tmp_path):
    """Runs where openmim is importable (it is not in requirements/tests.txt:
    openmim 0.3.9 pulls opendatalab / openxlab, which pin setuptools 60.2,
    packaging 24.2, filelock 3.14 and rich 13.4 below the stack's)."""
    pytest.importorskip('mim')
    import mim
    target = installed[0]
    out = _run('import sys; sys.argv = ["mim", "search", "mmitpn"]; '
               'from mim.cli import cli; cli()',
               target, tmp_path,
               extra_path=[Path(mim.__file__).parent.parent])
    for path in (installed[2] / 'configs' / 'itpn').glob('*.py'):
        assert f'config id: {path.stem}' in out, path.stem
