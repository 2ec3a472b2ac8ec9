"""The hosts' inferencers run mmitpn models from a config and a checkpoint.

Nothing is trained: the tiny demo models are saved with random weights and
the ``dataset_meta`` a runner would store. The images have photograph sizes
that are not multiples of 16 (HiViT's patch), so the data preprocessors
must pad them and the predictions must come back at the original size.
"""
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from conftest import config_path
from mmengine.config import Config
from mmengine.registry import DefaultScope

DET_DEMO = config_path('itpn-tiny_mask-rcnn_1xb4-6e_demo.py')
SEG_DEMO = config_path('itpn-tiny_upernet_1xb4-2k_demo.py')
CLASSES = ('circle', 'square', 'triangle')
PALETTE = [[220, 20, 60], [0, 128, 255], [0, 200, 80]]
SIZES = ((480, 640), (375, 500))


def smooth_image(h, w, seed=0):
    """A uint8 BGR image with smooth shading and a few soft blobs."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.empty((h, w, 3), np.float32)
    for c in range(3):
        a, b = rng.uniform(-0.2, 0.2, 2)
        img[..., c] = 110 + 60 * (a * yy / h + b * xx / w)
    for _ in range(4):
        cy, cx = rng.uniform(0.2, 0.8, 2) * (h, w)
        r = rng.uniform(0.05, 0.15) * min(h, w)
        blob = np.exp(-((yy - cy)**2 + (xx - cx)**2) / (2 * r * r))
        img += blob[..., None] * rng.uniform(-90, 90, 3)
    return np.clip(img, 0, 255).astype(np.uint8)


@pytest.fixture(scope='module')
def images():
    return [smooth_image(h, w, i) for i, (h, w) in enumerate(SIZES)]


def save_random_model(cfg_path, host, path, with_palette=False):
    """Build the config's model without pre-trained weights and save it
    as a runner would (``state_dict`` + ``meta.dataset_meta``)."""
    cfg = Config.fromfile(str(cfg_path))
    cfg.model.backbone.init_cfg = None
    cfg.model.neck.init_cfg = None
    __import__(f'{host}.utils', fromlist=['x']).register_all_modules(
        init_default_scope=False)
    registry = __import__(f'{host}.registry', fromlist=['MODELS']).MODELS
    with DefaultScope.overwrite_default_scope(host):
        model = registry.build(cfg.model)
    meta = dict(classes=CLASSES)
    if with_palette:
        meta['palette'] = PALETTE
    torch.save(
        dict(state_dict=model.state_dict(), meta=dict(dataset_meta=meta)),
        str(path))
    return cfg


def test_det_inferencer(images, tmp_path):
    from mmdet.apis import DetInferencer
    ckpt = tmp_path / 'mask_rcnn_tiny.pth'
    cfg = save_random_model(DET_DEMO, 'mmdet', ckpt)
    cfg.model.test_cfg.rcnn.score_thr = 0.  # random weights: keep all
    inferencer = DetInferencer(
        model=cfg, weights=str(ckpt), device='cpu', show_progress=False)
    assert inferencer.model.dataset_meta['classes'] == CLASSES
    out = inferencer(images, no_save_vis=True)
    preds = out['predictions']
    assert len(preds) == len(images)
    for pred, (h, w) in zip(preds, SIZES):
        n = len(pred['bboxes'])
        assert n > 0
        assert len(pred['labels']) == len(pred['scores']) == n
        assert len(pred['masks']) == n
        assert set(pred['labels']) <= {0, 1, 2}
        boxes = np.array(pred['bboxes'])
        assert boxes.min() >= 0
        assert boxes[:, 2].max() <= w + 1e-3 and boxes[:, 3].max() <= h + 1e-3
        assert list(pred['masks'][0]['size']) == [h, w]


def test_seg_inferencer(images, tmp_path):
    from mmseg.apis import MMSegInferencer
    ckpt = tmp_path / 'upernet_tiny.pth'
    cfg = save_random_model(SEG_DEMO, 'mmseg', ckpt, with_palette=True)
    inferencer = MMSegInferencer(model=cfg, weights=str(ckpt), device='cpu')
    assert tuple(inferencer.model.dataset_meta['classes']) == CLASSES
    out = inferencer(images)
    preds = out['predictions']
    assert len(preds) == len(images)
    for pred, (h, w) in zip(preds, SIZES):
        assert pred.shape == (h, w)
        assert pred.min() >= 0 and pred.max() < len(CLASSES)


def test_inferencers_need_no_mmitpn_import(tmp_path):
    """A fresh interpreter that never imports mmitpn runs both inferencers
    from the config files: the ``mmitpn.`` scoped types import the package
    through the registry locations."""
    det_ckpt, seg_ckpt = tmp_path / 'det.pth', tmp_path / 'seg.pth'
    save_random_model(DET_DEMO, 'mmdet', det_ckpt)
    save_random_model(SEG_DEMO, 'mmseg', seg_ckpt, with_palette=True)
    script = textwrap.dedent(f"""
        import sys
        import numpy as np
        from mmdet.apis import DetInferencer
        from mmseg.apis import MMSegInferencer
        assert 'mmitpn' not in sys.modules
        img = np.full((100, 140, 3), 127, np.uint8)
        det = DetInferencer(model={str(DET_DEMO)!r}, weights={str(det_ckpt)!r},
                            device='cpu', show_progress=False)
        assert type(det.model.backbone).__module__.startswith('mmitpn.')
        out = det(img, no_save_vis=True)
        assert 'bboxes' in out['predictions'][0]
        seg = MMSegInferencer(model={str(SEG_DEMO)!r},
                              weights={str(seg_ckpt)!r}, device='cpu')
        pred = seg(img)['predictions']
        assert pred.shape == (100, 140), pred.shape
        assert 'mmitpn' in sys.modules
        print('OK')
        """)
    res = subprocess.run([sys.executable, '-c', script], cwd=str(tmp_path),
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0 and 'OK' in res.stdout, res.stderr[-3000:]


class WritesAFile:
    """Unpickling it creates ``path``."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, 'w'))


def test_det_inferencer_loads_weights_only(tmp_path):
    """The inferencer's own load (outside any runner) refuses a pickle that
    would run code; a checkpoint with MMEngine's message hub loads inside
    ``mmitpn.utils.checkpoint_globals()``."""
    from mmdet.apis import DetInferencer
    from mmengine.logging import HistoryBuffer

    from mmitpn.utils import checkpoint_globals
    ckpt = tmp_path / 'good.pth'
    cfg = save_random_model(DET_DEMO, 'mmdet', ckpt)
    good = torch.load(ckpt, weights_only=True)
    good['message_hub'] = dict(
        log_scalars={'loss': HistoryBuffer([1.], [1])})
    torch.save(good, ckpt)
    marker = tmp_path / 'pwned'
    evil = tmp_path / 'evil.pth'
    torch.save(dict(good, meta=WritesAFile(marker)), evil)
    with pytest.raises(Exception, match='Weights only load failed'):
        DetInferencer(model=cfg, weights=str(evil), device='cpu',
                      show_progress=False)
    with checkpoint_globals(), pytest.raises(
            Exception, match='Weights only load failed'):
        DetInferencer(model=cfg, weights=str(evil), device='cpu',
                      show_progress=False)
    assert not marker.exists()
    with checkpoint_globals():
        inferencer = DetInferencer(model=cfg, weights=str(ckpt),
                                   device='cpu', show_progress=False)
    assert inferencer.model.dataset_meta['classes'] == CLASSES
