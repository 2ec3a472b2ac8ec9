"""Training throughput of the pre-training steps on an accelerator:
images/s, peak memory and model FLOPs utilisation (MFU) of iTPN-B at 224,
against mmpretrain's iTPN in the same run with the same weights.

What runs, in this order (what does not fit the time budget is skipped
and reported as skipped):

1. build mmpretrain's iTPN pixel model and mmitpn's pixel and pixel + MFM
   ``ITPNMIM`` with the same weights and check their predictions and losses
   equal in fp32 (:func:`.reference.pixel_models`); count each step's model
   multiply-adds (:mod:`.flops`, attention included);
2. for each precision (bf16 autocast; fp16 autocast with a dynamic loss
   scaler, i.e. fp16 AMP), at one batch size: mmpretrain's pixel step,
   mmitpn's pixel step, mmitpn's pixel + MFM step (EMA update included)
   and the teacher's forward alone, alternating in rounds as in
   :func:`.cases.run_entries` (warm-up, memory round, timed rounds);
3. the largest batch that fits each step, found by doubling from that
   batch size until the device runs out of memory (or ``max_batch``), then
   timed there;
4. with ``compile``: mmitpn's steps with ``torch.compile``-d backbones (and
   teacher), bf16, at the first batch size, against mmpretrain in eager.

MFU = 2 x the step's model multiply-adds / step time / the device's peak
(:func:`.flops.mfu`), the multiply-adds counted on mmitpn's model (one
image, then times the batch) and used for both implementations of the same
model (mmpretrain's decoder also predicts the visible patches: extra work
that the loss does not use). The peak is the dense bf16 figure
(:data:`.flops.PEAK_BF16_TFLOPS`, the same for fp16 on the GPUs listed) or
one given.
"""
import gc
import time
from contextlib import nullcontext
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch

from .cases import Entry, make_optimizer, run_entries, summarize, sync
from .cases import teacher_fwd as _teacher_fwd
from .cases import train_step
from .flops import count_macs, mfu, train_step_macs
from .memory import PeakMemory
from .reference import pixel_models, seeded_masks

#: The pre-training goals this benchmark reports on (issue 20).
GOALS = dict(pixel_mfu_bf16=0.40, pixel_speedup=1.2, mfm_overhead=1.1)
PRECISIONS = {'bf16': torch.bfloat16, 'fp16': torch.float16}
#: Step labels
PIXEL, MFM, TEACHER = 'pixel step', 'pixel+MFM step', 'teacher fwd'


