#!/usr/bin/env python
"""Time mmitpn against mmpretrain 1.2.0's HiViT / iTPN in one process.

    python tools/analysis_tools/benchmark.py [--cases a b c] \
        [--dtype fp32|bf16] [--threads N] [--device cpu|cuda] [--batch N] \
        [--repeat N] [--warmup N] [--heavy-repeat N] [--json out.json] \
        [--quick] [--compile] [--teacher-dtype fp32|bf16] [--no-memory] \
        [--in-process] [--profile] [--markdown docs/benchmark.md] \
        [--markdown-tag TAG]

Both sides are built with the same architecture, mmpretrain's weights are
copied into mmitpn (:func:`map_mmpretrain_to_mmitpn`) and the outputs are
checked equal (max abs difference < 1e-4, losses to 1e-5 relative) before
anything is timed; for pre-training both get the same ``ids_keep`` /
``mask`` (mmpretrain's internal random masking is replaced by a function
returning them). Then every callable of a case is run ``--warmup`` times
and ``--repeat`` times, alternating A/B/... (order reversed every other
round) so that both sides see the same machine noise; the table gives
medians, the speed-up over the case's reference (``ref ms / ms``), the
same ratio taken within each round (median and range: on a shared
machine whose load drifts, the more trustworthy figure) and peak memory.

Cases (``--quick`` swaps in a tiny architecture and small images: a smoke
test, not a measurement):

- ``a``: HiViT-B backbone, 224x224, batch 8: training step (forward,
  backward, AdamW) and inference (stage-3 map).
- ``b``: iTPN-B pixel pre-training step (mask 0.75) of both; mmitpn's
  pixel + MFM step (EMA teacher on the unmasked image, teacher update
  included) against mmpretrain's pixel step; the teacher's forward alone,
  run as inside the step (same autocast, same ``teacher_dtype``). In lower
  precision (``--dtype bf16`` or ``--teacher-dtype bf16``) also the fp32
  teacher forward, and a note of how far the teacher's LayerNorm-ed
  targets are from the fp32 ones.
- ``c``: backbone + pyramid (the three pyramid levels as dense NCHW maps,
  what a detector consumes) at 1024x1024 (batch 1) and 800x1344
  (batch 2): inference; training step at 1024x1024 with and without
  gradient checkpointing (mmitpn only on CPU: mmpretrain's explicit
  attention would keep ~1 GiB of attention matrices per block for the
  backward, more than this kind of machine has; its step is included on
  CUDA).

Architecture notes (printed with the results): mmpretrain's ``arch='base'``
HiViT builds 2 x (2, 2) = (4, 4) MLP blocks in stages 1-2 (it doubles the
stem depths) and 24 attention blocks; the iTPN-B of the official code has
(3, 3, 24), which mmpretrain cannot express. mmpretrain's iTPN pixel
decoder has 6 blocks (official: 8) and its level-embedding LayerNorms use
eps 1e-5. mmitpn is configured to match all of this exactly for the
comparison. mmpretrain has no dense path returning the three stage maps
(``HiViT.forward`` with stage-1/2 ``out_indices`` feeds a NCHW map into
the next block), so its case-c reference is its own token path
(``iTPNHiViT.forward_pixel`` with every token kept) + the pyramid modules
of ``iTPNPretrainDecoder`` in token layout + the token -> NCHW rearrange
its neck uses for dense outputs.

Each group of a case (e.g. "a ... train") runs in a fresh interpreter
(``--in-process`` runs everything in one), in this order: build, check,
warm-up round(s), one memory round, timed rounds. Case c's calls take
minutes on a CPU, so its timed rounds are capped (``--heavy-repeat``) and
its memory round doubles as warm-up.

Peak memory: on CUDA ``torch.cuda.max_memory_allocated`` during one call
minus the memory allocated before it. On CPU torch keeps no allocator
statistics, so the tool measures the resident set: until the memory round
is over glibc hands every block >= 64 KiB to ``mmap`` and returns it on
free (``mallopt``), so that the resident set tracks live memory; for each
call it runs ``malloc_trim``, resets the kernel's high-water mark
(``/proc/self/clear_refs``) and reports ``VmHWM`` during the call minus
``VmRSS`` before it. The timed rounds run with glibc's usual steady state
(blocks up to 32 MiB reused from the heap). Either way weights, optimizer
state (created before the first call) and whatever else existed before the
call are excluded; activations, temporaries and gradients are counted.
Where ``/proc/self/clear_refs`` cannot be written the peak is n/a.

``--compile`` wraps mmitpn's backbone in ``torch.compile`` (default
``fullgraph=False``; the backbone compiles without graph breaks) for the
mmitpn entries; compilation happens during the warm-up.
"""
import argparse
import ctypes
import gc
import json
import os
import platform
import statistics
import sys
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Callable, Dict, List, Optional

import torch
import torch.nn.functional as F
from mmengine.logging import MessageHub, MMLogger

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

# architectures: mmpretrain-style stem depths (mmpretrain doubles them)
FULL = dict(
    embed_dims=512, depths=(2, 2, 24), num_heads=8, fpn_dim=256,
    fpn_depth=2, dec_dims=512, dec_depth=6, dec_heads=16, mfm_dims=256,
    mfm_depth=2, mfm_heads=8, img=224, batch=8,
    dense=((1024, 1024, 1), (800, 1344, 2)), dense_train=(1024, 1024, 1))
QUICK = dict(
    embed_dims=64, depths=(1, 1, 8), num_heads=2, fpn_dim=32, fpn_depth=1,
    dec_dims=32, dec_depth=1, dec_heads=2, mfm_dims=32, mfm_depth=1,
    mfm_heads=2, img=64, batch=2,
    dense=((128, 128, 1), (96, 160, 2)), dense_train=(128, 128, 1))

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3


