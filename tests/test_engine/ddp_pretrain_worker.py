"""Two-process DDP pre-training of the tiny iTPN (pixel + MFM, EMA teacher).

Launched by ``test_ddp_pretrain.py`` with ``torch.distributed.run``; not a
test itself. Usage::

    python -m torch.distributed.run --nproc_per_node 2 \\
        ddp_pretrain_worker.py WORK_DIR

After 4 iterations each rank all-gathers its student parameters, teacher
parameters and last loss; rank 0 writes ``WORK_DIR/ddp_result.json`` with
the largest difference between ranks of each.
"""
import json
import os.path as osp
import sys

import torch
from mmengine.config import Config
from mmengine.dist import all_gather, get_rank, get_world_size
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.runner import Runner

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
from conftest import ToyImages, tiny_itpn_cfg  # noqa: E402

from mmitpn.utils import close_dist, setup_cpu_dist  # noqa: E402

MAX_ITERS = 4


def flat(params) -> torch.Tensor:
    return torch.cat([p.detach().float().flatten().cpu() for p in params])


def student_params(model):
    return [p for n, p in model.named_parameters()
            if not n.startswith('teacher.')]


class Record(Hook):
    """Keep the teacher right after EMATeacherHook initialised it (this
    runs after it: lower priority) and the loss of every iteration."""
    priority = 'LOW'

    def __init__(self):
        self.initial_teacher = None
        self.losses = []

    def before_train(self, runner):
        model = runner.model.module if is_model_wrapper(runner.model) \
            else runner.model
        self.initial_teacher = flat(model.teacher.module.parameters())

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        self.losses.append(float(outputs['loss']))


def main(work_dir: str) -> None:
    cfg = Config(
        dict(
            launcher='pytorch',
            env_cfg=dict(dist_cfg=dict(backend='gloo')),
            randomness=dict(seed=0)))
    # gloo, device_ids=None and the process group from the torchrun env
    # when there is no CUDA (as tools/train.py does)
    setup_cpu_dist(cfg, init_process_group=True)
    record = Record()
    runner = Runner(
        model=tiny_itpn_cfg(),
        work_dir=work_dir,
        train_dataloader=dict(
            dataset=ToyImages(16),
            sampler=dict(type='DefaultSampler', shuffle=True),
            collate_fn=dict(type='default_collate'),
            batch_size=2,
            num_workers=0),
        train_cfg=dict(by_epoch=False, max_iters=MAX_ITERS),
        optim_wrapper=dict(optimizer=dict(type='AdamW', lr=1e-3)),
        default_hooks=dict(
            checkpoint=dict(type='CheckpointHook', interval=MAX_ITERS,
                            by_epoch=False),
            logger=dict(type='LoggerHook', interval=1)),
        custom_hooks=[dict(type='mmitpn.EMATeacherHook'), record],
        launcher=cfg.launcher,
        env_cfg=cfg.env_cfg,
        randomness=cfg.randomness,
        default_scope='mmpretrain',
        cfg=cfg)  # the runner reads model_wrapper_cfg from here
    runner.train()

    wrapped = is_model_wrapper(runner.model)
    model = runner.model.module if wrapped else runner.model
    mine = dict(
        student=flat(student_params(model)),
        teacher=flat(model.teacher.module.parameters()),
        loss=torch.tensor([record.losses[-1]], dtype=torch.float64))
    gathered = {k: all_gather(v) for k, v in mine.items()}
    if get_rank() != 0:
        return
    result = {
        f'{k}_max_abs_diff': max(
            float((v - vs[0]).abs().max()) for v in vs[1:])
        for k, vs in gathered.items()
    }
    result.update(
        world_size=get_world_size(),
        wrapper=type(runner.model).__name__,
        teacher_steps=int(model.teacher.steps),
        teacher_update_max_abs=float(
            (mine['teacher'] - record.initial_teacher).abs().max()),
        teacher_vs_student_max_abs=float(
            (mine['teacher'] - flat(model.backbone.parameters())).abs().max()),
        last_losses=[float(v) for v in gathered['loss']],
        losses_rank0=record.losses,
        num_student_params=int(mine['student'].numel()))
    with open(osp.join(work_dir, 'ddp_result.json'), 'w') as f:
        json.dump(result, f, indent=1)


if __name__ == '__main__':
    main(sys.argv[1])
    close_dist()  # no abort in the group's destructor at exit
