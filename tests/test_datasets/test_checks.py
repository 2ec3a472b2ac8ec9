"""Data pre-checks that name the real cause of an empty dataset."""
import json
import logging
import re

import pytest
from mmengine.config import Config
from mmengine.logging import MMLogger

from mmitpn.datasets import (check_coco_ann_file, check_dataset_files,
                             check_seg_folders)


def coco(tmp_path, names=('circle', 'square'), sizes=((64, 64), ),
         with_anns=True):
    images = [dict(id=i + 1, file_name=f'{i}.jpg', width=w, height=h)
              for i, (w, h) in enumerate(sizes)]
    anns = [dict(id=1, image_id=1, category_id=1, bbox=[0, 0, 8, 8],
                 area=64, iscrowd=0)] if with_anns else []
    cats = [dict(id=i + 1, name=n) for i, n in enumerate(names)]
    path = tmp_path / 'ann.json'
    path.write_text(json.dumps(dict(images=images, annotations=anns,
                                    categories=cats)))
    return str(path)


def one_line(err):
    msg = str(err.value)
    assert '\n' not in msg
    return msg


def test_classes_that_differ_in_case(tmp_path):
    path = coco(tmp_path, names=('Circle', 'Square'))
    with pytest.raises(ValueError) as err:
        check_coco_ann_file(path, classes=('circle', 'square'))
    msg = one_line(err)
    assert "differ in case ('circle' vs 'Circle', 'square' vs 'Square'" \
        in msg
    assert "metainfo=dict(classes=...) to the file's names: " \
        "('Circle', 'Square')" in msg


def test_classes_missing_from_the_file(tmp_path):
    path = coco(tmp_path, names=('circle', 'square'))
    with pytest.raises(ValueError) as err:
        check_coco_ann_file(path, classes=('circle', 'triangle'))
    msg = one_line(err)
    assert re.search(r"1 of 2 metainfo\.classes are not categories of "
                     r".*\('triangle'; they would get no boxes\)", msg), msg
    with pytest.raises(ValueError, match='the dataset would be empty'):
        check_coco_ann_file(path, classes=('person', 'car'))
    check_coco_ann_file(path, classes=('square', ))  # a subset is fine


def test_all_images_below_min_size(tmp_path):
    path = coco(tmp_path, sizes=((20, 64), (31, 31)))
    with pytest.raises(ValueError) as err:
        check_coco_ann_file(path, min_size=32)
    msg = one_line(err)
    assert re.search(r'All 2 images of .* below filter_cfg\.min_size=32 '
                     r'.*lower min_size', msg), msg


def test_some_images_below_min_size_warn(tmp_path):
    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record)

    logger = MMLogger.get_current_instance()
    handler = Keep(level=logging.WARNING)
    logger.addHandler(handler)
    try:
        check_coco_ann_file(coco(tmp_path, sizes=((64, 64), (20, 64))),
                            min_size=32)
    finally:
        logger.removeHandler(handler)
    assert len(records) == 1
    assert re.search(r"1 of 2 images .* dropped \(e\.g\. '1\.jpg'\)",
                     records[0].getMessage())


def ade(tmp_path, imgs=('a', 'b'), anns=('a', 'b')):
    (tmp_path / 'img').mkdir()
    (tmp_path / 'ann').mkdir()
    for n in imgs:
        (tmp_path / 'img' / f'{n}.jpg').write_bytes(b'x')
    for n in anns:
        (tmp_path / 'ann' / f'{n}.png').write_bytes(b'x')
    return str(tmp_path)


def test_seg_folders_ok(tmp_path):
    check_seg_folders(ade(tmp_path), 'img', 'ann')


def test_empty_image_folder(tmp_path):
    with pytest.raises(ValueError) as err:
        check_seg_folders(ade(tmp_path, imgs=()), 'img', 'ann')
    assert re.search(r"img' holds no '\.jpg' file \(found: nothing\); put "
                     r'the images there or set img_suffix', one_line(err))


