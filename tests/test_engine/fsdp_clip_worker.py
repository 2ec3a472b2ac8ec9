"""Two-process FSDP training steps of a tiny ITPNCLIP (frozen CLIP teacher).

Launched by ``test_fsdp_pretrain.py`` with ``torch.distributed.run``; not a
test itself. Every rank builds the model from ``MODEL_JSON``, wraps it with
:class:`ResumableFSDPStrategy` (full state dict) and runs ``STEPS`` training
steps on its own images; rank 0 writes ``OUT_JSON`` and the full state dict
to ``OUT_JSON`` + ``.pth`` and the trained student, flattened, to
``OUT_JSON`` + ``.student.pth``. Usage::

    python -m torch.distributed.run --nproc_per_node 2 \\
        fsdp_clip_worker.py MODEL_JSON OUT_JSON
"""
import json
import sys

import torch
import torch.distributed as dist
from mmengine.dist import all_gather, get_rank, get_world_size
from mmpretrain.structures import DataSample
from torch.distributed.fsdp import FullyShardedDataParallel as FSDP

from mmitpn.engine.strategies import ResumableFSDPStrategy
from mmitpn.registry import MODELS
from mmitpn.utils import close_dist

STEPS = 2


def batch(rank: int, n: int = 2) -> dict:
    """Random images and 6-of-16 patch masks, different on every rank.

    Args:
        rank (int): The process's rank (seeds the data).
        n (int): Images. Defaults to 2.

    Returns:
        dict: ``inputs`` (uint8 images) and ``data_samples`` with masks.
    """
    g = torch.Generator().manual_seed(100 + rank)
    inputs = torch.randint(0, 256, (n, 3, 64, 64), generator=g,
                           dtype=torch.uint8)
    samples = []
    for _ in range(n):
        mask = torch.zeros(16, dtype=torch.bool)
        mask[torch.randperm(16, generator=g)[:6]] = True
        ds = DataSample()
        ds.set_field(mask.view(4, 4), 'mask')
        samples.append(ds)
    return dict(inputs=inputs, data_samples=samples)


def flat(tensors) -> torch.Tensor:
    """Concatenate tensors into one flat float32 vector (a copy).

    Args:
        tensors (Iterable[torch.Tensor]): The tensors.

    Returns:
        torch.Tensor: Their elements.
    """
    return torch.cat([t.detach().float().flatten() for t in tensors])


def main(model_json: str, out: str) -> None:
    """Build, wrap and train; record what the test checks.

    Args:
        model_json (str): JSON file with the ITPNCLIP config.
        out (str): JSON file rank 0 writes (its state dict next to it).
    """
    dist.init_process_group('gloo')  # torchrun's environment, CPU
    rank = get_rank()
    with open(model_json) as f:
        cfg = json.load(f)
    torch.manual_seed(0)  # the same student on every rank
    model = MODELS.build(cfg)
    clip_visual = flat(model.teacher.visual.state_dict().values())
    clip_shapes = [tuple(p.shape) for p in model.teacher.parameters()]
    strategy = ResumableFSDPStrategy(
        model_wrapper=dict(
            type='MMFullyShardedDataParallel',
            use_orig_params=True,
            device_id='cpu'),
        state_dict_cfg='full')
    wrapped, optim = strategy.prepare(
        model, optim_wrapper=dict(optimizer=dict(type='AdamW', lr=1e-3)))
    inner = wrapped.module
    student = [p for n, p in inner.named_parameters()
               if not n.startswith('teacher.')]
    local = sum(p.numel() for p in student)
    with FSDP.summon_full_params(wrapped, writeback=False):
        full = sum(p.numel() for p in student)
        before = flat(student)
    losses = []
    for _ in range(STEPS):
        log = wrapped.train_step(batch(rank), optim_wrapper=optim)
        losses.append(float(log['loss']))
    with FSDP.summon_full_params(wrapped, writeback=False):
        after = flat(student)
    img = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(7))
    mine = dict(
        teacher=flat(inner.teacher.visual.state_dict().values()),
        target=inner.teacher(img).flatten(),
        student=after,
        numel=torch.tensor([local, full]),
        loss=torch.tensor(losses, dtype=torch.float64))
    gathered = {k: all_gather(v) for k, v in mine.items()}
    state = strategy.model_state_dict()  # every rank takes part
    if rank != 0:
        return
    result = {
        f'{k}_max_abs_diff': float((vs[1] - vs[0]).abs().max())
        for k, vs in gathered.items() if k != 'numel'
    }
    result.update(
        world_size=get_world_size(),
        wrapper=type(wrapped).__name__,
        teacher_shapes_whole=[tuple(p.shape)
                              for p in inner.teacher.parameters()]
        == clip_shapes,
        teacher_requires_grad=any(p.requires_grad
                                  for p in inner.teacher.parameters()),
        teacher_vs_clip_max_abs=float(
            (mine['teacher'] - clip_visual).abs().max()),
        student_moved=float((after - before).abs().max()),
        local_numel=[int(v[0]) for v in gathered['numel']],
        full_numel=int(full),
        losses=[v.tolist() for v in gathered['loss']],
        state_keys=sorted(state))
    torch.save(state, out + '.pth')
    torch.save(after, out + '.student.pth')
    with open(out, 'w') as f:
        json.dump(result, f, indent=1)


if __name__ == '__main__':
    try:
        main(sys.argv[1], sys.argv[2])
    finally:
        close_dist()  # no abort in the group's destructor at exit
