"""Two-process DDP training of the tiny demo Mask R-CNN on CPU (gloo).

Launched by ``test_ddp_detection.py`` with ``torch.distributed.run``; not a
test itself. Usage::

    python -m torch.distributed.run --nproc_per_node 2 \\
        ddp_detection_worker.py WORK_DIR

The config is prepared the way ``tools/train.py`` prepares it (host
modules, SyncBN -> BN, gloo), then trained for a few iterations from
scratch on 1 image per rank. Each rank all-gathers its parameters, BN
buffers and losses; rank 0 writes ``WORK_DIR/ddp_det_result.json``.
"""
import json
import os.path as osp
import sys
import warnings

import torch
from mmengine.config import Config
from mmengine.dist import all_gather, get_rank, get_world_size
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.runner import Runner

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, REPO)
from mmitpn.utils import (close_dist, register_host_modules,  # noqa: E402
                          setup_cpu_dist)

CONFIG = osp.join(REPO, 'configs', 'itpn',
                  'itpn-tiny_mask-rcnn_1xb4-6e_demo.py')
MAX_ITERS = 3


def flat(tensors) -> torch.Tensor:
    """Concatenate tensors into one flat float64 vector.

    Args:
        tensors (Iterable[torch.Tensor]): The tensors.

    Returns:
        torch.Tensor: Their elements, flattened and concatenated.
    """
    return torch.cat(
        [t.detach().double().flatten().cpu() for t in tensors])


class RecordLosses(Hook):
    """Keep the total loss and the logged loss terms of every iteration."""
    priority = 'LOW'

    def __init__(self):
        self.losses = []
        self.terms = []

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        """Record ``outputs['loss']`` and the names of the loss terms.

        Args:
            runner (Runner): The runner.
            batch_idx (int): Index of the batch in the epoch.
            data_batch (dict, optional): The batch. Defaults to None.
            outputs (dict, optional): The logged outputs of the train step.
                Defaults to None.
        """
        self.losses.append(float(torch.as_tensor(outputs['loss']).detach()))
        self.terms = sorted(k for k in outputs if k.startswith('loss'))


def build_cfg(work_dir: str) -> Config:
    """The demo Mask R-CNN config, shrunk to a few CPU iterations.

    Args:
        work_dir (str): Work directory of the run.

    Returns:
        Config: Train-only config for the ``'pytorch'`` launcher.
    """
    cfg = Config.fromfile(CONFIG)
    cfg.merge_from_dict({
        'model.backbone.init_cfg': None,  # no pre-training checkpoint
        'model.neck.init_cfg': None,
        'train_dataloader.batch_size': 1,
        'train_dataloader.num_workers': 0,
        'train_dataloader.persistent_workers': False,
        'train_dataloader.dataset.data_root':
        osp.join(REPO, 'data/demo/coco/'),
    })
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=MAX_ITERS,
                         val_interval=MAX_ITERS + 1)
    cfg.param_scheduler = None
    for key in ('val_dataloader', 'val_cfg', 'val_evaluator',
                'test_dataloader', 'test_cfg', 'test_evaluator'):
        cfg[key] = None
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook',
                                        interval=MAX_ITERS, by_epoch=False)
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=1)
    cfg.work_dir = work_dir
    cfg.launcher = 'pytorch'
    return cfg


def main(work_dir: str) -> None:
    """Train on 2 ranks and write the cross-rank differences (rank 0).

    Args:
        work_dir (str): Work directory; receives ``ddp_det_result.json``.
    """
    cfg = build_cfg(work_dir)
    register_host_modules(cfg)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        setup_cpu_dist(cfg, 'pytorch', init_process_group=True)
    sync_bn_warnings = [
        str(w.message) for w in caught if 'SyncBN' in str(w.message)
    ]
    record = RecordLosses()
    runner = Runner.from_cfg(cfg)
    runner.register_hook(record)
    runner.train()

    wrapped = is_model_wrapper(runner.model)
    model = runner.model.module if wrapped else runner.model
    bn_buffers = [
        b for n, b in model.named_buffers()
        if n.endswith(('running_mean', 'running_var'))
    ]
    mine = dict(
        params=flat(model.parameters()),
        bn_buffers=flat(bn_buffers),
        losses=torch.tensor(record.losses, dtype=torch.float64))
    gathered = {k: all_gather(v) for k, v in mine.items()}
    if get_rank() != 0:
        return
    norm_types = sorted({
        type(m).__name__
        for n, m in model.named_modules()
        if n.startswith('roi_head') and 'Norm' in type(m).__name__
    })
    result = {
        f'{k}_max_abs_diff': float((vs[1] - vs[0]).abs().max())
        for k, vs in gathered.items()
    }
    result.update(
        world_size=get_world_size(),
        wrapper=type(runner.model).__name__,
        roi_head_norm_types=norm_types,
        sync_bn_warnings=sync_bn_warnings,
        losses=[v.tolist() for v in gathered['losses']],
        loss_terms=record.terms,
        num_params=int(mine['params'].numel()),
        checkpoint=osp.exists(osp.join(work_dir, f'iter_{MAX_ITERS}.pth')))
    with open(osp.join(work_dir, 'ddp_det_result.json'), 'w') as f:
        json.dump(result, f, indent=1)


if __name__ == '__main__':
    main(sys.argv[1])
    close_dist()  # no abort in the group's destructor at exit