def test_empty_annotation_folder(tmp_path):
    with pytest.raises(ValueError) as err:
        check_seg_folders(ade(tmp_path, anns=()), 'img', 'ann')
    assert "ann' holds no '.png' file" in one_line(err)


def test_mismatched_names(tmp_path):
    with pytest.raises(ValueError) as err:
        check_seg_folders(ade(tmp_path, anns=('a', 'c')), 'img', 'ann')
    msg = one_line(err)
    assert re.search(r"1 of 2 images .* \(e\.g\. 'b\.jpg' -> 'b\.png' "
                     r'missing\)', msg), msg


def test_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match='does not exist; fix '
                       'data_root / data_prefix'):
        check_seg_folders(str(tmp_path), 'img', 'ann')


def test_check_dataset_files_reads_the_config(tmp_path):
    """The classes come from the dataset's metainfo, min_size and
    filter_empty_gt from the training set's filter_cfg."""
    coco(tmp_path, names=('Circle', ))
    dataset = dict(type='CocoDataset', data_root=str(tmp_path),
                   ann_file='ann.json', metainfo=dict(classes=('circle', )),
                   filter_cfg=dict(filter_empty_gt=True, min_size=32))
    cfg = Config(dict(train_dataloader=dict(dataset=dataset)))
    with pytest.raises(ValueError, match='differ in case'):
        check_dataset_files(cfg)
    # a wrapped dataset is looked into
    cfg = Config(dict(val_dataloader=dict(dataset=dict(
        type='RepeatDataset', times=2, dataset=dataset))))
    with pytest.raises(ValueError, match='differ in case'):
        check_dataset_files(cfg)
    # no metainfo: mmdet's CocoDataset classes (the 80 COCO names); none
    # in the file stops, some (a subset on purpose?) is a WARNING
    dataset.pop('metainfo')
    cfg = Config(dict(train_dataloader=dict(dataset=dataset)))
    with pytest.raises(ValueError, match=r"80 of 80 metainfo\.classes are "
                       r"not categories .*\('person', 'bicycle'"):
        check_dataset_files(cfg)
    coco(tmp_path, names=('person', 'car'))
    check_dataset_files(cfg)  # 78 of 80 absent: logged, not raised
    # an ADE-style folder set
    seg = tmp_path / 'seg'
    seg.mkdir()
    ade(seg, imgs=())
    cfg = Config(dict(train_dataloader=dict(dataset=dict(
        type='ADE20KDataset', data_root=str(seg),
        data_prefix=dict(img_path='img', seg_map_path='ann')))))
    with pytest.raises(ValueError, match="holds no '.jpg' file"):
        check_dataset_files(cfg)


def test_demo_configs_pass(demo_data):
    """The shipped demo configs and data pass every check."""
    from conftest import config_path
    for name in ('itpn-tiny_mask-rcnn_1xb4-6e_demo.py',
                 'itpn-tiny_upernet_1xb4-2k_demo.py'):
        cfg = Config.fromfile(str(config_path(name)))
        for split in ('train', 'val', 'test'):
            loader = cfg.get(f'{split}_dataloader')
            if loader and loader.dataset.get('data_root'):
                root = loader.dataset.data_root
                loader.dataset.data_root = str(demo_data.parent.parent / root)
        check_dataset_files(cfg)


def test_seg_suffixes_default_to_the_dataset_class(tmp_path):
    """Cityscapes' images end in _leftImg8bit.png (its class default), not
    .jpg: no false alarm."""
    (tmp_path / 'img').mkdir()
    (tmp_path / 'ann').mkdir()
    (tmp_path / 'img' / 'a_leftImg8bit.png').write_bytes(b'x')
    (tmp_path / 'ann' / 'a_gtFine_labelTrainIds.png').write_bytes(b'x')
    cfg = Config(dict(train_dataloader=dict(dataset=dict(
        type='CityscapesDataset', data_root=str(tmp_path),
        data_prefix=dict(img_path='img', seg_map_path='ann')))))
    check_dataset_files(cfg)
