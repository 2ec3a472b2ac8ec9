"""Tests of :mod:`mmitpn.datasets.demo_data` (the synthetic demo data).

Most tests generate a reduced set (``scale``) into ``tmp_path``; each image
depends only on ``(seed, split, index)``, so a reduced set is a prefix of the
full one.
"""
import hashlib
import json
import os
import os.path as osp

import cv2
import numpy as np
import pytest

from mmitpn.datasets import demo_data as gen

SCALE = 0.1
CLASSES = ('circle', 'square', 'triangle')


def _digest(root):
    """``{relative path: sha1}`` of every file under ``root``."""
    out = {}
    for d, _, files in os.walk(root):
        for f in files:
            p = osp.join(d, f)
            with open(p, 'rb') as fh:
                out[osp.relpath(p, root)] = hashlib.sha1(
                    fh.read()).hexdigest()
    return out


def _data_files(root):
    """Digest without the manifest (which records the time taken)."""
    d = _digest(root)
    d.pop('manifest.json')
    return d


@pytest.fixture(scope='module')
def demo(tmp_path_factory):
    """A reduced demo set shared by the read-only tests."""
    out = tmp_path_factory.mktemp('demo') / 'demo'
    manifest = gen.make_demo_data(str(out), seed=0, scale=SCALE)
    return out, manifest


def test_counts_and_layout(demo):
    root, manifest = demo
    counts = gen._counts(SCALE)
    assert manifest['counts'] == counts
    assert not manifest['up_to_date']
    pre = list((root / 'pretrain' / 'train').rglob('*.png'))
    assert len(pre) == counts['pretrain/train']
    for split in ('train', 'val'):
        assert len(list((root / 'coco' / split).glob('*.jpg'))) == \
            counts[f'coco/{split}']
    for split in ('training', 'validation'):
        imgs = sorted((root / 'ade' / 'images' / split).glob('*.jpg'))
        anns = sorted((root / 'ade' / 'annotations' / split).glob('*.png'))
        assert len(imgs) == len(anns) == counts[f'ade/{split}']
        assert [p.stem for p in imgs] == [p.stem for p in anns]
    assert (root / 'ade' / 'classes.txt').read_text().split() == \
        list(CLASSES)
    assert not list(root.parent.glob('demo.tmp-*'))
    # the full set has the documented counts
    full = gen._counts(1.0)
    assert full == {
        'pretrain/train': 512, 'coco/train': 160, 'coco/val': 40,
        'ade/training': 120, 'ade/validation': 30}
    on_disk = json.loads((root / 'manifest.json').read_text())
    assert on_disk['seed'] == 0 and on_disk['counts'] == counts


def test_pretrain_images(demo):
    root, _ = demo
    files = sorted((root / 'pretrain' / 'train').rglob('*.png'))
    assert {p.parent.name for p in files} <= set(gen.TEXTURES)
    for p in files[:20]:
        img = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
        assert img.shape == (gen.PRETRAIN_SIZE, gen.PRETRAIN_SIZE, 3)
        assert img.dtype == np.uint8
        x = img.astype(np.float64).mean(-1)
        # structured, not white noise: neighbouring pixels correlate
        a, b = x[:, :-1].ravel(), x[:, 1:].ravel()
        assert np.corrcoef(a, b)[0, 1] > 0.6
        assert img.reshape(-1, 3).std(0).max() > 8


def test_deterministic(tmp_path):
    a = gen.make_demo_data(str(tmp_path / 'a'), seed=3, scale=0.05)
    b = gen.make_demo_data(str(tmp_path / 'b'), seed=3, scale=0.05)
    c = gen.make_demo_data(str(tmp_path / 'c'), seed=4, scale=0.05)
    da, db, dc = (_data_files(tmp_path / n) for n in 'abc')
    assert da == db
    assert a['coco_instances'] == b['coco_instances']
    assert c['counts'] == a['counts']
    # same files but for the pre-training texture folders, which the seed
    # draws; (almost) every file differs
    assert {k for k in da if 'pretrain' not in k} == \
        {k for k in dc if 'pretrain' not in k}
    assert len(set(da.values()) & set(dc.values())) <= 2
    # pixel arrays too (not only the encoded bytes)
    f = 'coco/train/00000.jpg'
    x = cv2.imread(str(tmp_path / 'a' / f))
    np.testing.assert_array_equal(x, cv2.imread(str(tmp_path / 'b' / f)))
    assert not np.array_equal(x, cv2.imread(str(tmp_path / 'c' / f)))


