#!/usr/bin/env python
"""The paper's two ablations on the embedded demo data, over seeds.

For every seed, with the schedules of ``tools/demo.py``, this runs two
integral pre-trainings of the demo's tiny iTPN (pixel + MFM; pixel only)
and four Mask R-CNN fine-tunes (``--tasks det,seg``: four UPerNet ones as
well): a from scratch, b backbone from pixel + MFM under a random pyramid,
c backbone + pyramid from pixel only, d backbone + pyramid from pixel + MFM
(the demo's). The variants, the JSON of runs and the runner are in
:mod:`mmitpn.experiments.ablation`; every run is a config run in this
process, as ``tools/train.py`` / ``tools/test.py`` run it.

Every finished run goes into a JSON file (``--out``) at once; a run found
there is skipped, an interrupted training resumes, so the same command
picks up where it stopped. The page ``--doc`` (Markdown, with a PNG of the
pre-training loss curves next to it) is rendered from the JSON alone.

Usage::

    python tools/analysis_tools/ablation.py [--seeds 0 1 2] [--tasks det,seg]
        [--work-dir work_dirs/ablation] [--out JSON] [--doc docs/ablation.md]
        [--cfg-options [STAGE.]KEY=VALUE ...] [--render-only]

``--cfg-options`` go to every stage; a key prefixed with ``pretrain.``,
``det.`` or ``seg.`` goes to that stage only (e.g.
``det.train_cfg.max_epochs=1``). Options change what is measured: the page
then says that its numbers are not the ablation's result. Paths in the
configs (``data/demo``) are relative to the working directory: run it from
the repository root.
"""
import argparse
import os.path as osp
import sys
from pathlib import Path

try:
    import mmitpn  # noqa: F401
except ImportError:  # not installed: run from a checkout
    sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(
        osp.abspath(__file__)))))

from mmitpn.datasets.demo_data import make_demo_data
from mmitpn.experiments.ablation import (TASKS, Ablation, load_results,
                                         progress)
from mmitpn.experiments.rendering import render_page
from mmitpn.experiments.runs import use_all_cores
from mmitpn.utils import run_tool


def parse_args(argv=None):
    """Command line.

    Args:
        argv (list[str], optional): Arguments (default: ``sys.argv[1:]``).

    Returns:
        argparse.Namespace: Parsed arguments; ``tasks`` is a list.
    """
    parser = argparse.ArgumentParser(
        description='Ablations of integral pyramid pre-training and MFM on '
        'the embedded demo data, over seeds.')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2],
                        help='seeds (randomness.seed of every stage)')
    parser.add_argument('--tasks', default='det',
                        help='comma-separated downstream tasks: det (Mask '
                        'R-CNN bbox / segm mAP), seg (UPerNet mIoU)')
    parser.add_argument('--work-dir', default='work_dirs/ablation',
                        help='work dirs of every run go under it')
    parser.add_argument('--out', help='JSON of every run (default: '
                        'WORK_DIR/ablation.json)')
    parser.add_argument('--doc', default='docs/ablation.md',
                        help='Markdown page rendered from the JSON')
    parser.add_argument(
        '--cfg-options', nargs='+', default=[],
        help='KEY=VALUE overrides of every stage; STAGE.KEY=VALUE (STAGE: '
        'pretrain, det, seg) of one stage, e.g. for a cut-down schedule '
        'det.train_cfg.max_epochs=1')
    parser.add_argument('--render-only', action='store_true',
                        help='only render --doc from the JSON (a page "not '
                        'yet run" without one)')
    args = parser.parse_args(argv)
    args.tasks = [t for t in args.tasks.split(',') if t]
    if not args.tasks or any(t not in TASKS for t in args.tasks):
        parser.error(f'--tasks {",".join(args.tasks)}: choose from '
                     f'{",".join(TASKS)} (comma-separated)')
    return args


def main(argv=None):
    """Run what is missing, then render the page.

    Args:
        argv (list[str], optional): Arguments (default: ``sys.argv[1:]``).
    """
    args = parse_args(argv)
    log = progress('ablation')
    work_dir = Path(args.work_dir).resolve()
    out = Path(args.out or work_dir / 'ablation.json').resolve()
    doc = Path(args.doc).resolve()
    if not args.render_only:
        log(f'torch threads: {use_all_cores()} (OMP_NUM_THREADS sets them)')
        log('embedded data: ' + osp.abspath('data/demo'))
        make_demo_data('data/demo', verbose=True)
        Ablation(work_dir, out, seeds=args.seeds, tasks=args.tasks,
                 cfg_options=args.cfg_options, log=log).run()
    render_page(load_results(out), doc)
    log(f'JSON: {out}; page: {doc}')


if __name__ == '__main__':
    # mmitpn's own errors: one line, no traceback (MMITPN_DEBUG=1 shows it)
    run_tool(main)
