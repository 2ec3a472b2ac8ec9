"""MMCV ops under CPU autocast: run them in float32."""
import functools
import sys

import torch

_LOW = (torch.bfloat16, torch.float16)


def _float32_nms(nms):

    @functools.wraps(nms)
    def wrapper(boxes, scores, *args, **kwargs):
        if boxes.dtype in _LOW and not boxes.is_cuda:
            dets, inds = nms(boxes.float(), scores.float(), *args, **kwargs)
            return dets.to(boxes.dtype), inds
        return nms(boxes, scores, *args, **kwargs)

    wrapper.__mmitpn_float32__ = True
    return wrapper


def _float32_forward(forward):

    @functools.wraps(forward)
    def wrapper(self, input, rois):
        if input.dtype in _LOW and not input.is_cuda:
            return forward(self, input.float(), rois.float()).to(input.dtype)
        return forward(self, input, rois)

    wrapper.__mmitpn_float32__ = True
    return wrapper


def run_mmcv_ops_in_float32() -> bool:
    """Let MMCV's NMS and RoI ops take bfloat16 / float16 CPU tensors.

    Their CPU kernels take float32 only, so under CPU autocast (``--amp``
    on a machine without CUDA) every Mask R-CNN / Cascade step failed in
    the RPN's NMS (``expected scalar type Float but found BFloat16``).
    After this call ``nms`` / ``soft_nms`` (also through ``batched_nms``)
    and ``RoIAlign`` / ``RoIPool`` cast low-precision CPU inputs to
    float32, run, and cast their outputs back. CUDA tensors and float32
    inputs take the original path unchanged. Called by
    :class:`~mmitpn.engine.optimizers.CPUAmpOptimWrapper`; calling it twice
    changes nothing.

    Returns:
        bool: Whether MMCV's ops were found (mmcv built with ops).
    """
    try:
        import mmcv.ops
    except ImportError:
        return False
    nms_mod = sys.modules.get('mmcv.ops.nms')
    if nms_mod is not None:
        for name in ('nms', 'soft_nms'):
            fn = getattr(nms_mod, name, None)
            if fn is not None and not getattr(fn, '__mmitpn_float32__',
                                              False):
                wrapped = _float32_nms(fn)
                setattr(nms_mod, name, wrapped)  # batched_nms looks here
                if getattr(mmcv.ops, name, None) is fn:
                    setattr(mmcv.ops, name, wrapped)
    for mod_name, cls_name in (('mmcv.ops.roi_align', 'RoIAlign'),
                               ('mmcv.ops.roi_pool', 'RoIPool')):
        cls = getattr(sys.modules.get(mod_name), cls_name, None)
        if cls is not None and not getattr(cls.forward,
                                           '__mmitpn_float32__', False):
            cls.forward = _float32_forward(cls.forward)
    return nms_mod is not None
