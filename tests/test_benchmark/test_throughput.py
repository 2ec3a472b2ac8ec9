"""mmitpn.benchmark.throughput: the pre-training step benchmark of the GPU
check, run here on a CPU with a tiny architecture (no timing is
asserted)."""
import pytest
import torch

from mmitpn.benchmark import flops as F
from mmitpn.benchmark import throughput as T
from mmitpn.benchmark.reference import QUICK, build_ours_backbone, \
    pixel_models


def oom_above(limit, seen):
    def try_batch(b):
        seen.append(b)
        if b > limit:
            raise torch.cuda.OutOfMemoryError('CUDA out of memory.')
        return 0.01
    return try_batch


def test_largest_batch_doubles_until_out_of_memory():
    seen = []
    best, tries = T.largest_batch(oom_above(16, seen), 2, 1024,
                                  T.Budget(100))
    assert best == 16 and seen == [2, 4, 8, 16, 32]
    assert tries == [[2, 'fits'], [4, 'fits'], [8, 'fits'], [16, 'fits'],
                     [32, 'out of memory']]
    # the cap stops it; an allocator message counts as out of memory too
    assert T.largest_batch(oom_above(1000, []), 2, 8, T.Budget(100))[0] == 8

    def message(b):
        raise RuntimeError('CUDA error: out of memory')

    assert T.largest_batch(message, 4, 8, T.Budget(100)) == (
        None, [[4, 'out of memory']])


def test_largest_batch_keeps_to_the_budget_and_reports_other_errors():
    assert T.largest_batch(oom_above(16, []), 2, 64, T.Budget(-1)) == (
        None, [[2, 'skipped: budget']])

    # after a 2 s try the next one (twice the work, three times over for
    # the margin: 12 s) does not fit in 10 s and is not made
    def slow(b):
        return 2.

    best, tries = T.largest_batch(slow, 2, 64, T.Budget(10))
    assert best == 2 and tries == [[2, 'fits'], [4, 'skipped: budget']]

    def broken(b):
        raise ValueError('not an allocation problem')

    with pytest.raises(ValueError, match='not an allocation'):
        T.largest_batch(broken, 2, 64, T.Budget(100))


def _row(phase, step, impl, ms, precision='bf16', batch=64, mfu=None,
         speedup=None):
    return dict(phase=phase, step=step, impl=impl, median_ms=ms,
                precision=precision, batch=batch, mfu=mfu, speedup=speedup,
                status='ok')


def test_goals_read_from_rows():
    rows = [
        _row('batch', T.PIXEL, 'mmpretrain', 30.),
        _row('batch', T.PIXEL, 'mmitpn', 20., mfu=0.3, speedup=1.5),
        _row('batch', T.MFM, 'mmitpn', 40., speedup=0.75),
        _row('batch', T.TEACHER, 'mmitpn', 15.),
        _row('max batch', T.PIXEL, 'mmitpn', 250., batch=512, mfu=0.45),
        _row('batch', T.PIXEL, 'mmitpn', 25., precision='fp16', speedup=1.1),
        dict(phase='compiled', step=T.PIXEL, impl='mmitpn compiled',
             precision='bf16', batch=64, status='skipped: budget'),
    ]
    got = {g['goal']: g for g in T.goals(rows)}
    mfu = got['mmitpn pixel step MFU, bf16']
    assert (mfu['value'], mfu['batch'], mfu['met']) == (0.45, 512, True)
    assert got['mmitpn / mmpretrain images/s, pixel step, bf16']['met']
    assert not got['mmitpn / mmpretrain images/s, pixel step, fp16']['met']
    overhead = got['pixel+MFM step / (pixel step + teacher fwd), bf16']
    assert overhead['value'] == pytest.approx(40 / 35)
    assert overhead['cmp'] == '<=' and not overhead['met']
    assert len(got) == 4  # fp16 has no MFM / teacher rows


@pytest.fixture(scope='module')
def steps():
    built = pixel_models(QUICK, torch.device('cpu'), None, [],
                         check_batch=2)
    return T.Steps(built, QUICK, torch.device('cpu'))


