"""Test (and evaluate) a model of any host (mmdet, mmseg, mmpretrain).

Examples::

    python tools/test.py CONFIG CHECKPOINT [--out results.pkl] [--show-dir D]
    bash tools/dist_test.sh CONFIG CHECKPOINT 8
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
from mmengine.evaluator import DumpResults
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from mmitpn.engine.hooks import CheckedLoadHook
from mmitpn.utils import (close_dist, register_host_modules, run_tool,
                          setup_cpu_dist, setup_tta,
                          trigger_visualization_hook)
from mmitpn.utils.run_setup import prepare_test, set_work_dir


def parse_args():
    parser = argparse.ArgumentParser(
        description='Test (and eval) a model (mmdet / mmseg / mmpretrain '
        'host) with mmitpn')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--work-dir',
        help='the directory to save the file containing evaluation metrics')
    parser.add_argument(
        '--out',
        type=str,
        help='dump predictions to a pickle file (.pkl) for offline '
        'evaluation')
    parser.add_argument(
        '--show', action='store_true', help='show prediction results')
    parser.add_argument(
        '--show-dir',
        help='directory where painted images will be saved (mmdet: under '
        'work_dir/timestamp/)')
    parser.add_argument(
        '--wait-time', type=float, default=2, help='the interval of show (s)')
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
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    parser.add_argument(
        '--tta',
        action='store_true',
        help='test-time augmentation (`tta_model` / `tta_pipeline` of the '
        'config, else flip TTA for mmdet and mmpretrain)')
    parser.add_argument(
        '--allow-partial',
        action='store_true',
        help='report metrics even when the checkpoint leaves tensors of the '
        'model missing or has keys the model lacks (listed at WARNING); '
        'without it such a checkpoint stops the test')
    parser.add_argument(
        '--allow-unsafe-load',
        action='store_true',
        help='trust the checkpoint: let its pickle create objects beyond '
        'tensors and the allow-listed types (logged at WARNING)')
    # torch.distributed.launch of PyTorch >= 2.0 passes `--local-rank`.
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def main():
    args = parse_args()
    if args.out is not None and not args.out.endswith(('.pkl', '.pickle')):
        raise ValueError(f'--out must be a .pkl file, got {args.out!r}; '
                         f'name it e.g. results.pkl.')

    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)

    host = register_host_modules(cfg)

    set_work_dir(cfg, args.config, args.work_dir)
    # weights_only=True with mmitpn's allow-list; data-loader checks
    prepare_test(cfg, args.checkpoint, args.allow_unsafe_load)

    if args.show or args.show_dir:
        trigger_visualization_hook(
            cfg,
            host,
            show=args.show,
            show_dir=args.show_dir,
            wait_time=args.wait_time)

    if args.tta:
        setup_tta(cfg, host)

    setup_cpu_dist(cfg, args.launcher, init_process_group=True)

    if 'runner_type' not in cfg:
        runner = Runner.from_cfg(cfg)
    else:
        runner = RUNNERS.build(cfg)

    # a checkpoint that does not fill the model (pre-training, backbone-only
    # or another model's file) stops here instead of giving random metrics
    runner.register_hook(CheckedLoadHook(allow_partial=args.allow_partial))

    if args.out is not None:
        dump_cls = DumpResults
        if host == 'mmdet':  # also encodes masks as RLE
            from mmdet.evaluation import DumpDetResults
            dump_cls = DumpDetResults
        runner.test_evaluator.metrics.append(
            dump_cls(out_file_path=args.out))

    runner.test()
    close_dist()


if __name__ == '__main__':
    # mmitpn's own errors: one line, no traceback (MMITPN_DEBUG=1 shows it)
    run_tool(main)
