"""MMCV ops under CPU autocast: run them in float32, for a moment."""
import contextlib
import functools
import sys
from typing import Iterator

import torch

_LOW = (torch.bfloat16, torch.float16)


def _float32_nms(nms):

    @functools.wraps(nms)
    def wrapper(boxes, scores, *args, **kwargs):
        if boxes.dtype in _LOW and not boxes.is_cuda:
            dets, inds = nms(boxes.float(), scores.float(), *args, **kwargs)
            return dets.to(boxes.dtype), inds
        return nms(boxes, scores, *args, **kwargs)

    return wrapper


def _float32_forward(forward):

    @functools.wraps(forward)
    def wrapper(self, input, rois):
        if input.dtype in _LOW and not input.is_cuda:
            return forward(self, input.float(), rois.float()).to(input.dtype)
        return forward(self, input, rois)

    return wrapper


@contextlib.contextmanager
def mmcv_ops_in_float32() -> Iterator[bool]:
    """Let MMCV's NMS and RoI ops take bfloat16 / float16 CPU tensors inside
    the block, and restore them exactly when it ends.

    Their CPU kernels take float32 only, so under CPU autocast every Mask
    R-CNN / Cascade step failed in the RPN's NMS (``expected scalar type
    Float but found BFloat16``). Inside the block ``nms`` / ``soft_nms``
    (also through ``batched_nms``) and ``RoIAlign`` / ``RoIPool`` cast
    low-precision CPU inputs to float32, run, and cast their outputs back;
    CUDA tensors and float32 inputs take the original path. MMCV has no
    hook for this, so the functions are swapped for the block only and
    put back in ``finally`` (as mmpretrain's ``apis/utils.py`` does for
    its own temporary changes); :class:`~mmitpn.engine.optimizers.
    CPUAmpOptimWrapper` opens it around each autocast step.

    Yields:
        bool: Whether MMCV's ops were found (mmcv built with ops).
    """
    try:
        import mmcv.ops  # noqa: F401
    except ImportError:
        yield False
        return
    undo = []
    nms_mod = sys.modules.get('mmcv.ops.nms')
    ops_pkg = sys.modules.get('mmcv.ops')
    try:
        for name in ('nms', 'soft_nms'):
            fn = getattr(nms_mod, name, None)
            if fn is None:
                continue
            wrapped = _float32_nms(fn)
            for owner in (nms_mod, ops_pkg):  # batched_nms looks in nms_mod
                if getattr(owner, name, None) is fn:
                    undo.append((owner, name, fn))
                    setattr(owner, name, wrapped)
        for mod_name, cls_name in (('mmcv.ops.roi_align', 'RoIAlign'),
                                   ('mmcv.ops.roi_pool', 'RoIPool')):
            cls = getattr(sys.modules.get(mod_name), cls_name, None)
            if cls is not None:
                forward = cls.__dict__['forward']
                undo.append((cls, 'forward', forward))
                cls.forward = _float32_forward(forward)
        yield nms_mod is not None
    finally:
        for owner, name, original in reversed(undo):
            setattr(owner, name, original)
