"""Two-process FSDP pre-training of the demo iTPN (pixel + MFM, EMA teacher).

Launched by ``test_fsdp_pretrain.py`` with ``torch.distributed.run``; not a
test itself. It runs ``tools/train.py CONFIG --launcher pytorch --strategy
fsdp`` in-process, where CONFIG is the tiny demo pre-training config
shrunk to a few iterations plus :class:`FSDPRecordHook`. Usage::

    python -m torch.distributed.run --nproc_per_node 2 \\
        fsdp_pretrain_worker.py WORK_DIR [MAX_ITERS [--resume]]

Rank 0 writes ``WORK_DIR/fsdp_result.json``.
"""
import json
import math
import os
import os.path as osp
import sys

import torch
from mmengine.dist import all_gather, get_rank, get_world_size
from mmengine.hooks import Hook
from mmengine.logging import MessageHub
from mmengine.registry import HOOKS
from torch.distributed.fsdp import FullyShardedDataParallel as FSDP

from mmitpn.utils import close_dist

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(REPO, 'configs', 'itpn',
                  'itpn-tiny_pixel-mfm_1xb32-200e_demo.py')
MAX_ITERS = 3
MOMENTUM = 0.5  # large, so that the teacher visibly moves


def flat(tensors) -> torch.Tensor:
    """Concatenate tensors into one flat float32 vector.

    Args:
        tensors (Iterable[torch.Tensor]): The tensors.

    Returns:
        torch.Tensor: Their elements, flattened and concatenated (a copy).
    """
    return torch.cat([t.detach().float().flatten().cpu() for t in tensors])


def student_params(model):
    """The parameters of a model that are not the teacher's.

    Args:
        model (nn.Module): The unwrapped ITPNMIM.

    Returns:
        list[nn.Parameter]: Backbone, neck and head parameters.
    """
    return [
        p for n, p in model.named_parameters() if not n.startswith('teacher.')
    ]


@HOOKS.register_module()
class FSDPRecordHook(Hook):
    """Check every EMA step against the rule on the full student, then
    gather students, teachers and losses of all ranks after training.

    Args:
        out (str): JSON file written by rank 0 after training.
    """
    priority = 'LOW'  # after EMATeacherHook (ABOVE_NORMAL)

    def __init__(self, out: str):
        self.out = out
        self.teacher_before = None
        self.ema_errors = []
        self.teacher_moves = []
        self.losses = []
        self.sharded = None

    @staticmethod
    def _model(runner):
        return runner.model.module

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        """Keep the teacher before this iteration's EMA step.

        Args:
            runner (Runner): The runner.
            batch_idx (int): Index of the batch.
            data_batch (dict, optional): The batch. Defaults to None.
        """
        model = self._model(runner)
        self.teacher_before = flat(model.teacher.module.parameters())
        if self.sharded is None:  # this rank's shard vs the full model
            local = sum(p.numel() for p in student_params(model))
            with FSDP.summon_full_params(runner.model, writeback=False):
                full = sum(p.numel() for p in student_params(model))
            self.sharded = torch.tensor([local, full])

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        """Compare the teacher with ``(1 - m) * old + m * full student``.

        Args:
            runner (Runner): The runner.
            batch_idx (int): Index of the batch.
            data_batch (dict, optional): The batch. Defaults to None.
            outputs (dict, optional): Logged outputs. Defaults to None.
        """
        model = self._model(runner)
        self.losses.append(float(torch.as_tensor(outputs['loss']).detach()))
        teacher = model.teacher
        steps = int(teacher.steps) - 1  # the step this update used
        max_iters = MessageHub.get_current_instance().get_info('max_iters')
        cos = (math.cos(math.pi * steps / float(max_iters)) + 1) / 2
        m = teacher.end_momentum - (teacher.end_momentum -
                                    teacher.momentum) * cos
        with FSDP.summon_full_params(runner.model, writeback=False):
            student = flat(model.backbone.parameters())
        expected = self.teacher_before.clone().mul_(1 - m).add_(
            student, alpha=m)
        now = flat(teacher.module.parameters())
        self.ema_errors.append(float((now - expected).abs().max()))
        self.teacher_moves.append(
            float((now - self.teacher_before).abs().max()))

    def after_train(self, runner):
        """Gather the full students, teachers and losses; rank 0 writes.

        Args:
            runner (Runner): The runner.
        """
        model = self._model(runner)
        with FSDP.summon_full_params(runner.model, writeback=False):
            student = flat(model.backbone.parameters())
        mine = dict(
            student=student,
            teacher=flat(model.teacher.module.parameters()),
            loss=torch.tensor(self.losses, dtype=torch.float64),
            numel=self.sharded)
        gathered = {k: all_gather(v) for k, v in mine.items()}
        if get_rank() != 0:
            return
        result = {
            f'{k}_max_abs_diff': float((vs[1] - vs[0]).abs().max())
            for k, vs in gathered.items()
        }
        result.update(
            world_size=get_world_size(),
            runner=type(runner).__name__,
            wrapper=type(runner.model).__name__,
            teacher_steps=int(model.teacher.steps),
            ema_errors=self.ema_errors,
            teacher_moves=self.teacher_moves,
            teacher_vs_student_max_abs=float(
                (mine['teacher'] - student).abs().max()),
            local_numel=[int(v[0]) for v in gathered['numel']],
            full_numel=int(self.sharded[1]),
            losses=[v.tolist() for v in gathered['loss']])
        with open(self.out, 'w') as f:
            json.dump(result, f, indent=1)


