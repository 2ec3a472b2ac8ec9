import copy

import pytest
import torch
from conftest import ToyImages, tiny_itpn_cfg
from mmengine.hooks import Hook
from mmengine.runner import Runner

from mmitpn.engine import EMATeacherHook


class RecordStudent(Hook):
    priority = 'HIGHEST'  # before the teacher update of the same iteration

    def __init__(self):
        self.snapshots = []

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        model = runner.model
        self.snapshots.append(copy.deepcopy(model.backbone.state_dict()))


class CrashAt(Hook):
    priority = 'LOWEST'  # after the checkpoint of that iteration is saved

    def __init__(self, iteration):
        self.iteration = iteration

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        if runner.iter + 1 == self.iteration:
            raise KeyboardInterrupt('simulated crash')


def make_runner(work_dir, max_iters, hooks=(), resume=False, teacher=None,
                interval=None):
    return Runner(
        model=tiny_itpn_cfg(teacher=teacher),
        work_dir=str(work_dir),
        train_dataloader=dict(
            dataset=ToyImages(8),
            sampler=dict(type='InfiniteSampler', shuffle=True),
            collate_fn=dict(type='default_collate'),
            batch_size=2,
            num_workers=0),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        optim_wrapper=dict(optimizer=dict(type='AdamW', lr=1e-3)),
        param_scheduler=dict(
            type='CosineAnnealingLR', T_max=max_iters, by_epoch=False),
        default_hooks=dict(
            checkpoint=dict(
                type='CheckpointHook', interval=interval or max_iters,
                by_epoch=False),
            logger=dict(type='LoggerHook', interval=1),
            # resuming a runner checkpoint needs the allow-list
            weights_only_load=dict(type='mmitpn.WeightsOnlyLoadHook')),
        custom_hooks=[dict(type='mmitpn.EMATeacherHook'), *hooks],
        randomness=dict(seed=0),
        resume=resume,
        default_scope='mmpretrain')


def test_teacher_is_the_closed_form_ema(tmp_path):
    m = 0.25
    rec = RecordStudent()
    runner = make_runner(
        tmp_path, 4, hooks=[rec],
        teacher=dict(type='ExponentialMovingAverage', momentum=m))
    init = copy.deepcopy(runner.model.backbone.state_dict())
    runner.train()
    expected = {k: v.clone() for k, v in init.items()}
    for snap in rec.snapshots:
        for k, v in expected.items():
            if v.is_floating_point() and k in dict(
                    runner.model.backbone.named_parameters()):
                v.mul_(1 - m).add_(snap[k], alpha=m)
    teacher = runner.model.teacher.module.state_dict()
    for name, _ in runner.model.backbone.named_parameters():
        torch.testing.assert_close(teacher[name], expected[name],
                                   rtol=1e-6, atol=1e-7, msg=name)
    assert int(runner.model.teacher.steps) == 5  # copy + 4 updates
    assert not any(p.requires_grad for p in runner.model.teacher.parameters())


def test_resume_is_exact(tmp_path):
    k = 3
    straight = make_runner(tmp_path / 'a', 2 * k)
    straight.train()
    crashed = make_runner(tmp_path / 'b', 2 * k, hooks=[CrashAt(k)],
                          interval=k)
    with pytest.raises(KeyboardInterrupt):
        crashed.train()
    resumed = make_runner(tmp_path / 'b', 2 * k, resume=True, interval=k)
    resumed.train()
    a, b = straight.model.state_dict(), resumed.model.state_dict()
    assert set(a) == set(b)
    assert any(key.startswith('teacher.') for key in a)
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_nonfinite_loss_stops_without_touching_the_teacher(tmp_path):
    runner = make_runner(tmp_path, 2)
    hook = EMATeacherHook()
    runner.model.teacher.update_parameters(runner.model.backbone)
    before = copy.deepcopy(runner.model.teacher.state_dict())
    with pytest.raises(FloatingPointError, match='iteration 1 .*loss_pixel'):
        hook.after_train_iter(
            runner, 0, outputs=dict(loss=torch.tensor(float('nan')),
                                    loss_pixel=torch.tensor(float('nan'))))
    after = runner.model.teacher.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_hook_needs_a_teacher(tmp_path):
    runner = make_runner(tmp_path, 1)
    runner.model.teacher = None
    with pytest.raises(RuntimeError, match='needs a model with a teacher'):
        EMATeacherHook().before_train(runner)
    with pytest.raises(ValueError, match='interval'):
        EMATeacherHook(interval=0)
