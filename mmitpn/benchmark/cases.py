"""Benchmark cases: what is timed, built on :mod:`.reference`.

- ``a``: HiViT-B backbone, 224x224, batch 8: training step (forward,
  backward, AdamW) and inference (stage-3 map).
- ``b``: iTPN-B pixel pre-training step (mask 0.75) of both; mmitpn's
  pixel + MFM step (EMA teacher on the unmasked image, teacher update
  included) against mmpretrain's pixel step; the teacher's forward alone,
  run as inside the step (same autocast, same ``teacher_dtype``). In lower
  precision (``dtype`` bf16 or ``teacher_dtype`` bf16) also the fp32
  teacher forward, and a note of how far the teacher's LayerNorm-ed
  targets are from the fp32 ones.
- ``c``: backbone + pyramid (the three pyramid levels as dense NCHW maps,
  what a detector consumes) at 1024x1024 (batch 1) and 800x1344
  (batch 2): inference; training step at 1024x1024 with and without
  gradient checkpointing (mmitpn only on CPU: mmpretrain's explicit
  attention would keep ~1 GiB of attention matrices per block for the
  backward, more than this kind of machine has; its step is included on
  CUDA).

mmpretrain has no dense path returning the three stage maps
(``HiViT.forward`` with stage-1/2 ``out_indices`` feeds a NCHW map into
the next block), so case c's reference is its own token path
(:func:`.reference.ref_pyramid_dense`).

A case returns ``(entries, notes)``; :func:`run_entries` runs the entries
of one group (sub-case): warm-up round(s), one memory round, then timed
rounds alternating the entries, the order reversed every other round, so
that both sides see the same machine noise; :func:`summarize` turns them
into rows.
"""
import statistics
import time
from contextlib import nullcontext
from typing import Callable, List, Optional

import torch
import torch.nn.functional as F

from .memory import PeakMemory
from .reference import (build_ours_backbone, build_ours_neck,
                        build_ref_hivit, build_ref_itpn, check_equal,
                        copy_weights, max_diff, pixel_models,
                        ref_pyramid_dense)


class CaseOptions:
    """What the cases need from the command line.

    Args:
        quick (bool): Tiny architecture (labels say ``tiny``).
        compile (bool): ``torch.compile`` mmitpn's backbone.
        heavy_repeat (int): Cap on the timed rounds of case c.
        teacher_dtype (str): ``teacher_dtype`` of the MFM step
            (``'fp32'`` or ``'bf16'``).
        low_precision (bool): The run uses an autocast dtype.
    """

    def __init__(self, quick: bool = False, compile: bool = False,
                 heavy_repeat: int = 2, teacher_dtype: str = 'fp32',
                 low_precision: bool = False) -> None:
        self.quick = quick
        self.compile = compile
        self.heavy_repeat = max(1, heavy_repeat)
        self.teacher_dtype = teacher_dtype
        self.low_precision = low_precision

    def compile_fn(self, fn: Callable) -> Callable:
        """``torch.compile(fn)`` with ``compile``, else ``fn``.

        Args:
            fn (Callable): A module or function.
        """
        return torch.compile(fn) if self.compile else fn