def write_config(work_dir: str, max_iters: int = MAX_ITERS) -> str:
    """Write the shrunk demo pre-training config (one file per rank, so
    that no rank reads a file another one is writing).

    Args:
        work_dir (str): Where the config (and the run) go.
        max_iters (int): Length of the run (a checkpoint at its end).

    Returns:
        str: Path of the config file.
    """
    text = f"""_base_ = [{CONFIG!r}]
# FSDPRecordHook is registered by this module (on PYTHONPATH, see main)
custom_imports = dict(imports=['fsdp_pretrain_worker'],
                      allow_failed_imports=False)
model = dict(teacher=dict(momentum={MOMENTUM}))
train_dataloader = dict(
    batch_size=2, num_workers=0, persistent_workers=False,
    dataset=dict(data_root={osp.join(REPO, 'data/demo/pretrain')!r}))
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop',
                 max_iters={max_iters})
param_scheduler = [dict(type='LinearLR', start_factor=0.5, by_epoch=False,
                        begin=0, end={MAX_ITERS})]
default_hooks = dict(
    logger=dict(interval=1),
    checkpoint=dict(interval={max_iters}, by_epoch=False))
custom_hooks = [
    dict(type='mmitpn.EMATeacherHook'),
    dict(type='FSDPRecordHook',
         out={osp.join(work_dir, 'fsdp_result.json')!r}),
]
"""
    path = osp.join(work_dir, f'fsdp_cfg_rank{os.environ["RANK"]}.py')
    with open(path, 'w') as f:
        f.write(text)
    return path


def main(work_dir: str, max_iters: int = MAX_ITERS,
         resume: bool = False) -> None:
    """Run ``tools/train.py --strategy fsdp`` on the shrunk config.

    Args:
        work_dir (str): Work directory of the run.
        max_iters (int): Length of the run.
        resume (bool): ``--resume`` from the newest checkpoint of
            ``work_dir``.
    """
    path = osp.join(REPO, 'tools', 'train.py')
    here = osp.dirname(osp.abspath(__file__))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [here, REPO, os.environ.get('PYTHONPATH', '')]))
    # this rank becomes the tool (same process, same torchrun environment)
    os.execve(sys.executable, [
        sys.executable, path,
        write_config(work_dir, max_iters), '--launcher', 'pytorch',
        '--strategy', 'fsdp', '--work-dir', work_dir
    ] + (['--resume'] if resume else []), env)


if __name__ == '__main__':
    main(sys.argv[1],
         int(sys.argv[2]) if len(sys.argv) > 2 else MAX_ITERS,
         '--resume' in sys.argv[3:])
    close_dist()  # no abort in the group's destructor at exit