# ---------------------------------------------------------------- memory
class PeakMemory:
    """Peak memory of one call, see the module docstring.

    Args:
        device (torch.device): Where the models run.
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.libc = None
        self.available = device.type == 'cuda'
        if device.type == 'cpu' and platform.system() == 'Linux':
            try:
                self.libc = ctypes.CDLL('libc.so.6')
                self._reset_hwm()
                self.available = True
            except OSError:
                self.available = False

    @staticmethod
    def _status(key: str) -> float:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1]) / 1024.
        raise KeyError(key)

    @staticmethod
    def _reset_hwm() -> None:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')

    def measure(self, fn: Callable) -> Optional[float]:
        """Run ``fn`` once; return its peak memory in MiB (None if the
        platform gives no way to measure it)."""
        if not self.available:
            fn()
            return None
        gc.collect()
        if self.device.type == 'cuda':
            torch.cuda.synchronize(self.device)
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(self.device)
            base = torch.cuda.memory_allocated(self.device)
            fn()
            torch.cuda.synchronize(self.device)
            return (torch.cuda.max_memory_allocated(self.device) -
                    base) / 2**20
        self.precise()
        try:
            self.libc.malloc_trim(0)
            self._reset_hwm()
            base = self._status('VmRSS')
            fn()
            return self._status('VmHWM') - base
        finally:
            self.steady()

    def precise(self) -> None:
        """glibc hands every block >= 64 KiB to mmap and back to the OS on
        free, so the resident set tracks live memory (CPU only)."""
        if self.libc is not None:
            self.libc.mallopt(M_MMAP_THRESHOLD, 1 << 16)
            self.libc.mallopt(M_TRIM_THRESHOLD, 1 << 16)

    def steady(self) -> None:
        """glibc's steady state for timings: blocks up to 32 MiB come from
        (and return to) the heap without page faults (CPU only)."""
        if self.libc is not None:
            self.libc.mallopt(M_MMAP_THRESHOLD, 32 << 20)
            self.libc.mallopt(M_TRIM_THRESHOLD, 64 << 20)


# ---------------------------------------------------------------- weights
def hivit_block_names(depths) -> List[str]:
    """mmitpn names of mmpretrain's ``blocks.{i}`` for its stem depths
    ``depths`` (mmpretrain builds ``2 * d`` MLP blocks in stages 1-2)."""
    names = []
    for s, d in enumerate(depths):
        n = d if s == len(depths) - 1 else 2 * d
        names += [f'stages.{s}.{j}' for j in range(n)]
        if s < len(depths) - 1:
            names.append(f'merges.{s}')
    return names


def map_mmpretrain_to_mmitpn(state_dict: Dict[str, torch.Tensor],
                             depths) -> Dict[str, torch.Tensor]:
    """Rename an mmpretrain HiViT, iTPNHiViT or iTPN (pixel) state dict to
    mmitpn's names.

    Backbone keys (bare or under ``backbone.``) map to
    :class:`HiViTBackbone`; ``neck.*`` of ``iTPNPretrainDecoder`` maps to
    :class:`ITPNPyramid` (``neck.*``) and the pixel decoder
    (``head.decoder.*``). mmpretrain orders the pyramid output blocks and
    the decoder level embeddings coarsest first, mmitpn finest first.

    Args:
        state_dict (dict): mmpretrain state dict.
        depths (Sequence[int]): mmpretrain's ``arch['depths']``.

    Returns:
        dict: mmitpn state dict (buffers mmitpn recomputes are dropped).
    """
    blocks = hivit_block_names(depths)
    dec_sub = {'ln1': 'norm1', 'ln2': 'norm2', 'attn.qkv': 'attn.qkv',
               'attn.proj': 'attn.proj', 'ffn.layers.0.0': 'mlp.fc1',
               'ffn.layers.1': 'mlp.fc2'}
    neck_names = {'align_dim_16tofpn': 'neck.align_16',
                  'align_dim_16to8': 'neck.align_8',
                  'align_dim_8to4': 'neck.align_4',
                  'split_16to8': 'neck.split_16to8',
                  'split_8to4': 'neck.split_8to4',
                  'block_16to8': 'neck.blocks_8',
                  'block_8to4': 'neck.blocks_4',
                  'mask_token': 'head.decoder.mask_token',
                  'decoder_pos_embed': 'head.decoder.pos_embed',
                  'ln1': 'head.decoder.norm',
                  'decoder_pred': 'head.decoder.pred'}
    out = {}
    for key, val in state_dict.items():
        if key.endswith('relative_position_index'):
            continue
        prefix, name = '', key
        if key.startswith('backbone.'):
            prefix, name = 'backbone.', key[len('backbone.'):]
        if key.startswith('neck.'):
            first, _, rest = key[len('neck.'):].partition('.')
            if first == 'fpn_modules':
                i, _, rest = rest.partition('.')
                new = f'neck.out_blocks.{2 - int(i)}.{rest}'
            elif first == 'decoder_embed':
                i, _, rest = rest.partition('.')
                sub = {'0': 'norm', '1': 'proj'}[rest.split('.')[0]]
                new = (f'head.decoder.level_embeds.{2 - int(i)}.{sub}.'
                       + rest.split('.', 1)[1])
            elif first == 'decoder_blocks':
                i, _, rest = rest.partition('.')
                head, param = rest.rsplit('.', 1)
                new = f'head.decoder.blocks.{i}.{dec_sub[head]}.{param}'
            else:
                new = neck_names[first] + ('.' + rest if rest else '')
            out[new] = val
            continue
        if name.startswith('blocks.'):
            i, _, rest = name[len('blocks.'):].partition('.')
            name = f'{blocks[int(i)]}.{rest}'
        out[prefix + name] = val
    return out


def copy_weights(ref: torch.nn.Module, ours: torch.nn.Module, depths,
                 prefix: str = '') -> None:
    """Load ``ref``'s weights into ``ours`` (strict: every tensor of
    ``ours`` must come from ``ref``); ``prefix`` selects a sub-tree of the
    mapped names (e.g. ``'backbone.'``)."""
    mapped = map_mmpretrain_to_mmitpn(ref.state_dict(), depths)
    if prefix:
        mapped = {k[len(prefix):]: v for k, v in mapped.items()
                  if k.startswith(prefix)}
    ours.load_state_dict(mapped, strict=True)


# ---------------------------------------------------------------- models
def ref_arch(a: dict) -> dict:
    """mmpretrain ``arch`` dict of a preset."""
    return dict(embed_dims=a['embed_dims'], depths=list(a['depths']),
                num_heads=a['num_heads'])


def ours_arch(a: dict) -> dict:
    """mmitpn ``arch`` dict of a preset (stem depths doubled, as mmpretrain
    builds them)."""
    d1, d2, d3 = a['depths']
    return dict(embed_dims=a['embed_dims'], depths=(2 * d1, 2 * d2, d3),
                num_heads=a['num_heads'])


def build_ref_hivit(a: dict) -> torch.nn.Module:
    """mmpretrain ``HiViT`` (the dense classification backbone), without
    absolute position embedding: at its pre-training size it adds the table
    as is while mmitpn (like the official code and mmpretrain's own iTPN
    path) resamples it, which would make the outputs differ for a cost
    that is negligible either way."""
    from mmpretrain.models.backbones import HiViT
    return HiViT(arch=ref_arch(a), img_size=a['img'], ape=False,
                 norm_cfg=dict(type='LN', eps=1e-6), out_indices=[-1])


def build_ref_itpn(a: dict) -> torch.nn.Module:
    """mmpretrain ``iTPN`` pixel model (``iTPNHiViT`` +
    ``iTPNPretrainDecoder`` + ``MAEPretrainHead``), its config's values."""
    from mmpretrain.registry import MODELS as MMPRE
    grid = a['img'] // 16
    model = MMPRE.build(dict(
        type='iTPN',
        backbone=dict(type='iTPNHiViT', arch=ref_arch(a),
                      img_size=a['img'], reconstruction_type='pixel',
                      mask_ratio=0.75),
        neck=dict(type='iTPNPretrainDecoder', num_patches=grid * grid,
                  patch_size=16, in_chans=3, embed_dim=a['embed_dims'],
                  decoder_embed_dim=a['dec_dims'],
                  decoder_depth=a['dec_depth'],
                  decoder_num_heads=a['dec_heads'], mlp_ratio=4.,
                  reconstruction_type='pixel', fpn_dim=a['fpn_dim'],
                  fpn_depth=a['fpn_depth'], num_outs=3),
        head=dict(type='MAEPretrainHead', norm_pix=True, patch_size=16,
                  loss=dict(type='PixelReconstructionLoss',
                            criterion='L2'))))
    model.init_weights()
    return model