def make_optimizer(model: torch.nn.Module) -> torch.optim.Optimizer:
    """AdamW over the trainable parameters of ``model``, its state created
    (one step on zero gradients), so that a measured step holds the step
    itself, not the state's first allocation.

    Args:
        model (torch.nn.Module): The model to train.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4, betas=(0.9, 0.95),
                            weight_decay=0.05)
    for p in params:
        p.grad = torch.zeros_like(p)
    opt.step()
    opt.zero_grad(set_to_none=True)
    return opt


def train_step(model: torch.nn.Module, loss_fn: Callable, autocast: Callable,
               opt: Optional[torch.optim.Optimizer] = None,
               scaler=None) -> Callable:
    """A closure doing forward, backward and one AdamW step.

    Args:
        model (torch.nn.Module): The model to train.
        loss_fn (Callable): Returns the loss (no arguments).
        autocast (Callable): Returns the context the forward runs in.
        opt (torch.optim.Optimizer, optional): The optimizer; None makes
            one with :func:`make_optimizer`. Defaults to None.
        scaler (torch.amp.GradScaler, optional): Loss scaler of fp16 AMP.
            Defaults to None.
    """
    opt = opt if opt is not None else make_optimizer(model)

    def step():
        with autocast():
            loss = loss_fn()
        if scaler is None:
            loss.backward()
            opt.step()
        else:
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        opt.zero_grad(set_to_none=True)

    return step


def squares(outs) -> torch.Tensor:
    """A scalar that depends on every output element.

    Args:
        outs (Iterable[torch.Tensor]): Outputs of a model.
    """
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
    in matrix products (:data:`GEMM_OPS`), from :mod:`torch.profiler`.

    Args:
        fn (Callable): The call.
        dev (torch.device): Where it runs.
    """
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
    (stage-3 map).

    Args:
        a (dict): A preset of :mod:`.reference`.
        dev (torch.device): Where the models run.
        autocast (Callable): Returns the context the forwards run in.
        opts (CaseOptions): Options of the run.

    Returns:
        tuple: ``(entries, notes)``.
    """
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
    check_equal(diff, 'a: HiViT stage-3 map', notes)
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
    in full precision whatever ``teacher_dtype`` and ``autocast`` are.

    Args:
        model (ITPNMIM): A model with an MFM teacher.
        img (torch.Tensor): The unmasked images.
        autocast (Callable): Returns the step's autocast context.
        fp32 (bool): Run in fp32 instead. Defaults to False.
    """

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
    Arguments and return value as :func:`case_a`."""
    notes = []
    B, S = a['batch'], a['img']
    built = pixel_models(a, dev, opts.teacher_dtype, notes)
    ref, pix, mfm = built['ref'], built['pix'], built['mfm']
    img = built['img']
    ids_keep, ids_restore, mask = built['masks']
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
    checkpointing. Arguments and return value as :func:`case_a`."""
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
        check_equal(diff, f'c: pyramid maps {H}x{W}', notes)

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
    check_equal(max_diff(*grads),
                'c: gradients with / without checkpointing', notes)
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


def num_groups(case: str, a: dict) -> int:
    """Timed groups (sub-cases) of a case, each run in its own process.

    Args:
        case (str): ``'a'``, ``'b'`` or ``'c'``.
        a (dict): The preset of the run.
    """
    return dict(a=2, b=1, c=len(a['dense']) + 1)[case]


def sync(dev: torch.device) -> None:
    """Wait for queued GPU work (timings of asynchronous devices).

    Args:
        dev (torch.device): The device.
    """
    if dev.type == 'cuda':
        torch.cuda.synchronize(dev)


def run_entries(entries: List[Entry], warmup: int, repeat: int,
                dev: torch.device, mem: Optional[PeakMemory],
                log: Callable, profile: bool = False) -> None:
    """Warm up, measure peak memory (one call each, untimed), then time
    ``repeat`` rounds alternating the entries, the order reversed every
    other round; with ``profile``, one more (untimed) profiled call each
    for :func:`gemm_share`. Results go into the entries.

    Args:
        entries (list[Entry]): The entries of one group.
        warmup (int): Untimed rounds first.
        repeat (int): Timed rounds (capped by the entries' ``max_repeat``).
        dev (torch.device): Where they run.
        mem (PeakMemory, optional): Meter of the memory round; None skips
            the round.
        log (Callable): Takes progress lines.
        profile (bool): Measure the GEMM share. Defaults to False.
    """
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
    rounds; the table gives their median and range) and memory ratios.

    Args:
        entries (list[Entry]): Entries that have run.

    Returns:
        list[dict]: One row per entry (the JSON's ``results``).
    """
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
