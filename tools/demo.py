#!/usr/bin/env python
"""The integral iTPN demo on the embedded data (``make demo``).

1. generate the embedded demo data (``tools/data/make_demo_data.py``);
2. integrally pre-train a tiny iTPN (backbone + pyramid, pixel MIM + MFM
   with an EMA teacher) on the demo images, and write reconstruction
   pictures of it;
3. fine-tune Mask R-CNN whose backbone AND neck are that pre-trained
   HiViT + pyramid on the demo COCO set (``--scratch`` also trains the
   same schedule from random initialisation, for comparison);
4. evaluate bbox / segm mAP with mmdet's COCO metric and draw the
   predictions on the validation images.

Each stage is skipped when its output already exists (``--force`` redoes
everything); training stages resume from their last checkpoint.
"""
import argparse
import json
import os
import os.path as osp
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PRETRAIN_CFG = 'configs/itpn/itpn-tiny_pixel-mfm_1xb32-200e_demo.py'
DET_CFG = 'configs/itpn/itpn-tiny_mask-rcnn_1xb4-6e_demo.py'


def last_epoch(cfg_path):
    """The checkpoint name a config's training run ends with."""
    from mmengine.config import Config
    return f'epoch_{Config.fromfile(REPO / cfg_path).train_cfg.max_epochs}.pth'


def check_work_dir(work_dir, cfg_path):
    """Stop, naming the fix, when ``work_dir`` holds an unfinished run of
    another config (an earlier version of the demo): ``--resume`` would
    continue it under this config's schedule.

    Args:
        work_dir (Path): The training stage's work dir.
        cfg_path (str): The config the stage trains.
    """
    if not (work_dir / 'last_checkpoint').exists():
        return
    dumps = sorted(p.name for p in work_dir.glob('*.py'))
    if dumps and Path(cfg_path).name not in dumps:
        raise SystemExit(
            f'{work_dir} holds a run of {", ".join(dumps)}, not of '
            f'{Path(cfg_path).name} (an earlier demo?); resuming it would '
            f'mix two schedules. Rerun with --force (redoes every stage) '
            f'or pass another --work-dir.')


def gain(pretrained, scratch):
    """One line: the pre-trained detector's mAP minus the scratch one's.

    Args:
        pretrained (dict): COCO metrics of the fine-tune from pre-training.
        scratch (dict): COCO metrics of the same schedule from random init.
    """
    diffs = (pretrained[f'coco/{k}_mAP'] - scratch[f'coco/{k}_mAP']
             for k in ('bbox', 'segm'))
    return 'pre-trained minus scratch: bbox mAP {:+.3f}, segm mAP {:+.3f}'\
        .format(*diffs)


def log(msg):
    print(f'[demo {time.strftime("%H:%M:%S")}] {msg}', flush=True)


def run(cmd):
    log('$ ' + ' '.join(map(str, cmd)))
    subprocess.run([str(c) for c in cmd], cwd=REPO, check=True)


def epoch_losses(work_dir):
    """Mean training loss of each epoch from mmengine's scalars.json."""
    logs = sorted(Path(work_dir).glob('*/vis_data/scalars.json'))
    if not logs:
        return {}
    per_epoch = {}
    for line in logs[-1].read_text().splitlines():
        rec = json.loads(line)
        if 'loss' in rec and 'epoch' in rec:
            per_epoch.setdefault(rec['epoch'], []).append(rec)
    return {
        e: {k: sum(r[k] for r in recs) / len(recs)
            for k in recs[0] if k.startswith('loss')}
        for e, recs in sorted(per_epoch.items())
    }


def last_test_metrics(work_dir, key='coco/bbox_mAP'):
    """Metrics of the newest ``tools/test.py`` run in ``work_dir``
    (MMEngine writes them to ``<timestamp>/<timestamp>.json``).

    Args:
        work_dir (str | Path): The ``--work-dir`` of tools/test.py.
        key (str): A metric the record must hold. Defaults to
            ``'coco/bbox_mAP'``.

    Returns:
        dict: The record, or ``{}`` when no run wrote ``key``.
    """
    for js in sorted(Path(work_dir).glob('*/*.json'), reverse=True):
        lines = js.read_text().splitlines()
        rec = json.loads(lines[-1]) if lines else {}
        if key in rec:
            return rec
    return {}