def test_phase_rows_when_nothing_fits_or_a_call_fails(steps):
    calls = [(T.PIXEL, 'mmpretrain'), (T.PIXEL, 'mmitpn')]
    macs = {c: 1 for c in calls}
    log = []
    late = T.time_calls(steps, calls, 'bf16', 2, 'batch', 1, 3,
                        T.Budget(-1), macs, None, None, log.append)
    assert [(r['impl'], r['status']) for r in late] == [
        ('mmpretrain', 'skipped: budget'), ('mmitpn', 'skipped: budget')]
    # an unknown precision fails in its call: reported, not raised
    bad = T.time_calls(steps, calls, 'fp8', 2, 'batch', 1, 3,
                       T.Budget(100), macs, None, None, log.append)
    assert all(r['status'].startswith("error: KeyError: 'fp8'")
               for r in bad)


def test_teacher_count_is_the_backbone_on_the_whole_image(steps):
    notes = []
    macs = T.count_step_macs(steps, notes)
    whole = F.complexity(build_ours_backbone(QUICK).eval(),
                         torch.randn(1, 3, 64, 64))['flops']
    assert macs[(T.TEACHER, 'mmitpn')] == whole
    # a step counts its forward 3 times (forward, backward); the MFM step
    # adds its teacher once
    assert macs[(T.PIXEL, 'mmitpn')] % 3 == 0
    mfm_student = macs[(T.MFM, 'mmitpn')] - whole
    assert mfm_student % 3 == 0 and mfm_student > macs[(T.PIXEL, 'mmitpn')]
    assert macs[(T.PIXEL, 'mmpretrain')] == macs[(T.PIXEL, 'mmitpn')]
    assert notes[0].startswith('model GMACs per image')


def test_smoke_throughput_on_cpu():
    """Smoke: every phase of the GPU benchmark runs end to end on a CPU
    with the tiny architecture (bf16 autocast and fp16 with a loss scaler,
    the equality check, FLOP counts, alternating rounds, the memory round,
    doubling to the cap, rows, goals, saving after each phase). It does
    not check CUDA kernels, running out of GPU memory, torch.compile, or
    any speed, memory or MFU value."""
    updates = []
    result = T.run_throughput(
        QUICK, torch.device('cpu'), 2, ('bf16', 'fp16'), max_batch=4,
        warmup=1, repeat=1, budget_s=600, peak=1.,
        log=lambda _: None, on_update=lambda r: updates.append(
            len(r['rows'])))
    rows = result['rows']
    assert all(r['status'] == 'ok' for r in rows), rows
    batch = [(r['precision'], r['step'], r['impl']) for r in rows
             if r['phase'] == 'batch']
    assert batch == [(p, s, i) for p in ('bf16', 'fp16')
                     for s, i in ((T.PIXEL, 'mmpretrain'),
                                  (T.PIXEL, 'mmitpn'), (T.MFM, 'mmitpn'),
                                  (T.TEACHER, 'mmitpn'))]
    top = [(r['precision'], r['step'], r['impl'], r['batch']) for r in rows
           if r['phase'] == 'max batch']
    assert top == [(p, s, i, 4) for p in ('bf16', 'fp16')
                   for s, i in ((T.PIXEL, 'mmitpn'), (T.PIXEL, 'mmpretrain'),
                                (T.MFM, 'mmitpn'))]
    macs = result['macs_per_image']
    for r in rows:
        step_s = r['median_ms'] / 1e3
        assert r['images_s'] == pytest.approx(r['batch'] / step_s)
        per_image = macs[f"{r['step']} {r['impl']}"]
        assert r['mfu'] == pytest.approx(
            2 * per_image * r['batch'] / step_s / 1e12)
    assert updates == sorted(updates) and updates[-1] == len(rows)
    assert any(n.startswith('b: pixel predictions') for n in
               result['notes'])
    assert 'b2 fits, b4 fits' not in ' '.join(result['notes'])
    assert any(n.endswith('b4 fits') for n in result['notes'])
    assert {g['goal'] for g in result['goals']} >= {
        'mmitpn pixel step MFU, bf16',
        'pixel+MFM step / (pixel step + teacher fwd), fp16'}
    text = T.format_throughput(dict(result, env=dict(command='c')), True)
    assert text.count('| max batch |') == 6 and '- goal: ' in text
