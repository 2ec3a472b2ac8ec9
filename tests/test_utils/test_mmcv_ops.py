"""MMCV's NMS and RoI ops take bfloat16 CPU tensors inside the CPU --amp
context, and are MMCV's own again after it."""
import torch
import mmcv.ops as ops
from mmcv.ops import RoIAlign, batched_nms

from mmitpn.utils.mmcv_ops import mmcv_ops_in_float32


def boxes_and_scores(n=40):
    g = torch.Generator().manual_seed(0)
    xy = torch.rand(n, 2, generator=g) * 50
    wh = torch.rand(n, 2, generator=g) * 20 + 5
    return torch.cat([xy, xy + wh], 1), torch.rand(n, generator=g)


def test_nms_in_float32_for_bfloat16_inputs():
    with mmcv_ops_in_float32() as found:
        assert found
        check_nms()


def check_nms():
    boxes, scores = boxes_and_scores()
    b16, s16 = boxes.bfloat16(), scores.bfloat16()
    dets, keep = ops.nms(b16, s16, 0.5)
    # the float32 result on the same (bfloat16-rounded) values
    dets32, keep32 = ops.nms(b16.float(), s16.float(), 0.5)
    assert dets.dtype == torch.bfloat16
    assert torch.equal(keep, keep32)
    assert torch.equal(dets, dets32.bfloat16())
    # batched_nms (the RPN's path) too
    idxs = torch.arange(len(boxes)) % 3
    dets, keep = batched_nms(b16, s16, idxs, dict(type='nms',
                                                   iou_threshold=0.5))
    _, keep32 = batched_nms(b16.float(), s16.float(), idxs,
                            dict(type='nms', iou_threshold=0.5))
    assert torch.equal(keep, keep32)


def test_roi_align_in_float32_for_bfloat16_inputs():
    with mmcv_ops_in_float32():
        check_roi_align()


def check_roi_align():
    feats = torch.randn(1, 4, 16, 16)
    rois = torch.tensor([[0., 1., 1., 9., 12.], [0., 4., 2., 15., 8.]])
    layer = RoIAlign((7, 7), spatial_scale=1., sampling_ratio=0)
    out = layer(feats.bfloat16(), rois.bfloat16())
    ref = layer(feats.bfloat16().float(), rois.bfloat16().float())
    assert out.dtype == torch.bfloat16
    assert torch.equal(out, ref.bfloat16())
    # float32 inputs take MMCV's path unchanged
    assert layer(feats, rois).dtype == torch.float32


def test_restored_after_the_context():
    import sys
    nms_mod = sys.modules['mmcv.ops.nms']
    before = (nms_mod.nms, nms_mod.soft_nms, ops.nms, ops.soft_nms,
              RoIAlign.__dict__['forward'])
    with mmcv_ops_in_float32():
        assert nms_mod.nms is not before[0]
        with mmcv_ops_in_float32():  # nested: still one float32 layer
            check_nms()
    after = (nms_mod.nms, nms_mod.soft_nms, ops.nms, ops.soft_nms,
             RoIAlign.__dict__['forward'])
    assert all(a is b for a, b in zip(before, after))
    # outside the context MMCV's CPU kernel refuses bfloat16 again
    boxes, scores = boxes_and_scores()
    try:
        ops.nms(boxes.bfloat16(), scores.bfloat16(), 0.5)
    except RuntimeError:
        pass
    else:
        raise AssertionError('nms took bfloat16 outside the context')
