"""Train a model of any host (mmdet, mmseg, mmpretrain) with mmitpn.

Examples::

    python tools/train.py CONFIG [--work-dir DIR] [--amp] [--resume [CKPT]]
    bash tools/dist_train.sh CONFIG 8 [--amp]
    bash tools/dist_train.sh CONFIG 8 --strategy fsdp
"""
import argparse
import os
import os.path as osp
import sys

try:
    import mmitpn  # noqa: F401
except ImportError:  # not installed: run from a checkout
    sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
    import mmitpn  # noqa: F401

from mmengine.config import Config, DictAction
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from mmitpn.utils import (close_dist, degrade_sync_bn, register_host_modules,
                          run_tool, setup_amp, setup_cpu_dist, setup_fsdp)
from mmitpn.utils.run_setup import prepare_train, set_work_dir


def parse_args():
    parser = argparse.ArgumentParser(
        description='Train a model (mmdet / mmseg / mmpretrain host) with '
        'mmitpn')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--amp',
        action='store_true',
        default=False,
        help='enable automatic-mixed-precision training (bfloat16 on CPU)')
    parser.add_argument(
        '--auto-scale-lr',
        action='store_true',
        help='enable automatically scaling LR by the total batch size')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='If a checkpoint path is given, resume from it; without one, '
        'resume from the latest checkpoint in the work directory.')
    parser.add_argument(
        '--allow-unsafe-load',
        action='store_true',
        help='trust the checkpoints of this run: let their pickles create '
        'objects beyond tensors and the allow-listed types (logged at '
        'WARNING); only for files you trust')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override some settings in the used config, the key-value pair '
        'in xxx=yyy format will be merged into config file. If the value to '
        'be overwritten is a list, it should be like key="[a,b]" or key=a,b '
        'It also allows nested list/tuple values, e.g. key="[(a,b),(c,d)]" '
        'Note that the quotation marks are necessary and that no white space '
        'is allowed.')
    parser.add_argument(
        '--strategy',
        choices=['fsdp'],
        default=None,
        help='fsdp: shard the model with MMEngine\'s FlexibleRunner and '
        'FSDPStrategy (needs a distributed launcher; full-state-dict '
        'checkpoints; an EMA teacher stays whole on every rank). Default: '
        'the runner of the config (DDP when distributed).')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    # torch.distributed.launch of PyTorch >= 2.0 passes `--local-rank`.
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def main():
    args = parse_args()
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)

    register_host_modules(cfg)

    set_work_dir(cfg, args.config, args.work_dir)

    if args.amp:
        setup_amp(cfg)

    if args.auto_scale_lr:
        if 'auto_scale_lr' in cfg and \
                'base_batch_size' in cfg.auto_scale_lr:
            cfg.auto_scale_lr.enable = True
        else:
            raise RuntimeError('`--auto-scale-lr` needs '
                               '`auto_scale_lr=dict(base_batch_size=...)` '
                               'in the config.')

    # --resume, --allow-unsafe-load, the config and data-file checks
    prepare_train(cfg, args.resume, args.allow_unsafe_load)

    # what only the launcher tells: SyncBN cannot run on CPU processes
    # (BN, with a warning), gloo instead of NCCL without CUDA, FSDP
    if args.launcher != 'none':
        degrade_sync_bn(cfg, args.launcher)
    setup_cpu_dist(cfg, args.launcher, init_process_group=True)
    if args.strategy == 'fsdp':
        setup_fsdp(cfg, args.launcher)

    if 'runner_type' not in cfg:
        runner = Runner.from_cfg(cfg)
    else:
        runner = RUNNERS.build(cfg)
    runner.train()
    close_dist()


if __name__ == '__main__':
    # mmitpn's own errors: one line, no traceback (MMITPN_DEBUG=1 shows it)
    run_tool(main)