def test_prefix_of_larger_set(tmp_path):
    gen.make_demo_data(str(tmp_path / 's'), seed=0, scale=0.02)
    gen.make_demo_data(str(tmp_path / 'm'), seed=0, scale=0.05)
    small, medium = _data_files(tmp_path / 's'), _data_files(tmp_path / 'm')
    imgs = [k for k in small if k.endswith(('.jpg', '.png'))]
    assert imgs and all(small[k] == medium[k] for k in imgs)


def test_idempotent_and_force(tmp_path, capsys):
    out = tmp_path / 'demo'
    gen.make_demo_data(str(out), seed=0, scale=0.02)
    watched = [out / 'manifest.json', out / 'coco' / 'train' / '00000.jpg']
    mtimes = [p.stat().st_mtime_ns for p in watched]
    again = gen.make_demo_data(str(out), seed=0, scale=0.02, verbose=True)
    assert again['up_to_date']
    assert 'up to date' in capsys.readouterr().out
    assert [p.stat().st_mtime_ns for p in watched] == mtimes
    before = _data_files(out)
    # other settings or force regenerate (atomically, no leftovers)
    other = gen.make_demo_data(str(out), seed=1, scale=0.02)
    assert not other['up_to_date'] and other['seed'] == 1
    assert _data_files(out) != before
    forced = gen.make_demo_data(str(out), seed=1, scale=0.02, force=True)
    assert not forced['up_to_date']
    assert sorted(p.name for p in tmp_path.iterdir()) == ['demo']