def build_ours_backbone(a: dict, **kwargs) -> torch.nn.Module:
    """mmitpn ``HiViTBackbone`` matching the preset."""
    from mmitpn.models import HiViTBackbone
    return HiViTBackbone(arch=ours_arch(a), img_size=a['img'],
                         norm_eps=1e-6, **kwargs)


def build_ours_neck(a: dict, **kwargs) -> torch.nn.Module:
    """mmitpn ``ITPNPyramid`` matching the preset (3 outputs)."""
    from mmitpn.models import ITPNPyramid
    C = a['embed_dims']
    return ITPNPyramid(in_channels=(C // 4, C // 2, C),
                       out_channels=a['fpn_dim'], fpn_depth=a['fpn_depth'],
                       num_outs=3, **kwargs)


def build_ours_mim(a: dict, mfm: bool,
                   teacher_dtype: Optional[str] = None) -> torch.nn.Module:
    """mmitpn ``ITPNMIM`` matching :func:`build_ref_itpn`; with ``mfm`` the
    MFM head of the iTPN-B config (scaled for ``--quick``) and its EMA
    teacher (run in ``teacher_dtype``)."""
    from mmitpn.registry import MODELS
    C = a['embed_dims']
    cfg = dict(
        type='mmitpn.ITPNMIM',
        backbone=dict(type='mmitpn.HiViTBackbone', arch=ours_arch(a),
                      img_size=a['img'], norm_eps=1e-6),
        neck=dict(type='mmitpn.ITPNPyramid', in_channels=(C // 4, C // 2, C),
                  out_channels=a['fpn_dim'], fpn_depth=a['fpn_depth'],
                  num_outs=3),
        head=dict(type='mmitpn.ITPNPixelHead', fpn_channels=a['fpn_dim'],
                  embed_dims=a['dec_dims'], depth=a['dec_depth'],
                  num_heads=a['dec_heads'], img_size=a['img'],
                  norm_pix=True),
        mask_ratio=0.75, teacher_dtype=teacher_dtype)
    if mfm:
        cfg['mfm_head'] = dict(
            type='mmitpn.ITPNFeatureHead', fpn_channels=a['fpn_dim'],
            target_channels=(C // 4, C // 2, C), embed_dims=a['mfm_dims'],
            depth=a['mfm_depth'], num_heads=a['mfm_heads'],
            img_size=a['img'])
    model = MODELS.build(cfg)
    # mmpretrain's decoder level embeddings use nn.LayerNorm's default eps
    for emb in model.head.decoder.level_embeds:
        emb.norm.eps = 1e-5
    return model


# ---------------------------------------------------------------- helpers
def fixed_masks(batch: int, num_patches: int, ratio: float = 0.75,
                seed: int = 0):
    """MAE masks from a fixed seed: ids_keep, ids_restore, mask."""
    g = torch.Generator().manual_seed(seed)
    keep = int(num_patches * (1 - ratio))
    ids_shuffle = torch.rand(batch, num_patches, generator=g).argsort(1)
    ids_restore = ids_shuffle.argsort(1)
    mask = torch.ones(batch, num_patches)
    mask[:, :keep] = 0
    return ids_shuffle[:, :keep], ids_restore, torch.gather(
        mask, 1, ids_restore)


def set_ref_masks(ref_backbone, ids_keep, ids_restore, mask) -> None:
    """Make mmpretrain's ``iTPNHiViT`` use the given masks instead of
    drawing its own."""
    ref_backbone.masking_id = lambda *args, **kwargs: (ids_keep, ids_restore,
                                                       mask)


def ref_pyramid_dense(backbone, neck, img: torch.Tensor):
    """mmpretrain's own path to the three pyramid maps of a full image:
    ``iTPNHiViT.forward_pixel`` keeping every token, the pyramid part of
    ``iTPNPretrainDecoder.forward`` (token layout) and its token -> NCHW
    rearrange."""
    B, _, H, W = img.shape
    hp, wp = H // 16, W // 16
    n = hp * wp
    ids = torch.arange(n, device=img.device).expand(B, n)
    set_ref_masks(backbone, ids, ids, torch.zeros(B, n, device=img.device))
    feats, _, _ = backbone(img)
    x = feats[-1][..., None, None, :]
    outs = [x if neck.align_dim_16tofpn is None else
            neck.align_dim_16tofpn(x)]
    x = neck.block_16to8(neck.split_16to8(x) + neck.align_dim_16to8(feats[1]))
    outs.append(x)
    x = neck.block_8to4(neck.split_8to4(x) + neck.align_dim_8to4(feats[0]))
    outs.append(x)
    outs = [blk(o) for blk, o in zip(neck.fpn_modules, outs)]
    outs = [
        o.reshape(B, hp, wp, *o.shape[-3:]).permute(0, 5, 1, 3, 2, 4)
        .reshape(B, -1, hp * o.shape[-3], wp * o.shape[-2]).contiguous()
        for o in outs
    ]
    return outs[::-1]  # finest first


def max_diff(xs, ys) -> float:
    """Largest absolute difference over pairs of tensors."""
    return max(float((x.float() - y.float()).abs().max())
               for x, y in zip(xs, ys))


def train_step(model: torch.nn.Module, loss_fn: Callable,
               autocast) -> Callable:
    """A closure doing forward, backward and one AdamW step. The optimizer
    state is created here (one step on zero gradients), so that a measured
    call holds the step itself, not the state's first allocation."""
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4, betas=(0.9, 0.95),
                            weight_decay=0.05)
    for p in params:
        p.grad = torch.zeros_like(p)
    opt.step()
    opt.zero_grad(set_to_none=True)

    def step():
        with autocast():
            loss = loss_fn()
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    return step


def squares(outs) -> torch.Tensor:
    """A scalar that depends on every output element."""
    return sum(o.float().square().mean() for o in outs)


# ---------------------------------------------------------------- cases
class Entry:
    """One timed callable of a case.

    Args:
        case (str): Case name (entries of one case alternate).
        impl (str): Implementation label.
        fn (Callable): One call = one unit of work (a step, an inference).
        ref (str, optional): ``impl`` of the entry the speed-up and memory
            ratio refer to. None for a reference.
        max_repeat (int, optional): Cap on the timed rounds (calls that
            take minutes on a CPU). Heavy entries also skip the plain
            warm-up when memory is measured: the memory round, run first,
            warms them up.
    """

    def __init__(self, case: str, impl: str, fn: Callable,
                 ref: Optional[str] = None,
                 max_repeat: Optional[int] = None) -> None:
        self.case, self.impl, self.fn, self.ref = case, impl, fn, ref
        self.max_repeat = max_repeat
        self.times: List[float] = []
        self.peak_mb: Optional[float] = None
        self.gemm_share: Optional[float] = None


GEMM_OPS = ('aten::mm', 'aten::addmm', 'aten::bmm', 'aten::baddbmm')


def gemm_share(fn: Callable, dev: torch.device) -> float:
    """Fraction of one call's self time (CPU; device time on CUDA) spent
    in matrix products (:data:`GEMM_OPS`), from :mod:`torch.profiler`."""
    from torch.profiler import ProfilerActivity, profile
    acts = [ProfilerActivity.CPU]
    if dev.type == 'cuda':
        acts.append(ProfilerActivity.CUDA)
    with profile(activities=acts) as prof:
        fn()
        sync(dev)
    attr = 'self_device_time_total' if dev.type == 'cuda' else \
        'self_cpu_time_total'
    events = prof.key_averages()
    total = sum(getattr(e, attr) for e in events)
    gemm = sum(getattr(e, attr) for e in events if e.key in GEMM_OPS)
    return gemm / total if total else 0.


def case_a(a, dev, autocast, opts):
    """HiViT backbone at the pre-training size: training step and
    inference of mmpretrain's ``HiViT`` and mmitpn's ``HiViTBackbone``
    (stage-3 map). Returns ``(entries, notes)``."""
    notes = []
    B, S = a['batch'], a['img']
    torch.manual_seed(0)
    ref = build_ref_hivit(a).to(dev)
    ours = build_ours_backbone(a, out_indices=(2, ),
                               pos_embed_type=None).to(dev)
    copy_weights(ref, ours, a['depths'])
    img = torch.randn(B, 3, S, S, device=dev)
    with torch.no_grad():
        ref.eval()
        ours.eval()
        diff = max_diff(ref(img), ours(img))
    check(diff, 'a: HiViT stage-3 map', notes)
    ref.train()
    ours.train()
    run_ours = opts.compile_fn(ours)
    tag = f'HiViT-B {S}x{S} b{B}' if not opts.quick else f'tiny {S} b{B}'

    def infer(m):
        def fn():
            with torch.inference_mode(), autocast():
                m(img)
        return fn

    entries = [
        Entry(f'a {tag} train', 'mmpretrain',
              train_step(ref, lambda: squares(ref(img)), autocast)),
        Entry(f'a {tag} train', 'mmitpn',
              train_step(ours, lambda: squares(run_ours(img)), autocast),
              'mmpretrain'),
        Entry(f'a {tag} infer', 'mmpretrain', infer(ref)),
        Entry(f'a {tag} infer', 'mmitpn', infer(run_ours), 'mmpretrain'),
    ]
    return entries, notes


def teacher_fwd(model, img: torch.Tensor, autocast,
                fp32: bool = False) -> Callable:
    """The MFM teacher's forward on ``img`` as the pre-training step runs
    it (inside the step's autocast, in the model's ``teacher_dtype``), or
    with ``fp32`` in full precision whatever ``teacher_dtype`` and
    ``autocast`` are."""

    def fn():
        saved = model.teacher_dtype
        if fp32:
            model.teacher_dtype = None
        try:
            with nullcontext() if fp32 else autocast():
                return model.teacher_targets(img)
        finally:
            model.teacher_dtype = saved

    return fn


def case_b(a, dev, autocast, opts):
    """Pre-training steps: mmpretrain's iTPN pixel model, mmitpn's pixel
    model and mmitpn's pixel + MFM model, on the same images and masks.
    Returns ``(entries, notes)``."""
    notes = []
    B, S = a['batch'], a['img']
    n = (S // 16)**2
    torch.manual_seed(0)
    ref = build_ref_itpn(a).to(dev)
    pix = build_ours_mim(a, mfm=False).to(dev)
    mfm = build_ours_mim(a, mfm=True,
                         teacher_dtype=opts.teacher_dtype).to(dev)
    copy_weights(ref, pix, a['depths'])
    for part in ('backbone', 'neck', 'head'):
        copy_weights(ref, getattr(mfm, part), a['depths'], part + '.')
    # CosineEMA anneals over the run's length, read from the message hub
    MessageHub.get_current_instance().update_info('max_iters', 100000)
    mfm.teacher.update_parameters(mfm.backbone)  # EMA step 0: a copy
    img = torch.randn(B, 3, S, S, device=dev)
    ids_keep, ids_restore, mask = (t.to(dev) for t in fixed_masks(B, n))
    set_ref_masks(ref.backbone, ids_keep, ids_restore, mask)
    with torch.no_grad():
        latent, _, _ = ref.backbone(img)
        ref_pred = ref.neck(latent, ids_restore)
        ref_loss = ref.head.loss(ref_pred, img, mask)
        pyr = pix.neck(pix.backbone(img, ids_keep=ids_keep))
        pred = pix.head.predict(pyr, ids_restore)
        loss = pix.head.loss(pyr, ids_restore, img, mask)
        loss_mfm = mfm.forward_mim(img, ids_keep, ids_restore,
                                   mask)['loss_pixel']
    check(max_diff([ref_pred], [pred]), 'b: pixel predictions', notes)
    rel = max(abs(float(l_ - ref_loss)) / abs(float(ref_loss))
              for l_ in (loss, loss_mfm))
    check(rel, 'b: pixel loss (relative)', notes, tol=1e-5)
    if opts.compile:  # compiled forwards; names / state dicts unchanged
        for m in (pix.backbone, mfm.backbone, mfm.teacher.module):
            m.forward = opts.compile_fn(m.forward)

    def mim_loss(m):
        return lambda: sum(
            m.forward_mim(img, ids_keep, ids_restore, mask).values())

    mfm_step = train_step(mfm, mim_loss(mfm), autocast)

    def mfm_step_and_ema():
        mfm_step()
        mfm.teacher.update_parameters(mfm.backbone)

    low_precision = opts.teacher_dtype != 'fp32' or opts.low_precision
    if low_precision:
        # what the lower precision does to the MFM targets (after the
        # head's LayerNorm, what the loss compares against)
        with torch.no_grad():
            t_low = teacher_fwd(mfm, img, autocast)()
            t_fp32 = teacher_fwd(mfm, img, nullcontext, fp32=True)()
        diffs = [(F.layer_norm(lo.float(), lo.shape[-1:], eps=1e-6) -
                  F.layer_norm(hi, hi.shape[-1:], eps=1e-6))
                 for lo, hi in zip(t_low, t_fp32)]
        notes.append(
            'b: MFM targets (LayerNorm-ed) of the teacher as timed here '
            'against an fp32 teacher, strides 4 / 8 / 16: max abs diff ' +
            ' / '.join(f'{float(d.abs().max()):.3f}' for d in diffs) +
            ', RMS diff ' + ' / '.join(
                f'{float(d.square().mean().sqrt()):.4f}' for d in diffs) +
            ' (the targets have unit RMS)')

    tag = f'iTPN-B {S} b{B}' if not opts.quick else f'tiny {S} b{B}'
    ref_loss_fn = lambda: ref.loss(img, [])['loss']  # noqa: E731
    entries = [
        Entry(f'b {tag} pixel step', 'mmpretrain',
              train_step(ref, ref_loss_fn, autocast)),
        Entry(f'b {tag} pixel step', 'mmitpn',
              train_step(pix, mim_loss(pix), autocast), 'mmpretrain'),
        Entry(f'b {tag} pixel step', 'mmitpn pixel+MFM' +
              (f' ({opts.teacher_dtype} teacher)'
               if opts.teacher_dtype != 'fp32' else ''), mfm_step_and_ema,
              'mmpretrain'),
        # the teacher exactly as inside the MFM step: under the run's
        # autocast (--dtype) and in teacher_dtype
        Entry(f'b {tag} pixel step', 'mmitpn teacher fwd only' +
              (' (bf16)' if low_precision else ''),
              teacher_fwd(mfm, img, autocast), 'mmpretrain'),
    ]
    if low_precision:
        entries.append(Entry(f'b {tag} pixel step',
                             'mmitpn teacher fwd only (fp32)',
                             teacher_fwd(mfm, img, nullcontext, fp32=True),
                             'mmpretrain'))
    notes.append('b: "mmitpn pixel+MFM" = pixel + 3 MFM losses + EMA teacher '
                 'forward on the unmasked image + teacher update, against '
                 "mmpretrain's pixel-only step")
    notes.append('b: "mmitpn teacher fwd only" = the EMA teacher\'s forward '
                 'on the unmasked image alone (no grad), the part of the '
                 'MFM step no student-side saving can remove: its ratio '
                 'bounds how fast pixel+MFM can be against the pixel-only '
                 'step at this precision')
    return entries, notes


def case_c(a, dev, autocast, opts):
    """Backbone + pyramid on detection-sized images: inference of both
    sides, and mmitpn's training step with and without gradient
    checkpointing. Returns ``(entries, notes)``."""
    notes = []
    entries = []
    torch.manual_seed(0)
    ref = build_ref_itpn(a).to(dev)
    ref_bb, ref_neck = ref.backbone, ref.neck
    ref.eval()
    bb = build_ours_backbone(a).to(dev)
    neck = build_ours_neck(a).to(dev)
    bb.eval()
    neck.eval()
    copy_weights(ref, bb, a['depths'], 'backbone.')
    copy_weights(ref, neck, a['depths'], 'neck.')
    run_bb = opts.compile_fn(bb)
    for H, W, B in a['dense']:
        img = torch.randn(B, 3, H, W, device=dev)
        with torch.no_grad():
            diff = max_diff(ref_pyramid_dense(ref_bb, ref_neck, img),
                            neck(bb(img)))
        check(diff, f'c: pyramid maps {H}x{W}', notes)

        def infer(fn, img=img):
            def run():
                with torch.inference_mode(), autocast():
                    fn(img)
            return run

        case = f'c pyramid {H}x{W} b{B} infer'
        entries += [
            Entry(case, 'mmpretrain',
                  infer(lambda x: ref_pyramid_dense(ref_bb, ref_neck, x)),
                  max_repeat=opts.heavy_repeat),
            Entry(case, 'mmitpn', infer(lambda x: neck(run_bb(x))),
                  'mmpretrain', max_repeat=opts.heavy_repeat),
        ]
    # training at the detection size: checkpointing vs not
    H, W, B = a['dense_train']
    img = torch.randn(B, 3, H, W, device=dev)
    case = f'c pyramid {H}x{W} b{B} train'
    models = {}
    for cp in (False, True):
        m = torch.nn.ModuleDict(dict(
            backbone=build_ours_backbone(a, with_cp=cp),
            neck=build_ours_neck(a, with_cp=cp))).to(dev)
        m.backbone.load_state_dict(bb.state_dict())
        m.neck.load_state_dict(neck.state_dict())
        models[cp] = m
    grads = []
    small = img[..., :min(H, 256), :min(W, 256)]  # same blocks, cheaper
    for cp, m in models.items():
        squares(m.neck(m.backbone(small))).backward()
        grads.append([p.grad for p in m.parameters() if p.requires_grad])
        m.zero_grad(set_to_none=True)
    check(max_diff(*grads), 'c: gradients with / without checkpointing',
          notes)
    if dev.type == 'cuda' or opts.quick:
        ref.train()
        entries.append(Entry(case, 'mmpretrain', train_step(
            ref, lambda: squares(ref_pyramid_dense(ref_bb, ref_neck, img)),
            autocast), 'mmitpn no-cp', max_repeat=opts.heavy_repeat))
    else:
        notes.append(f"c: mmpretrain's {H}x{W} training step is not run on "
                     'CPU: its explicit attention keeps ~1 GiB of attention '
                     'matrices per block for the backward')
    for cp, m in models.items():
        run = opts.compile_fn(m.backbone)
        entries.append(Entry(
            case, 'mmitpn with_cp' if cp else 'mmitpn no-cp',
            train_step(m, lambda m=m, run=run: squares(m.neck(run(img))),
                       autocast), 'mmitpn no-cp' if cp else None,
            max_repeat=opts.heavy_repeat))
    return entries, notes


CASES = dict(a=case_a, b=case_b, c=case_c)


def check(diff: float, what: str, notes: List[str], tol: float = 1e-4):
    """Stop before timing anything if the two sides disagree."""
    notes.append(f'{what}: max diff {diff:.2e} (tol {tol:.0e})')
    if not diff < tol:
        raise SystemExit(f'Outputs differ ({what}): {diff:.3e} >= {tol}; '
                         f'not timing unequal models.')


# ---------------------------------------------------------------- running
def sync(dev: torch.device) -> None:
    """Wait for queued GPU work (timings of asynchronous devices)."""
    if dev.type == 'cuda':
        torch.cuda.synchronize(dev)


def run_entries(entries: List[Entry], warmup: int, repeat: int,
                dev: torch.device, mem: Optional['PeakMemory'], log,
                profile: bool = False) -> None:
    """Warm up, measure peak memory (one call each, untimed), then time
    ``repeat`` rounds alternating the entries, the order reversed every
    other round; with ``profile``, one more (untimed) profiled call each
    for :func:`gemm_share`."""
    heavy = any(e.max_repeat for e in entries)
    if heavy:
        repeat = min([repeat] + [e.max_repeat for e in entries
                                 if e.max_repeat])
        if mem is not None:
            warmup = 0
    for i in range(warmup):
        for e in entries:
            e.fn()
            sync(dev)
    if mem is not None:
        for e in entries:
            e.peak_mb = mem.measure(e.fn)
        log('  peak MB: ' + ', '.join(
            f'{e.impl} {e.peak_mb:.0f}' if e.peak_mb is not None else
            f'{e.impl} n/a' for e in entries))
    if mem is not None:
        mem.steady()
    for r in range(repeat):
        order = entries if r % 2 == 0 else entries[::-1]
        for e in order:
            sync(dev)
            t = time.perf_counter()
            e.fn()
            sync(dev)
            e.times.append((time.perf_counter() - t) * 1e3)
        log(f'  round {r + 1}/{repeat}: ' + ', '.join(
            f'{e.impl} {e.times[-1]:.0f} ms' for e in entries))
    if profile and not heavy:  # (case c calls take minutes on a CPU)
        for e in entries:
            e.gemm_share = gemm_share(e.fn, dev)
        log('  GEMM share: ' + ', '.join(
            f'{e.impl} {e.gemm_share:.0%}' for e in entries))


def summarize(entries: List[Entry]) -> List[dict]:
    """Rows of results: medians, ``speedup`` (ratio of medians),
    ``round_speedups`` (the ratio within each round, where both sides ran
    back to back: robust to the load of a shared machine drifting between
    rounds; the table gives their median and range) and memory ratios."""
    rows = []
    for e in entries:
        med = statistics.median(e.times)
        row = dict(case=e.case, impl=e.impl, ref=e.ref, median_ms=med,
                   times_ms=[round(t, 2) for t in e.times],
                   peak_mb=e.peak_mb, speedup=None, round_speedups=None,
                   mem_ratio=None, gemm_share=e.gemm_share)
        if e.ref is not None:
            r = next(x for x in entries
                     if x.case == e.case and x.impl == e.ref)
            row['speedup'] = statistics.median(r.times) / med
            row['round_speedups'] = [
                round(t_ref / t, 3) for t_ref, t in zip(r.times, e.times)
            ]
            if e.peak_mb is not None and r.peak_mb:
                row['mem_ratio'] = e.peak_mb / r.peak_mb
        rows.append(row)
    return rows


def format_table(rows: List[dict]) -> str:
    """The results as a fixed-width text table."""
    head = ('case', 'impl', 'median ms', 'speed-up', 'per round',
            'peak MB', 'mem ratio', 'vs')
    lines = []
    for r in rows:
        rs = r['round_speedups']
        lines.append((
            r['case'], r['impl'], f"{r['median_ms']:.1f}",
            f"{r['speedup']:.2f}x" if r['speedup'] else '1 (ref)'
            if not r['ref'] else '',
            f'{statistics.median(rs):.2f}x ({min(rs):.2f}-{max(rs):.2f})'
            if rs else '',
            f"{r['peak_mb']:.0f}" if r['peak_mb'] is not None else 'n/a',
            f"{r['mem_ratio']:.2f}" if r['mem_ratio'] is not None else '',
            r['ref'] or ''))
    widths = [max(len(x[i]) for x in lines + [head]) for i in range(8)]
    fmt = ' | '.join('{:<%d}' % w for w in widths)
    sep = '-+-'.join('-' * w for w in widths)
    return '\n'.join([fmt.format(*head), sep] +
                     [fmt.format(*x) for x in lines])


MD_BEGIN = '<!-- benchmark:begin -->'
MD_END = '<!-- benchmark:end -->'


def format_markdown(result: dict) -> str:
    """The run as Markdown: command, environment, table and notes."""
    env = result['env']
    lines = [
        f"Command: `{env['command']}`", '',
        f"Machine: {env['device']} ({env['cpu']}, {env['cores']} cores, "
        f"ISA flags: {' '.join(env.get('cpu_isa') or ['n/a'])}), "
        f"{env['threads']} threads, dtype {env['dtype']}, torch "
        f"{env['torch']}, mmpretrain {env['mmpretrain']}; "
        f"{env['repeat']} timed rounds ({env['heavy_repeat']} for case c), "
        f"load average at start / end {env['load_avg_start']} / "
        f"{env['load_avg_end']}, {env['wall_s']} s in all.", '',
        '| case | impl | median ms | speed-up | per round | peak MB | '
        'mem ratio | GEMM share | vs |',
        '|---|---|---|---|---|---|---|---|---|'
    ]
    for r in result['results']:
        rs = r['round_speedups']
        lines.append('| ' + ' | '.join([
            r['case'], r['impl'], f"{r['median_ms']:.1f}",
            f"{r['speedup']:.2f}x" if r['speedup'] else '',
            f'{statistics.median(rs):.2f}x ({min(rs):.2f}-{max(rs):.2f})'
            if rs else '',
            f"{r['peak_mb']:.0f}" if r['peak_mb'] is not None else 'n/a',
            f"{r['mem_ratio']:.2f}" if r['mem_ratio'] is not None else '',
            f"{r['gemm_share']:.0%}" if r.get('gemm_share') is not None
            else '', r['ref'] or ''
        ]) + ' |')
    lines.append('')
    lines += ['- ' + n for n in result['notes']]
    return '\n'.join(lines) + '\n'


def markers(tag: str = ''):
    """The begin / end marker lines of a Markdown table (``tag`` names one
    of several tables in a file; '' is :data:`MD_BEGIN` / :data:`MD_END`).
    """
    if not tag:
        return MD_BEGIN, MD_END
    return f'<!-- benchmark:{tag}:begin -->', f'<!-- benchmark:{tag}:end -->'


def write_markdown(path: str, result: dict, tag: str = '') -> None:
    """Put :func:`format_markdown` into ``path``, between the marker lines
    of ``tag`` (see :func:`markers`) when the file has them, else appended
    to the file with new markers (the file is created if absent)."""
    body = format_markdown(result)
    begin, end = markers(tag)
    p = Path(path)
    text = p.read_text() if p.is_file() else ''
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        tail = rest.split(end, 1)[1]
        text = f'{head}{begin}\n{body}{end}{tail}'
    elif text:
        text = f'{text.rstrip()}\n\n{begin}\n{body}{end}\n'
    else:
        text = f'# mmitpn benchmark\n\n{begin}\n{body}{end}\n'
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)


def cpu_name() -> str:
    """CPU model name (Linux), else what :mod:`platform` knows."""
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


#: CPU instruction-set flags that decide fp32 / bf16 matrix-product speed
ISA_FLAGS = ('avx2', 'fma', 'avx512f', 'avx512_vnni', 'avx512_bf16',
             'avx_vnni', 'amx_tile', 'amx_bf16', 'amx_int8')


def cpu_isa(path: str = '/proc/cpuinfo') -> Optional[List[str]]:
    """Which of :data:`ISA_FLAGS` the CPU reports (Linux; None elsewhere):
    ``avx512_bf16`` and ``amx_bf16`` are the CPU's bf16 dot-product and
    matrix instructions, which bf16 autocast on a CPU relies on for speed.

    Args:
        path (str): The cpuinfo file. Defaults to ``/proc/cpuinfo``.
    """
    try:
        with open(path) as f:
            for line in f:
                if line.startswith('flags'):
                    have = set(line.split(':', 1)[1].split())
                    return [x for x in ISA_FLAGS if x in have]
    except OSError:
        pass
    return None


def load_avg() -> Optional[List[float]]:
    """1/5/15-minute load averages: other work on the machine shows here
    (it inflates both sides of a ratio, but not always equally)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def parse_args(argv=None):
    """Command-line options (see the module docstring)."""
    p = argparse.ArgumentParser(
        description='Time mmitpn against mmpretrain 1.2.0 (HiViT / iTPN).')
    p.add_argument('--cases', nargs='+', choices=sorted(CASES),
                   default=sorted(CASES))
    p.add_argument('--dtype', choices=('fp32', 'bf16'), default='fp32',
                   help='bf16 = torch.autocast(bfloat16) around the '
                   'forward of both sides')
    p.add_argument('--threads', type=int, default=None,
                   help='torch.set_num_threads (default: torch\'s)')
    p.add_argument('--device', default='cpu', help="'cpu' or 'cuda[:i]'")
    p.add_argument('--repeat', type=int, default=None,
                   help='timed rounds per case (default 5, --quick 1)')
    p.add_argument('--warmup', type=int, default=None,
                   help='untimed rounds first (default 1)')
    p.add_argument('--batch', type=int, default=None,
                   help='batch size of cases a and b (default 8, --quick 2): '
                   'shorter calls alternate more finely, which helps on a '
                   'loaded machine')
    p.add_argument('--json', default=None, help='also write results here')
    p.add_argument('--markdown', default=None,
                   help='also write the table as Markdown into this file, '
                   'between the lines "%s" and "%s" if it has them (the '
                   'rest of the file is kept), else as the whole file' %
                   (MD_BEGIN, MD_END))
    p.add_argument('--markdown-tag', default='',
                   help='with --markdown: write between the lines '
                   '"<!-- benchmark:TAG:begin -->" and '
                   '"<!-- benchmark:TAG:end -->" instead (several tables '
                   'in one file)')
    p.add_argument('--quick', action='store_true',
                   help='tiny architecture and images, 1 round: a smoke '
                   'test of the tool, not a measurement')
    p.add_argument('--compile', action='store_true',
                   help='torch.compile the mmitpn backbone')
    p.add_argument('--heavy-repeat', type=int, default=2,
                   help='cap on the timed rounds of case c (a 1024x1024 '
                   'call takes 30-120 s on a 2-core CPU; its memory round '
                   'doubles as warm-up)')
    p.add_argument('--teacher-dtype', choices=('fp32', 'bf16'),
                   default='fp32',
                   help="ITPNMIM's teacher_dtype in the pixel+MFM step; "
                   'with bf16 the fp32 teacher forward is timed too and '
                   'the targets of both are compared')
    p.add_argument('--profile', action='store_true',
                   help='after timing, profile one call of each entry and '
                   'report the share of its time in matrix products '
                   '(GEMM share): 1 / the reference\'s share bounds the '
                   'speed-up of any implementation doing the same products '
                   'at the same speed')
    p.add_argument('--no-memory', action='store_true',
                   help='skip the peak-memory measurements')
    p.add_argument('--in-process', action='store_true',
                   help='run every case in this process instead of one '
                   'fresh process per group (faster start; CPU memory '
                   'figures then also count heap blocks left resident by '
                   'earlier groups)')
    p.add_argument('--worker', default=None, help=argparse.SUPPRESS)
    p.add_argument('--worker-out', default=None, help=argparse.SUPPRESS)
    return p.parse_args(argv)


class Options:
    """What the case builders need from the command line."""

    def __init__(self, args) -> None:
        self.quick = args.quick
        self.compile = args.compile
        self.heavy_repeat = max(1, args.heavy_repeat)
        self.teacher_dtype = args.teacher_dtype
        self.low_precision = args.dtype != 'fp32'

    def compile_fn(self, fn):
        """``torch.compile(fn)`` with ``--compile``, else ``fn``."""
        return torch.compile(fn) if self.compile else fn


def main(argv=None) -> dict:
    """Run the benchmark; print the table, notes and JSON; return the
    result dict (also written to ``--json``)."""
    args = parse_args(argv)
    dev = torch.device(args.device)
    if dev.type == 'cuda' and not torch.cuda.is_available():
        raise SystemExit('--device cuda but torch sees no GPU.')
    if args.threads:
        torch.set_num_threads(args.threads)
    repeat = args.repeat or (1 if args.quick else 5)
    warmup = args.warmup if args.warmup is not None else 1
    a = QUICK if args.quick else FULL
    if args.batch:
        a = dict(a, batch=args.batch)
    dtype = torch.bfloat16 if args.dtype == 'bf16' else None

    def autocast():
        if dtype is None:
            return nullcontext()
        return torch.autocast(dev.type, dtype=dtype)

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    import mmpretrain
    # no per-parameter init log of mmpretrain's init_weights
    MMLogger.get_current_instance().setLevel('WARNING')

    import mmitpn  # noqa: F401 (registers the modules)
    mem = PeakMemory(dev)
    opts = Options(args)
    if args.worker:
        return run_worker(args, a, dev, autocast, opts, mem, warmup, repeat,
                          log)
    if args.in_process:
        mem.steady()
    env = dict(
        torch=torch.__version__, mmpretrain=mmpretrain.__version__,
        device=str(dev) if dev.type == 'cpu' else torch.cuda.get_device_name(
            dev), cpu=cpu_name(), cpu_isa=cpu_isa(), cores=os.cpu_count(),
        threads=torch.get_num_threads(), dtype=args.dtype, repeat=repeat,
        warmup=warmup, heavy_repeat=opts.heavy_repeat, quick=args.quick,
        compile=args.compile, teacher_dtype=args.teacher_dtype,
        in_process=args.in_process, load_avg_start=load_avg(),
        command='python tools/analysis_tools/benchmark.py ' +
        ' '.join(argv if argv is not None else sys.argv[1:]))
    notes = [
        "arch: mmpretrain arch='base' HiViT = 4+4 MLP blocks in stages 1-2 "
        '(it doubles depths (2, 2, 24)) + 24 attention blocks; mmitpn is '
        'built with depths (4, 4, 24) to match (official iTPN-B: 3, 3, 24)'
        if not args.quick else 'arch: tiny (--quick), not a measurement',
        "decoder: mmpretrain's iTPN config (6 blocks, 16 heads, level-embed "
        'LayerNorm eps 1e-5); mmitpn configured the same',
        'peak MB: memory allocated during one call above what existed '
        'before it (CPU: RSS high-water mark; CUDA: max_memory_allocated)',
        'speed-up = median ms of "vs" / median ms of the row; per round = '
        'median (min-max) of that ratio within each round, where both ran '
        'back to back',
    ]
    rows = []
    t_start = time.time()
    for name in args.cases:
        if args.in_process:
            log(f'case {name}: building, copying weights, checking outputs')
            entries, case_notes = CASES[name](a, dev, autocast, opts)
            for line in case_notes:
                log('  ' + line)
            for case in dict.fromkeys(e.case for e in entries):
                group = [e for e in entries if e.case == case]
                log(f'running {case}: {len(group)} entries')
                run_entries(group, warmup, repeat, dev,
                            None if args.no_memory else mem, log,
                            args.profile)
            case_rows = summarize(entries)
            del entries
            gc.collect()
        else:
            case_rows, case_notes = [], []
            for g in range(num_groups(name, a)):
                part = spawn_worker(argv, name, g)
                case_rows += part['rows']
                case_notes += part['notes']
        rows += case_rows
        notes += case_notes
    env['wall_s'] = round(time.time() - t_start, 1)
    env['load_avg_end'] = load_avg()
    result = dict(env=env, notes=notes, results=rows)
    print(format_table(rows))
    print()
    for n in notes:
        print('- ' + n)
    print()
    print(json.dumps(result, indent=1))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        with open(args.json, 'w') as f:
            json.dump(result, f, indent=1)
    if args.markdown:
        write_markdown(args.markdown, result, args.markdown_tag)
    return result


# ------------------------------------------------------- worker processes
def num_groups(case: str, a: dict) -> int:
    """Timed groups (sub-cases) of a case, each run in its own process."""
    return dict(a=2, b=1, c=len(a['dense']) + 1)[case]


def spawn_worker(argv: Optional[List[str]], case: str, group: int) -> dict:
    """Run one group of a case in a fresh interpreter (same options) and
    return its rows and notes. A fresh process per group keeps the C heap
    of one group's timings from distorting the next group's memory
    measurement (freed glibc heap blocks stay resident)."""
    import subprocess
    import tempfile
    argv = list(sys.argv[1:] if argv is None else argv)
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, 'rows.json')
        cmd = [sys.executable, os.path.abspath(__file__), *argv, '--worker',
               f'{case}:{group}', '--worker-out', out]
        proc = subprocess.run(cmd, stdout=subprocess.DEVNULL)
        if proc.returncode != 0:
            raise SystemExit(f'benchmark worker for case {case} group '
                             f'{group} failed (exit {proc.returncode}); '
                             f'see its messages above.')
        with open(out) as f:
            return json.load(f)


def run_worker(args, a, dev, autocast, opts, mem, warmup, repeat,
               log) -> dict:
    """Body of a worker process: build the case, run one of its groups,
    write ``{'rows', 'notes'}`` to ``--worker-out``."""
    name, group = args.worker.split(':')
    group = int(group)
    if not args.no_memory:
        # until the memory round is over the heap holds no freed big
        # blocks that would blur the resident-set measurement
        mem.precise()
    log(f'case {name} [{group + 1}/{num_groups(name, a)}]: building, '
        'copying weights, checking outputs')
    entries, notes = CASES[name](a, dev, autocast, opts)
    if group == 0:
        for line in notes:
            log('  ' + line)
    cases = list(dict.fromkeys(e.case for e in entries))
    entries = [e for e in entries if e.case == cases[group]]
    log(f'running {cases[group]}: {len(entries)} entries')
    run_entries(entries, warmup, repeat, dev,
                None if args.no_memory else mem, log, args.profile)
    result = dict(rows=summarize(entries), notes=notes if group == 0 else [])
    with open(args.worker_out, 'w') as f:
        json.dump(result, f)
    return result


if __name__ == '__main__':
    main()
