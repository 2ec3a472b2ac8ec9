"""mmitpn.benchmark.cases: the timed calls, how rounds alternate and how
rows are summarised (no timing is asserted)."""
from contextlib import nullcontext

import pytest
import torch

from mmitpn.benchmark import cases as C
from mmitpn.benchmark import reference as ref_mod
from mmitpn.benchmark.reference import QUICK, OutputsDiffer, build_ours_mim


def test_train_step_with_a_loss_scaler():
    """The fp16-AMP step (GradScaler): a normal step moves the weights as
    the plain step does; a step whose scaled gradients overflow is skipped
    (weights unchanged) and the scale halved."""
    torch.manual_seed(0)
    plain = torch.nn.Linear(8, 4)
    scaled = torch.nn.Linear(8, 4)
    scaled.load_state_dict(plain.state_dict())
    x = torch.randn(16, 8)
    before = plain.weight.detach().clone()
    C.train_step(plain, lambda: plain(x).square().mean(), nullcontext)()
    scaler = torch.amp.GradScaler('cpu', init_scale=1024.)
    opt = C.make_optimizer(scaled)  # (its state-creating step decays too)
    C.train_step(scaled, lambda: scaled(x).square().mean(), nullcontext,
                 opt, scaler)()
    assert not torch.equal(plain.weight, before)
    assert torch.allclose(plain.weight, scaled.weight, atol=1e-7)
    assert plain.weight.grad is None  # gradients dropped after the step

    kept = scaled.weight.detach().clone()
    C.train_step(scaled, lambda: (scaled(x) * 1e36).sum(), nullcontext,
                 opt, scaler)()
    assert torch.equal(scaled.weight, kept)
    assert scaler.get_scale() == 512.
    # the same loss without the scaler (gradients ~1e36, finite) moves them
    kept = plain.weight.detach().clone()
    C.train_step(plain, lambda: (plain(x) * 1e36).sum(), nullcontext)()
    assert not torch.equal(plain.weight, kept)


def test_rounds_alternate_and_reverse():
    calls = []
    entries = [C.Entry('g', name, lambda n=name: calls.append(n),
                       None if name == 'A' else 'A') for name in 'AB']
    C.run_entries(entries, warmup=1, repeat=3, dev=torch.device('cpu'),
                  mem=None, log=lambda _: None)
    assert calls == ['A', 'B',  # warm-up
                     'A', 'B', 'B', 'A', 'A', 'B']
    assert all(len(e.times) == 3 for e in entries)


def test_summary_ratios_from_times():
    ref = C.Entry('g', 'ref', None)
    ref.times, ref.peak_mb = [10., 30., 20.], 100.
    ours = C.Entry('g', 'ours', None, 'ref')
    ours.times, ours.peak_mb = [5., 10., 40.], 25.
    rows = {r['impl']: r for r in C.summarize([ref, ours])}
    assert rows['ref']['speedup'] is None and rows['ref']['median_ms'] == 20.
    assert rows['ours']['median_ms'] == 10.
    assert rows['ours']['speedup'] == 2.  # median 20 / median 10
    assert rows['ours']['round_speedups'] == [2., 3., 0.5]
    assert rows['ours']['mem_ratio'] == 0.25


def test_unequal_models_are_not_timed(monkeypatch):
    real = ref_mod.copy_weights

    def broken(ref, ours, depths, prefix=''):
        real(ref, ours, depths, prefix)
        with torch.no_grad():
            list(ours.parameters())[-1].mul_(2.)

    monkeypatch.setattr(C, 'copy_weights', broken)
    with pytest.raises(OutputsDiffer, match='a: HiViT stage-3 map'):
        C.case_a(QUICK, torch.device('cpu'), nullcontext,
                 C.CaseOptions(quick=True))


def test_teacher_entry_runs_the_teacher_as_the_mfm_step_does():
    """The "teacher fwd only" entry runs under the step's autocast and in
    the model's teacher_dtype (it once ran fp32 in a --dtype bf16 run);
    its fp32 twin runs fp32 whatever teacher_dtype is."""
    img = torch.randn(1, 3, 64, 64)

    def bf16():
        return torch.autocast('cpu', dtype=torch.bfloat16)

    fp32_teacher = build_ours_mim(QUICK, mfm=True)
    bf16_teacher = build_ours_mim(QUICK, mfm=True, teacher_dtype='bf16')
    dtypes = {
        'fp32 teacher, bf16 autocast':
        C.teacher_fwd(fp32_teacher, img, bf16)()[0].dtype,
        'fp32 teacher, no autocast':
        C.teacher_fwd(fp32_teacher, img, nullcontext)()[0].dtype,
        'bf16 teacher':
        C.teacher_fwd(bf16_teacher, img, nullcontext)()[0].dtype,
        'bf16 teacher forced fp32':
        C.teacher_fwd(bf16_teacher, img, bf16, fp32=True)()[0].dtype,
    }
    assert dtypes == {
        'fp32 teacher, bf16 autocast': torch.bfloat16,
        'fp32 teacher, no autocast': torch.float32,
        'bf16 teacher': torch.bfloat16,
        'bf16 teacher forced fp32': torch.float32,
    }
    assert bf16_teacher.teacher_dtype == torch.bfloat16  # restored


def test_case_groups_and_entries():
    """Case b's entries all refer to mmpretrain's step; case c has one
    group per dense size plus the training step."""
    entries, notes = C.case_b(QUICK, torch.device('cpu'), nullcontext,
                              C.CaseOptions(quick=True))
    assert [e.impl for e in entries] == [
        'mmpretrain', 'mmitpn', 'mmitpn pixel+MFM', 'mmitpn teacher fwd only'
    ]
    assert [e.ref for e in entries] == [None] + ['mmpretrain'] * 3
    assert any(n.startswith('b: pixel predictions: max diff') for n in notes)
    assert C.num_groups('c', QUICK) == len(QUICK['dense']) + 1
