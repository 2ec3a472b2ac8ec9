import pytest
import torch

from mmitpn.models import HiViTBackbone, ITPNPyramid
from mmitpn.models.layers import tokens_to_dense

TINY = dict(embed_dims=64, depths=(1, 1, 2), num_heads=2)


def build_pair(**neck_kwargs):
    backbone = HiViTBackbone(arch=TINY, img_size=64).eval()
    cfg = dict(in_channels=(16, 32, 64), out_channels=32, fpn_depth=2)
    cfg.update(neck_kwargs)
    return backbone, ITPNPyramid(**cfg).eval()


@pytest.mark.parametrize('num_outs', [3, 4, 5])
def test_dense_outputs(num_outs):
    backbone, neck = build_pair(num_outs=num_outs)
    with torch.no_grad():
        outs = neck(backbone(torch.randn(2, 3, 64, 96)))
    shapes = [(2, 32, 16, 24), (2, 32, 8, 12), (2, 32, 4, 6), (2, 32, 2, 3),
              (2, 32, 1, 1)]
    assert [tuple(o.shape) for o in outs] == shapes[:num_outs]
    if num_outs > 3:
        torch.testing.assert_close(
            outs[3], torch.nn.functional.avg_pool2d(outs[2], 2, 2))


def test_token_and_dense_layouts_share_weights():
    backbone, neck = build_pair()
    img = torch.randn(1, 3, 64, 64)
    ids = torch.arange(16).unsqueeze(0)
    with torch.no_grad():
        dense = neck(backbone(img))
        tokens = neck(backbone(img, ids_keep=ids))
    assert len(tokens) == 3
    for t, d in zip(tokens, dense):
        torch.testing.assert_close(tokens_to_dense(t, (4, 4)), d,
                                   atol=1e-5, rtol=1e-5)


def test_concat_inputs_and_max_pool():
    backbone, neck = build_pair(concat_inputs=True, num_outs=4,
                                extra_pool='max')
    outs = neck(backbone(torch.randn(1, 3, 64, 64)))
    assert [o.shape[1] for o in outs] == list(neck.out_widths) == [
        48, 64, 96, 96
    ]


def test_same_width_has_no_align_16():
    neck = ITPNPyramid(in_channels=(16, 32, 64), out_channels=64)
    assert isinstance(neck.align_16, torch.nn.Identity)


def test_errors():
    with pytest.raises(ValueError, match='num_outs'):
        ITPNPyramid(num_outs=6)
    with pytest.raises(ValueError, match='extra_pool'):
        ITPNPyramid(extra_pool='sum')
    with pytest.raises(ValueError, match='fpn_depth'):
        ITPNPyramid(fpn_depth=0)
    backbone, neck = build_pair()
    feats = backbone(torch.randn(1, 3, 32, 32))
    with pytest.raises(ValueError, match='3 HiViT stage outputs'):
        neck(feats[1:])
    wrong = ITPNPyramid(in_channels=(32, 64, 128), out_channels=32)
    with pytest.raises(ValueError, match='in_channels'):
        wrong(feats)


def test_checkpoint_of_another_width_fails_with_a_table():
    small = ITPNPyramid(in_channels=(16, 32, 64), out_channels=32)
    big = ITPNPyramid(in_channels=(16, 32, 64), out_channels=48)
    with pytest.raises(ValueError, match='another architecture') as err:
        big.load_state_dict(small.state_dict())
    assert 'align_16.weight' in str(err.value)
    assert 'checkpoint (32, 64)' in str(err.value)


@pytest.mark.parametrize('concat_inputs', [False, True])
def test_dense_outputs_feed_mmcv_roi_align(concat_inputs):
    """mmcv's compiled RoIAlign reads raw memory: on a channels-last view it
    returns wrong features (the RoI heads of Mask R-CNN then learn nothing).
    Backbone and pyramid must hand over standard contiguous NCHW maps."""
    from mmcv.ops import roi_align
    backbone, neck = build_pair(num_outs=5, concat_inputs=concat_inputs)
    rois = torch.tensor([[0., 4., 6., 40., 30.], [1., 10., 2., 60., 62.]])
    with torch.no_grad():
        feats = backbone(torch.randn(2, 3, 64, 64))
        outs = neck(feats)
    for x in (*feats, *outs):
        assert x.is_contiguous()
        ref = roi_align(x.clone(memory_format=torch.contiguous_format), rois,
                        (7, 7), 0.25, 0, 'avg', True)
        torch.testing.assert_close(
            roi_align(x, rois, (7, 7), 0.25, 0, 'avg', True), ref)