def test_interrupted_run_leaves_nothing(tmp_path, monkeypatch):
    out = tmp_path / 'demo'

    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(gen, '_write_ade', boom)
    with pytest.raises(KeyboardInterrupt):
        gen.make_demo_data(str(out), seed=0, scale=0.02)
    assert list(tmp_path.iterdir()) == []
    monkeypatch.undo()
    # an interrupted regeneration keeps the previous complete set
    gen.make_demo_data(str(out), seed=0, scale=0.02)
    before = _digest(out)
    monkeypatch.setattr(gen, '_write_ade', boom)
    with pytest.raises(KeyboardInterrupt):
        gen.make_demo_data(str(out), seed=0, scale=0.02, force=True)
    assert _digest(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ['demo']


def test_coco_annotations(demo):
    from pycocotools.coco import COCO
    root, manifest = demo
    for split in ('train', 'val'):
        coco = COCO(str(root / 'coco' / 'annotations' /
                        f'instances_{split}.json'))
        assert [c['name'] for c in coco.loadCats(coco.getCatIds())] == \
            list(CLASSES)
        assert coco.getCatIds() == [1, 2, 3]
        assert len(coco.getImgIds()) == manifest['counts'][f'coco/{split}']
        anns = coco.loadAnns(coco.getAnnIds())
        assert len(anns) == manifest['coco_instances'][split]
        for img_id in coco.getImgIds():
            info = coco.loadImgs(img_id)[0]
            img = cv2.imread(str(root / 'coco' / split / info['file_name']))
            assert img.shape == (info['height'], info['width'], 3) == \
                (gen.COCO_SIZE, gen.COCO_SIZE, 3)
            n = len(coco.getAnnIds(imgIds=img_id))
            assert 1 <= n <= 4
            union = np.zeros(img.shape[:2], np.int32)
            for ann in coco.loadAnns(coco.getAnnIds(imgIds=img_id)):
                assert ann['iscrowd'] == 0
                assert ann['category_id'] in (1, 2, 3)
                mask = coco.annToMask(ann)
                area = int(mask.sum())
                assert abs(area - ann['area']) <= 0.1 * ann['area']
                x, y, w, h = ann['bbox']
                assert 15 <= max(w, h) <= 80
                ys, xs = np.nonzero(mask)
                assert xs.min() >= np.floor(x) and ys.min() >= np.floor(y)
                assert xs.max() < np.ceil(x + w) + 1
                assert ys.max() < np.ceil(y + h) + 1
                union += mask
            # visible masks: no two objects of an image overlap
            assert union.max() <= 1


def test_ade_labels(demo):
    root, _ = demo
    seen = set()
    for split in ('training', 'validation'):
        for p in sorted((root / 'ade' / 'images' / split).glob('*.jpg')):
            img = cv2.imread(str(p))
            label = cv2.imread(
                str(root / 'ade' / 'annotations' / split / (p.stem + '.png')),
                cv2.IMREAD_UNCHANGED)
            assert label.dtype == np.uint8 and label.ndim == 2
            assert img.shape[:2] == label.shape == (gen.ADE_SIZE, ) * 2
            values = set(np.unique(label).tolist())
            assert values <= {0, 1, 2, 3} and values - {0}
            seen |= values
    assert seen == {0, 1, 2, 3}


def test_mmdet_coco_dataset(demo):
    pytest.importorskip('mmcv')
    from mmdet.datasets import CocoDataset
    root, manifest = demo
    for split in ('train', 'val'):
        ds = CocoDataset(
            data_root=str(root / 'coco'),
            ann_file=f'annotations/instances_{split}.json',
            data_prefix=dict(img=f'{split}/'),
            metainfo=dict(classes=CLASSES),
            filter_cfg=None,
            pipeline=[],
            test_mode=split == 'val')
        assert len(ds) == manifest['counts'][f'coco/{split}']
        info = ds[0]
        assert osp.isfile(info['img_path'])
        assert info['instances']
        assert {i['bbox_label'] for i in info['instances']} <= {0, 1, 2}
        assert all(i['mask'] for i in info['instances'])


def test_mmseg_ade_dataset(demo):
    pytest.importorskip('mmcv')
    from mmseg.datasets import BaseSegDataset
    root, manifest = demo
    for split in ('training', 'validation'):
        ds = BaseSegDataset(
            data_root=str(root / 'ade'),
            data_prefix=dict(
                img_path=f'images/{split}',
                seg_map_path=f'annotations/{split}'),
            img_suffix='.jpg',
            seg_map_suffix='.png',
            reduce_zero_label=True,
            metainfo=dict(classes=CLASSES),
            pipeline=[])
        assert len(ds) == manifest['counts'][f'ade/{split}']
        info = ds[0]
        assert osp.isfile(info['img_path']) and osp.isfile(
            info['seg_map_path'])
        assert info['reduce_zero_label']


def test_mmpretrain_custom_dataset(demo):
    pytest.importorskip('mmcv')
    from mmpretrain.datasets import CustomDataset
    root, manifest = demo
    ds = CustomDataset(
        data_root=str(root / 'pretrain'),
        data_prefix='train',
        with_label=False,
        pipeline=[])
    assert len(ds) == manifest['counts']['pretrain/train']


def test_annotations_of_the_released_set(demo_data):
    """The full default set (seed 0) is the one the README's numbers were
    measured on: its annotation files are pinned byte for byte (digests
    of the files written by the generator before it moved into the
    package)."""
    ann = demo_data / 'coco' / 'annotations'
    digests = {split: hashlib.sha1((ann / f'instances_{split}.json')
                                   .read_bytes()).hexdigest()
               for split in ('train', 'val')}
    assert digests == {
        'train': 'f3dd06d39bb51e817fb7653cd272243255f82344',
        'val': '3162f17800ee2d43e356a534855ad6eaf6eaa12c'}
