#!/usr/bin/env python
"""The integral iTPN demo on the embedded data (``make demo``).

1. generate the embedded demo data (:mod:`mmitpn.datasets.demo_data`);
2. integrally pre-train a tiny iTPN (backbone + pyramid, pixel MIM + MFM
   with an EMA teacher) on the demo images, and write reconstruction
   pictures of it;
3. fine-tune Mask R-CNN whose backbone AND neck are that pre-trained
   HiViT + pyramid on the demo COCO set (``--scratch`` also trains the
   same schedule from random initialisation, for comparison);
4. evaluate bbox / segm mAP with mmdet's COCO metric and draw the
   predictions on the validation images.

The runs are variants d (and a) of seed 0 of the ablation
(``tools/analysis_tools/ablation.py``, :mod:`mmitpn.experiments.ablation`),
same configs and seed, in folders of their own under ``--work-dir``; each
is recorded in ``<work-dir>/demo.json`` when it finishes, and a recorded
run is not redone (``--force`` redoes everything); an interrupted training
resumes. Paths in the configs (``data/demo``) are relative to the working
directory: run it from the repository root.
"""
import argparse
import os.path as osp
import shutil
import subprocess
import sys
import time
from pathlib import Path

try:
    import mmitpn  # noqa: F401
except ImportError:  # not installed: run from a checkout
    sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from mmitpn.datasets.demo_data import make_demo_data
from mmitpn.experiments.ablation import (DEMO_LAYOUT, DEMO_SEED, VARIANTS,
                                         Ablation, progress)
from mmitpn.experiments.records import epoch_losses
from mmitpn.experiments.rendering import gain_line
from mmitpn.experiments.runs import use_all_cores
from mmitpn.utils import run_tool

REPO = Path(__file__).resolve().parents[1]
DATA = Path('data/demo')


def reconstruction_pictures(demo, ckpt, out_dir):
    """Reconstructions of two images of every background texture by the
    pre-trained model (``tools/analysis_tools/visualize_reconstruction.py``).

    Args:
        demo (Ablation): The demo's runner (its pre-training config).
        ckpt (Path): The pre-training's checkpoint.
        out_dir (Path): Where the pictures go.
    """
    images = [img for folder in sorted((DATA / 'pretrain/train').iterdir())
              for img in sorted(folder.glob('*.png'))[:2]]
    cmd = [sys.executable,
           REPO / 'tools/analysis_tools/visualize_reconstruction.py',
           demo.configs['pretrain'], ckpt, *images, '--out-dir', out_dir]
    demo.log('$ ' + ' '.join(map(str, cmd)))
    subprocess.run([str(c) for c in cmd], check=True)


def main(argv=None):
    """Run the stages that are not done yet, then say where everything is.

    Args:
        argv (list[str], optional): Arguments (default: ``sys.argv[1:]``).
    """
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--work-dir', default='work_dirs/demo')
    parser.add_argument(
        '--force',
        action='store_true',
        help='delete the outputs of earlier demo runs and redo every stage')
    parser.add_argument(
        '--scratch',
        action='store_true',
        help='also fine-tune from random initialisation, for comparison')
    args = parser.parse_args(argv)
    start, log = time.time(), progress('demo')
    work = Path(args.work_dir).resolve()
    pics = work / 'reconstructions'
    log(f'torch threads: {use_all_cores()} (OMP_NUM_THREADS sets them)')
    if args.force:
        for path in [work / 'demo.json', pics] + [
                work / d for d in DEMO_LAYOUT.values()]:
            if path.exists():
                log(f'--force: removing {path}')
                (shutil.rmtree if path.is_dir() else Path.unlink)(path)

    log('stage 1/4: embedded data')
    make_demo_data(str(DATA), force=args.force, verbose=True)
    variants = ('d', 'a') if args.scratch else ('d', )
    demo = Ablation(work, work / 'demo.json', seeds=[DEMO_SEED],
                    layout=DEMO_LAYOUT, show_dir='predictions', log=log)

    log('stage 2/4: integral pre-training (backbone + pyramid, pixel + '
        'MFM)')
    ckpt = demo.pretrain(DEMO_SEED, 'pixel-mfm')
    reconstruction_pictures(demo, ckpt, pics)
    records = {}
    for v in variants:
        log(f'stages 3-4/4: Mask R-CNN ({v}: {VARIANTS[v][2]}), fine-tuning '
            'and COCO evaluation with pictures')
        records[v] = demo.finetune(DEMO_SEED, 'det', v)

    print()
    log(f'done in {time.time() - start:.0f} s')
    losses = epoch_losses(ckpt.parent)
    if losses:
        first, last = losses[min(losses)], losses[max(losses)]
        for k in first:
            log(f'  {k:16s} epoch {min(losses)}: {first[k]:.4f}  ->  epoch '
                f'{max(losses)}: {last[k]:.4f}')
    log(f'  pre-trained checkpoint: {ckpt}')
    log(f'  reconstruction images:  {pics}')
    for v, rec in records.items():
        run = Path(rec['work_dir'])
        drawn = sorted(run.glob('eval/*/predictions'))
        log(f'  Mask R-CNN ({v}: {VARIANTS[v][2]}): bbox mAP '
            f'{rec["bbox_mAP"]:.3f}, segm mAP {rec["segm_mAP"]:.3f}')
        log(f'    checkpoint: {run / rec["checkpoint"]}')
        log(f'    metrics:    {run / "test_metrics.json"}')
        log(f'    pictures:   {drawn[-1] if drawn else "none drawn"}')
    if len(records) == 2:
        log('  ' + gain_line(records['d'], records['a']))


if __name__ == '__main__':
    # mmitpn's own errors: one line, no traceback (MMITPN_DEBUG=1 shows it)
    run_tool(main)