class Budget:
    """A deadline.

    Args:
        seconds (float): Time from now.
    """

    def __init__(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds

    def left(self) -> float:
        """Seconds left (negative once past)."""
        return self.deadline - time.monotonic()


def is_oom(exc: BaseException) -> bool:
    """Whether ``exc`` says the device ran out of memory.

    Args:
        exc (BaseException): The exception.
    """
    return isinstance(exc, torch.cuda.OutOfMemoryError) or \
        'out of memory' in str(exc)


def free_memory(dev: torch.device) -> None:
    """Collect garbage and return cached blocks to the device.

    Args:
        dev (torch.device): The device.
    """
    gc.collect()
    if dev.type == 'cuda':
        torch.cuda.empty_cache()


def largest_batch(try_batch: Callable[[int], float], start: int, cap: int,
                  budget: Budget) -> Tuple[Optional[int], List[list]]:
    """Double the batch size until a step no longer fits.

    Args:
        try_batch (Callable): Runs one step at a batch size and returns its
            time in seconds; raises an out-of-memory error (:func:`is_oom`)
            when it does not fit.
        start (int): First batch size tried.
        cap (int): Largest batch size tried.
        budget (Budget): A try whose expected time (twice the last one's,
            three times over for the margin) does not fit is not made.

    Returns:
        tuple: The largest batch size that ran (None if none did) and the
        tries as ``[batch, outcome]`` pairs (outcome ``'fits'``,
        ``'out of memory'`` or ``'skipped: budget'``).
    """
    best, tries, last_s, b = None, [], 0., start
    while b <= cap:
        if budget.left() < 6 * last_s:
            tries.append([b, 'skipped: budget'])
            break
        try:
            last_s = try_batch(b)
        except Exception as exc:  # noqa: BLE001 (only out-of-memory)
            if not is_oom(exc):
                raise
            tries.append([b, 'out of memory'])
            break
        tries.append([b, 'fits'])
        best, b = b, 2 * b
    return best, tries


class Steps:
    """The timed calls of one run: the three models, one optimizer each
    (state created once), and calls built for a batch size and precision.

    Args:
        built (dict): :func:`.reference.pixel_models`'s result.
        a (dict): The preset.
        dev (torch.device): Where the models run.
    """

    def __init__(self, built: dict, a: dict, dev: torch.device) -> None:
        self.ref, self.pix, self.mfm = built['ref'], built['pix'], \
            built['mfm']
        self.a, self.dev = a, dev
        self.opts = {k: make_optimizer(getattr(self, k))
                     for k in ('ref', 'pix', 'mfm')}

    def inputs(self, batch: int) -> tuple:
        """Images and masks of a batch (same masks for both sides).

        Args:
            batch (int): The batch size.
        """
        S = self.a['img']
        img = torch.randn(batch, 3, S, S, device=self.dev)
        masks = seeded_masks(self.pix, batch, (S // 16)**2, self.dev)
        return img, masks

    def autocast(self, precision: str) -> Callable:
        """The context factory of a precision (``'fp32'``: none).

        Args:
            precision (str): ``'bf16'``, ``'fp16'`` or ``'fp32'``.
        """
        if precision == 'fp32':
            return nullcontext
        return lambda: torch.autocast(self.dev.type,
                                      dtype=PRECISIONS[precision])

    def call(self, what: str, impl: str, precision: str, inputs: tuple
             ) -> Callable:
        """One step (or the teacher's forward) as a call.

        Args:
            what (str): :data:`PIXEL`, :data:`MFM` or :data:`TEACHER`.
            impl (str): ``'mmpretrain'`` or ``'mmitpn'``.
            precision (str): ``'bf16'`` (autocast) or ``'fp16'`` (autocast
                and a loss scaler).
            inputs (tuple): :meth:`inputs` of the batch.
        """
        img, masks = inputs
        ac = self.autocast(precision)
        scaler = torch.amp.GradScaler(self.dev.type) \
            if precision == 'fp16' else None
        if what == TEACHER:
            return _teacher_fwd(self.mfm, img, ac)
        if impl == 'mmpretrain':
            ref = self.ref

            def ref_loss():
                ref.backbone.set_masks(*masks)
                return ref.loss(img, [])['loss']

            return train_step(ref, ref_loss, ac, self.opts['ref'], scaler)
        key = 'mfm' if what == MFM else 'pix'
        model = getattr(self, key)
        step = train_step(
            model, lambda: sum(model.forward_mim(img, *masks).values()), ac,
            self.opts[key], scaler)
        if what == PIXEL:
            return step

        def step_and_ema():
            step()
            model.teacher.update_parameters(model.backbone)

        return step_and_ema

    def zero_grad(self) -> None:
        """Drop gradients left by a step that ran out of memory."""
        for opt in self.opts.values():
            opt.zero_grad(set_to_none=True)


def count_step_macs(steps: Steps, notes: List[str]) -> Dict[str, int]:
    """Model multiply-adds per image of each timed call.

    Args:
        steps (Steps): The models.
        notes (list[str]): The counts are appended.

    Returns:
        dict: ``(what, impl)`` -> multiply-adds per image.
    """
    img, masks = steps.inputs(1)
    pix, mfm = steps.pix, steps.mfm
    with torch.no_grad():
        pix_fwd = count_macs(
            pix, lambda *x: sum(pix.forward_mim(*x).values()), (img, *masks))
        mfm_fwd = count_macs(
            mfm, lambda *x: sum(mfm.forward_mim(*x).values()), (img, *masks))
        teacher = count_macs(mfm, lambda x: tuple(mfm.teacher_targets(x)),
                             (img, ))
    macs = {
        (PIXEL, 'mmitpn'): train_step_macs(pix_fwd),
        (PIXEL, 'mmpretrain'): train_step_macs(pix_fwd),
        (MFM, 'mmitpn'): train_step_macs(mfm_fwd - teacher, teacher),
        (TEACHER, 'mmitpn'): teacher,
    }
    g = {k: v / 1e9 for k, v in macs.items()}
    notes.append(
        'model GMACs per image (x2 = GFLOP; a forward with autograd counts '
        f"3x in a step): pixel step {g[(PIXEL, 'mmitpn')]:.3f} (forward "
        f"{pix_fwd / 1e9:.3f}), pixel+MFM step {g[(MFM, 'mmitpn')]:.3f}, "
        f'teacher forward {teacher / 1e9:.3f}; the MFU of both '
        "implementations uses these model counts (mmpretrain's decoder "
        'also predicts the visible patches: more work, same model)')
    return macs


def _rows(entries: List[Entry], calls: Sequence[tuple], phase: str,
          precision: str, batch: int, macs: Dict[tuple, int],
          peak: Optional[float]) -> List[dict]:
    rows = []
    for (what, impl), row in zip(calls, summarize(entries)):
        step_s = row['median_ms'] / 1e3
        step_macs = macs[(what, impl)] * batch
        row.update(
            phase=phase, step=what, impl=impl, precision=precision,
            batch=batch,
            images_s=batch / step_s, step_gflop=2 * step_macs / 1e9,
            tflops=2 * step_macs / step_s / 1e12,
            mfu=mfu(step_macs, step_s, peak), status='ok')
        rows.append(row)
    return rows


def _skipped(phase: str, precision: str, batch: Optional[int],
             calls: Sequence[tuple], status: str) -> List[dict]:
    return [dict(phase=phase, case=f'{precision} b{batch}', step=what,
                 impl=impl, precision=precision, batch=batch, status=status)
            for what, impl in calls]


def _status(exc: BaseException) -> str:
    if is_oom(exc):
        return 'out of memory'
    line = (str(exc).strip().splitlines() or [''])[0][:200]
    return f'error: {type(exc).__name__}: {line}'


def time_calls(steps: Steps, calls: Sequence[tuple], precision: str,
               batch: int, phase: str, warmup: int, repeat: int,
               budget: Budget, macs: Dict[tuple, int],
               peak: Optional[float], mem: Optional[PeakMemory],
               log: Callable) -> List[dict]:
    """Time calls of one batch size and precision in alternating rounds;
    the rounds are cut to what the budget leaves after one warm-up call of
    each.

    Args:
        steps (Steps): The models.
        calls (Sequence[tuple]): ``(what, impl)`` pairs; the first
            ``mmpretrain`` one is the reference of the speed-ups.
        precision (str): ``'bf16'`` or ``'fp16'``.
        batch (int): The batch size.
        phase (str): Label of the rows (``'batch'``, ``'max batch'``,
            ``'compiled'``).
        warmup (int): Untimed rounds (at least one).
        repeat (int): Timed rounds at most.
        budget (Budget): The deadline.
        macs (dict): :func:`count_step_macs`'s result.
        peak (float, optional): Peak TFLOP/s for the MFU.
        mem (PeakMemory, optional): Memory meter; None skips the memory
            round.
        log (Callable): Takes progress lines.

    Returns:
        list[dict]: One row per call (``status`` ``'ok'``, ``'skipped:
        budget'``, ``'out of memory'`` or ``'error: ...'``).
    """
    ref = next((f'{w} mmpretrain' for w, i in calls if i == 'mmpretrain'),
               None)
    entries, inputs = [], None
    try:
        inputs = steps.inputs(batch)
        for what, impl in calls:
            name = f'{what} {impl}'
            entries.append(Entry(f'{precision} b{batch}', name,
                                 steps.call(what, impl, precision, inputs),
                                 None if name == ref else ref))
        # warm-up rounds run here; the last one (not the first, which
        # may compile or tune kernels) is the time estimate
        done = 0
        while True:
            t0 = time.perf_counter()
            for e in entries:
                e.fn()
                sync(steps.dev)
            round_s, done = time.perf_counter() - t0, done + 1
            if done >= min(warmup, 2) or budget.left() < 2 * round_s:
                break
        rounds = int((budget.left() - 5) / max(round_s, 1e-6))
        repeat = min(repeat, rounds - (warmup - done) - (mem is not None))
        if repeat < 1:
            return _skipped(phase, precision, batch, calls,
                            'skipped: budget')
        log(f'{phase} {precision} b{batch}: {len(entries)} calls, '
            f'{repeat} rounds')
        run_entries(entries, max(warmup - done, 0), repeat, steps.dev, mem,
                    log)
        return _rows(entries, calls, phase, precision, batch, macs, peak)
    except Exception as exc:  # noqa: BLE001 (reported, the run goes on)
        steps.zero_grad()
        log(f'{phase} {precision} b{batch}: {_status(exc)}')
        return _skipped(phase, precision, batch, calls, _status(exc))
    finally:
        del entries, inputs
        free_memory(steps.dev)


def max_batch_rows(steps: Steps, what: str, impl: str, precision: str,
                   start: int, cap: int, budget: Budget,
                   macs: Dict[tuple, int], peak: Optional[float],
                   mem: Optional[PeakMemory], notes: List[str],
                   log: Callable, repeat: int = 5) -> List[dict]:
    """The largest batch of one step found by doubling
    (:func:`largest_batch`), then timed there.

    Args:
        steps (Steps): The models.
        what (str): :data:`PIXEL` or :data:`MFM`.
        impl (str): ``'mmpretrain'`` or ``'mmitpn'``.
        precision (str): ``'bf16'`` or ``'fp16'``.
        start (int): First batch size tried.
        cap (int): Largest batch size tried.
        budget (Budget): The deadline.
        macs (dict): :func:`count_step_macs`'s result.
        peak (float, optional): Peak TFLOP/s for the MFU.
        mem (PeakMemory, optional): Memory meter.
        notes (list[str]): The tries are appended.
        log (Callable): Takes progress lines.
        repeat (int): Timed rounds at most. Defaults to 5.
    """

    def try_batch(b):
        call = steps.call(what, impl, precision, steps.inputs(b))
        try:
            t0 = time.perf_counter()
            call()
            sync(steps.dev)
            return time.perf_counter() - t0
        finally:
            del call
            steps.zero_grad()
            free_memory(steps.dev)

    try:
        best, tries = largest_batch(try_batch, start, cap, budget)
    except Exception as exc:  # noqa: BLE001 (reported, the run goes on)
        return _skipped('max batch', precision, None, [(what, impl)],
                        _status(exc))
    finally:  # what the last (failed) try's frames held
        free_memory(steps.dev)
    notes.append(f'max batch, {what} {impl} {precision} (cap {cap}): ' +
                 ', '.join(f'b{b} {outcome}' for b, outcome in tries))
    log(notes[-1])
    if best is None:
        return _skipped('max batch', precision, None, [(what, impl)],
                        tries[-1][1] if tries else 'skipped: budget')
    return time_calls(steps, [(what, impl)], precision, best, 'max batch',
                      1, repeat, budget, macs, peak, mem, log)


def goals(rows: List[dict]) -> List[dict]:
    """The goals of :data:`GOALS` read from the rows.

    Args:
        rows (list[dict]): Rows of :func:`run_throughput`.

    Returns:
        list[dict]: ``goal``, ``value``, ``cmp`` (``'>='`` or ``'<='``),
        ``target``, ``met`` and where the value comes from (``phase``,
        ``precision``, ``batch``).
    """
    ok = [r for r in rows if r.get('status') == 'ok']
    out = []

    def add(goal, value, cmp, target, row):
        met = value >= target if cmp == '>=' else value <= target
        out.append(dict(goal=goal, value=value, cmp=cmp, target=target,
                        met=met, phase=row['phase'],
                        precision=row['precision'], batch=row['batch']))

    mfus = [r for r in ok if r['precision'] == 'bf16' and r['step'] == PIXEL
            and r['impl'].startswith('mmitpn') and r['mfu'] is not None]
    if mfus:
        best = max(mfus, key=lambda r: r['mfu'])
        add('mmitpn pixel step MFU, bf16', best['mfu'], '>=',
            GOALS['pixel_mfu_bf16'], best)
    for p in PRECISIONS:
        same = {(r['step'], r['impl']): r for r in ok
                if r['phase'] == 'batch' and r['precision'] == p}
        pix = same.get((PIXEL, 'mmitpn'))
        if pix is not None and pix['speedup']:
            add(f'mmitpn / mmpretrain images/s, pixel step, {p}',
                pix['speedup'], '>=', GOALS['pixel_speedup'], pix)
        mfm, tea = same.get((MFM, 'mmitpn')), same.get((TEACHER, 'mmitpn'))
        if pix is not None and mfm is not None and tea is not None:
            add(f'pixel+MFM step / (pixel step + teacher fwd), {p}',
                mfm['median_ms'] / (pix['median_ms'] + tea['median_ms']),
                '<=', GOALS['mfm_overhead'], mfm)
    return out


def run_throughput(a: dict, dev: torch.device, batch: int,
                   precisions: Sequence[str] = ('bf16', 'fp16'),
                   max_batch: int = 1024, warmup: int = 3, repeat: int = 10,
                   compile: bool = False, budget_s: float = 480.,
                   peak: Optional[float] = None, memory: bool = True,
                   log: Callable = print,
                   on_update: Optional[Callable] = None) -> dict:
    """Run the phases of the module docstring.

    Args:
        a (dict): The preset (:data:`.reference.FULL`: iTPN-B at 224).
        dev (torch.device): Where to run.
        batch (int): The batch size of the comparison (and the first one
            of the doubling, which starts at twice it).
        precisions (Sequence[str]): ``'bf16'`` and / or ``'fp16'``.
            Defaults to both.
        max_batch (int): Largest batch size tried. Defaults to 1024.
        warmup (int): Untimed rounds. Defaults to 3.
        repeat (int): Timed rounds at most. Defaults to 10.
        compile (bool): Add the ``torch.compile`` rows. Defaults to False.
        budget_s (float): Seconds for all of it; what does not fit is
            skipped. Defaults to 480.
        peak (float, optional): Peak TFLOP/s for the MFU (None: no MFU).
        memory (bool): Measure peak memory. Defaults to True.
        log (Callable): Takes progress lines. Defaults to print.
        on_update (Callable, optional): Called with the result after each
            phase (e.g. to save it, so that a run cut short keeps what it
            measured).

    Returns:
        dict: ``notes``, ``rows``, ``goals``, ``macs_per_image`` and
        ``wall_s``.
    """
    t_start = time.monotonic()
    budget = Budget(budget_s)
    notes: List[str] = []
    result = dict(notes=notes, rows=[], goals=[], macs_per_image={},
                  wall_s=None)

    def update(rows=()):
        result['rows'] += list(rows)
        result['goals'] = goals(result['rows'])
        result['wall_s'] = round(time.monotonic() - t_start, 1)
        if on_update is not None:
            on_update(result)

    log('building the models, copying the weights, checking outputs')
    built = pixel_models(a, dev, None, notes, check_batch=min(batch, 8))
    steps = Steps(built, a, dev)
    del built
    macs = count_step_macs(steps, notes)
    result['macs_per_image'] = {f'{w} {i}': v for (w, i), v in macs.items()}
    mem = PeakMemory(dev) if memory else None
    if mem is not None and dev.type == 'cpu':
        mem.steady()
    update()
    calls = [(PIXEL, 'mmpretrain'), (PIXEL, 'mmitpn'), (MFM, 'mmitpn'),
             (TEACHER, 'mmitpn')]
    for p in precisions:
        update(time_calls(steps, calls, p, batch, 'batch', warmup, repeat,
                          budget, macs, peak, mem, log))
    for p in precisions:
        for what, impl in ((PIXEL, 'mmitpn'), (PIXEL, 'mmpretrain'),
                           (MFM, 'mmitpn')):
            update(max_batch_rows(steps, what, impl, p, 2 * batch,
                                  max_batch, budget, macs, peak, mem, notes,
                                  log, repeat=min(5, repeat)))
    if compile:
        update(compiled_rows(steps, batch, warmup, repeat, budget, macs,
                             peak, mem, log))
    return result


def compiled_rows(steps: Steps, batch: int, warmup: int, repeat: int,
                  budget: Budget, macs: Dict[tuple, int],
                  peak: Optional[float], mem: Optional[PeakMemory],
                  log: Callable, reserve_s: float = 150.) -> List[dict]:
    """mmitpn's bf16 steps with ``torch.compile``-d backbones (student and
    teacher) against mmpretrain in eager mode; skipped when less than
    ``reserve_s`` is left (compilation takes minutes).

    Args:
        steps (Steps): The models (their backbones are compiled in place).
        batch (int): The batch size.
        warmup (int): Untimed rounds (the first one compiles).
        repeat (int): Timed rounds at most.
        budget (Budget): The deadline.
        macs (dict): :func:`count_step_macs`'s result.
        peak (float, optional): Peak TFLOP/s for the MFU.
        mem (PeakMemory, optional): Memory meter.
        log (Callable): Takes progress lines.
        reserve_s (float): Time needed to start. Defaults to 150.
    """
    calls = [(PIXEL, 'mmpretrain'), (PIXEL, 'mmitpn compiled'),
             (MFM, 'mmitpn compiled')]
    if budget.left() < reserve_s:
        return _skipped('compiled', 'bf16', batch, calls, 'skipped: budget')
    for m in (steps.pix.backbone, steps.mfm.backbone,
              steps.mfm.teacher.module):
        m.forward = torch.compile(m.forward)
    for what, impl in calls[1:]:
        macs[(what, impl)] = macs[(what, 'mmitpn')]
    return time_calls(steps, calls, 'bf16', batch, 'compiled',
                      max(warmup, 2), repeat, budget, macs, peak, mem, log)


def format_throughput(result: dict, markdown: bool = False) -> str:
    """The rows as a table.

    Args:
        result (dict): :func:`run_throughput`'s result (with ``env``).
        markdown (bool): A Markdown table with the command, environment,
            goals and notes, instead of fixed-width text. Defaults to False.
    """
    head = ('phase', 'precision', 'batch', 'step', 'impl', 'median ms',
            'images/s', 'speed-up', 'peak MB', 'TFLOP/s', 'MFU', 'status')
    lines = []
    for r in result['rows']:
        ok = r.get('status') == 'ok'
        lines.append((
            r['phase'], r['precision'], str(r['batch'] or ''), r['step'],
            r['impl'],
            f"{r['median_ms']:.1f}" if ok else '',
            f"{r['images_s']:.0f}" if ok else '',
            f"{r['speedup']:.2f}x" if ok and r['speedup'] else '',
            f"{r['peak_mb']:.0f}" if ok and r['peak_mb'] is not None else '',
            f"{r['tflops']:.1f}" if ok else '',
            f"{r['mfu']:.1%}" if ok and r['mfu'] is not None else '',
            r.get('status', '')))
    goal_lines = [
        f"{g['goal']} (b{g['batch']}, {g['phase']}): {g['value']:.3g}, "
        f"target {g['cmp']} {g['target']}: "
        f"{'met' if g['met'] else 'not met'}"
        for g in result.get('goals', [])]
    if not markdown:
        widths = [max(len(x[i]) for x in lines + [head])
                  for i in range(len(head))]
        fmt = ' | '.join('{:<%d}' % w for w in widths)
        return '\n'.join([fmt.format(*head), '-+-'.join(
            '-' * w for w in widths)] + [fmt.format(*x) for x in lines] +
                         [''] + goal_lines)
    env = result.get('env', {})
    md = [f"Command: `{env.get('command', '')}`", '',
          'Machine: ' + ', '.join(f'{k} {v}' for k, v in env.items()
                                  if k != 'command') + '.', '',
          '| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
    md += ['| ' + ' | '.join(x) + ' |' for x in lines]
    md += [''] + ['- goal: ' + g for g in goal_lines]
    md += ['- ' + n for n in result['notes']]
    return '\n'.join(md) + '\n'
