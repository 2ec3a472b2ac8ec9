"""Shared test helpers (tests mirror the package; no __init__ files)."""
import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
TINY_ARCH = dict(embed_dims=64, depths=(1, 1, 2), num_heads=2)


def golden_files():
    """Reference files of the official implementation: the one kept in the
    repository plus any found in ``$MMITPN_GOLDEN_DIR`` or the workspace's
    ``shared/golden`` (more widths, depths, rpe, sizes)."""
    dirs = [REPO / 'tests' / 'data' / 'golden', REPO.parent / 'shared' /
            'golden']
    if os.environ.get('MMITPN_GOLDEN_DIR'):
        dirs.append(Path(os.environ['MMITPN_GOLDEN_DIR']))
    seen, files = set(), []
    for d in dirs:
        for f in sorted(d.glob('*.pt')) if d.is_dir() else []:
            key = (f.name, f.stat().st_size)
            if key not in seen:
                seen.add(key)
                files.append(f)
    return files


def config_path(name: str) -> Path:
    """A config of ``configs/`` by its file name, wherever it lives
    (today ``configs/itpn/``), so tests survive moves.

    Args:
        name (str): File name, e.g. ``'itpn-tiny_pixel-mfm_1xb32-20e_demo.py'``.
    """
    found = sorted((REPO / 'configs').rglob(name))
    if not found:
        raise FileNotFoundError(f'No config named {name!r} under configs/.')
    return found[0]


def cpu_unless_gpus(env: dict, num_gpus: int = 2) -> dict:
    """Run a multi-process test on the CPU (gloo) where it cannot have a GPU
    per process: with fewer than ``num_gpus`` GPUs CUDA is hidden from the
    processes (the tools then pick gloo), so the test runs instead of
    skipping on a one-GPU machine.

    Args:
        env (dict): The processes' environment; changed in place.
        num_gpus (int): GPUs the processes need to run on CUDA.
            Defaults to 2.

    Returns:
        dict: ``env``.
    """
    if torch.cuda.device_count() < num_gpus:
        env['CUDA_VISIBLE_DEVICES'] = ''
    return env


@pytest.fixture(scope='session')
def demo_data() -> Path:
    """The embedded demo data at ``data/demo`` (what ``make demo`` uses),
    generated when absent: deterministic, written atomically, and a no-op
    when an up-to-date copy is there (about 10 s otherwise)."""
    from mmitpn.datasets.demo_data import make_demo_data
    out = REPO / 'data' / 'demo'
    make_demo_data(str(out))
    return out


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield


@pytest.fixture(autouse=True)
def _isolated_default_scope():
    """Undo the default registry scope a test leaves behind (runners and
    inferencers of mmdet / mmseg set it globally), so that tests do not
    depend on their order."""
    from mmengine.registry import DefaultScope
    before = dict(DefaultScope._instance_dict)
    yield
    DefaultScope._instance_dict.clear()
    DefaultScope._instance_dict.update(before)


def tiny_itpn_cfg(mfm=True, img_size=64, teacher=None):
    """ITPNMIM config of a tiny model on ``img_size`` images."""
    cfg = dict(
        type='mmitpn.ITPNMIM',
        backbone=dict(
            type='mmitpn.HiViTBackbone', arch=TINY_ARCH, img_size=img_size),
        neck=dict(
            type='mmitpn.ITPNPyramid',
            in_channels=(16, 32, 64),
            out_channels=32,
            fpn_depth=1,
            num_outs=3),
        head=dict(
            type='mmitpn.ITPNPixelHead',
            fpn_channels=32,
            embed_dims=32,
            depth=1,
            num_heads=2,
            img_size=img_size),
        data_preprocessor=dict(
            type='mmpretrain.SelfSupDataPreprocessor',
            mean=[123.675, 116.28, 103.53],
            std=[58.395, 57.12, 57.375],
            to_rgb=True))
    if mfm:
        cfg['mfm_head'] = dict(
            type='mmitpn.ITPNFeatureHead',
            fpn_channels=32,
            target_channels=(16, 32, 64),
            embed_dims=32,
            depth=1,
            num_heads=2,
            img_size=img_size)
    if teacher is not None:
        cfg['teacher'] = teacher
    return cfg


class ToyImages(torch.utils.data.Dataset):
    """Deterministic uint8 images (a function of the index), packed the way
    mmpretrain's ``PackInputs`` does."""

    def __init__(self, n=8, size=64):
        self.n, self.size = n, size

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        from mmpretrain.structures import DataSample
        g = torch.Generator().manual_seed(i)
        img = torch.randint(0, 256, (3, self.size, self.size), generator=g,
                            dtype=torch.uint8)
        return dict(inputs=img, data_samples=DataSample())