def main(argv=None):
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
    start = time.time()
    # torch gets every core: the demo's data-loader workers only decode
    # small images (about 2% of a step's time on 2 cores)
    threads = os.environ.setdefault('OMP_NUM_THREADS',
                                    str(os.cpu_count() or 1))
    log(f'OMP_NUM_THREADS={threads} (set it to override)')
    py = sys.executable
    work = Path(args.work_dir)
    pre_dir = work / 'pretrain'

    log('stage 1/4: embedded data')
    run([py, 'tools/data/make_demo_data.py', '--out', 'data/demo'] +
        (['--force'] if args.force else []))

    log('stage 2/4: integral pre-training (backbone + pyramid, pixel + '
        'MFM)')
    ckpt = pre_dir / last_epoch(PRETRAIN_CFG)
    if args.force:
        # training stages resume: a fresh run needs empty work dirs
        for d in [pre_dir, work / 'reconstructions'] + sorted(
                work.glob('mask_rcnn_*')):
            if d.is_dir():
                log(f'--force: removing {d}')
                shutil.rmtree(d)
    if not ckpt.exists():
        check_work_dir(pre_dir, PRETRAIN_CFG)
        run([py, 'tools/train.py', PRETRAIN_CFG, '--work-dir', pre_dir,
             '--resume'])
    losses = epoch_losses(pre_dir)

    pics = work / 'reconstructions'
    # two images of every background texture (one sub-folder each)
    images = [
        img for folder in sorted((REPO / 'data/demo/pretrain/train').iterdir())
        for img in sorted(folder.glob('*.png'))[:2]
    ]
    run([py, 'tools/analysis_tools/visualize_reconstruction.py',
         PRETRAIN_CFG, ckpt, *images, '--out-dir', pics])

    log('stage 3/4: Mask R-CNN fine-tuning from the pre-trained backbone '
        'AND pyramid')
    runs = {'pretrained': [f'model.backbone.init_cfg.checkpoint={ckpt}',
                           f'model.neck.init_cfg.checkpoint={ckpt}']}
    if args.scratch:
        runs['scratch'] = ['model.backbone.init_cfg=None',
                           'model.neck.init_cfg=None']
    metrics = {}
    det_last = last_epoch(DET_CFG)
    for name, opts in runs.items():
        det_dir = work / f'mask_rcnn_{name}'
        det_ckpt = det_dir / det_last
        if not det_ckpt.exists():
            check_work_dir(det_dir, DET_CFG)
            run([py, 'tools/train.py', DET_CFG, '--work-dir', det_dir,
                 '--resume', '--cfg-options', *opts])
        log(f'stage 4/4: COCO evaluation and pictures ({name})')
        vis = det_dir / 'predictions'
        out = det_dir / 'test_metrics.json'
        run([py, 'tools/test.py', DET_CFG, det_ckpt, '--work-dir', det_dir,
             '--show-dir', vis.name, '--cfg-options', *opts])
        # mmdet writes the pictures under the test run's timestamp folder
        drawn = sorted(det_dir.glob(f'*/{vis.name}'))
        metrics[name] = (last_test_metrics(det_dir), det_ckpt,
                         drawn[-1] if drawn else vis)
        out.write_text(json.dumps(metrics[name][0], indent=2))

    print()
    log(f'done in {time.time() - start:.0f} s')
    if losses:
        first, last = losses[min(losses)], losses[max(losses)]
        for k in first:
            log(f'  {k:16s} epoch {min(losses)}: {first[k]:.4f}  ->  epoch '
                f'{max(losses)}: {last[k]:.4f}')
    log(f'  pre-trained checkpoint: {osp.abspath(ckpt)}')
    log(f'  pre-training log:       {osp.abspath(pre_dir)}')
    log(f'  reconstruction images:  {osp.abspath(pics)}')
    for name, (m, det_ckpt, vis) in metrics.items():
        log(f'  Mask R-CNN ({name}): bbox mAP {m.get("coco/bbox_mAP", -1):.3f}'
            f' (AP50 {m.get("coco/bbox_mAP_50", -1):.3f}), segm mAP '
            f'{m.get("coco/segm_mAP", -1):.3f}')
        log(f'    checkpoint: {osp.abspath(det_ckpt)}')
        log(f'    pictures:   {osp.abspath(vis)}')
    if len(metrics) == 2:
        log('  ' + gain(metrics['pretrained'][0], metrics['scratch'][0]))


if __name__ == '__main__':
    main()
