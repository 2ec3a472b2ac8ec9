"""``type='mmitpn.X'`` builds from every host registry and config."""
import pytest
import torch
from mmengine.config import Config

TINY = dict(embed_dims=64, depths=(1, 1, 2), num_heads=2)


@pytest.mark.parametrize('host', ['mmdet', 'mmseg', 'mmpretrain'])
def test_scoped_build_from_host_registries(host):
    from mmitpn.models import HiViTBackbone, ITPNPyramid
    registry = __import__(f'{host}.registry', fromlist=['MODELS']).MODELS
    backbone = registry.build(
        dict(type='mmitpn.HiViTBackbone', arch=TINY, img_size=64))
    neck = registry.build(
        dict(type='mmitpn.ITPNPyramid', in_channels=(16, 32, 64),
             out_channels=32))
    # mmitpn's own classes, built with the given arguments
    assert type(backbone) is HiViTBackbone and type(neck) is ITPNPyramid
    assert backbone.embed_dims == 64 and backbone.depths == (1, 1, 2)
    outs = neck(backbone(torch.randn(1, 3, 64, 64)))
    # strides 4, 8, 16, 32, 64 of a 64x64 image, 32 channels each
    assert [tuple(o.shape) for o in outs] == [(1, 32, 16, 16),
                                              (1, 32, 8, 8), (1, 32, 4, 4),
                                              (1, 32, 2, 2), (1, 32, 1, 1)]


def test_no_name_collides_with_mmpretrain_or_mmengine():
    from mmengine.registry import HOOKS as ENGINE_HOOKS
    from mmpretrain.registry import MODELS as PRETRAIN_MODELS

    import mmitpn.engine  # noqa: F401
    import mmitpn.models  # noqa: F401
    from mmitpn.registry import HOOKS, MODELS
    ours = set(MODELS.module_dict) | set(HOOKS.module_dict)
    assert not ours & set(PRETRAIN_MODELS.module_dict)
    assert not ours & set(ENGINE_HOOKS.module_dict)
    for forbidden in ('HiViT', 'iTPN', 'iTPNHiViT', 'iTPNPretrainDecoder',
                      'iTPNClipHead', 'EMAHook'):
        assert forbidden not in ours


def test_smoke_mask_rcnn_config_with_pyramid_as_neck(tmp_path):
    """Smoke: an mmdet config inheriting from mmdet's own Mask R-CNN with
    the backbone and pyramid swapped builds and predicts."""
    cfg_file = tmp_path / 'mask_rcnn_itpn.py'
    cfg_file.write_text(f"""
_base_ = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'
model = dict(
    data_preprocessor=dict(pad_size_divisor=32),
    backbone=dict(_delete_=True, type='mmitpn.HiViTBackbone',
                  arch={TINY!r}, img_size=64),
    neck=dict(_delete_=True, type='mmitpn.ITPNPyramid',
              in_channels=(16, 32, 64), out_channels=256, num_outs=5),
    rpn_head=dict(anchor_generator=dict(strides=[4, 8, 16, 32, 64])))
""")
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    register_all_modules()
    cfg = Config.fromfile(str(cfg_file))
    model = MODELS.build(cfg.model).eval()
    from mmdet.testing import demo_mm_inputs
    packed = demo_mm_inputs(1, [[3, 96, 128]], with_mask=True)
    data = model.data_preprocessor(packed, False)
    with torch.no_grad():
        results = model(**data, mode='predict')
    assert len(results) == 1 and 'bboxes' in results[0].pred_instances
