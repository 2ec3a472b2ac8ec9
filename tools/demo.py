#!/usr/bin/env python
"""The integral iTPN demo on the embedded data (``make demo``).

1. generate the embedded demo data (``tools/data/make_demo_data.py``);
2. integrally pre-train a tiny iTPN (backbone + pyramid, pixel MIM + MFM
   with an EMA teacher) on the demo images;
3. write reconstruction pictures of the pre-trained model.

Each stage is skipped when its output already exists (``--force`` redoes
everything); training stages resume from their last checkpoint.
"""
import argparse
import json
import os
import os.path as osp
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PRETRAIN_CFG = 'configs/itpn_pretrain/itpn-tiny_pixel-mfm_1xb32-20e_demo.py'


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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--work-dir', default='work_dirs/demo')
    parser.add_argument('--force', action='store_true')
    args = parser.parse_args(argv)
    start = time.time()
    py = sys.executable
    work = Path(args.work_dir)
    pre_dir = work / 'pretrain'

    log('stage 1/3: embedded data')
    run([py, 'tools/data/make_demo_data.py', '--out', 'data/demo'] +
        (['--force'] if args.force else []))

    log('stage 2/3: integral pre-training (backbone + pyramid, pixel + '
        'MFM)')
    ckpt = pre_dir / 'epoch_20.pth'
    if args.force or not ckpt.exists():
        run([py, 'tools/train.py', PRETRAIN_CFG, '--work-dir', pre_dir,
             '--resume'])
    losses = epoch_losses(pre_dir)

    log('stage 3/3: reconstruction pictures')
    pics = work / 'reconstructions'
    images = sorted((REPO / 'data/demo/pretrain/train').rglob('*.png'))[:6]
    run([py, 'tools/analysis_tools/visualize_reconstruction.py',
         PRETRAIN_CFG, ckpt, *images, '--out-dir', pics])

    print()
    log(f'done in {time.time() - start:.0f} s')
    if losses:
        first, last = losses[min(losses)], losses[max(losses)]
        for k in first:
            log(f'  {k:16s} epoch {min(losses)}: {first[k]:.4f}  ->  epoch '
                f'{max(losses)}: {last[k]:.4f}')
    log(f'  pre-trained checkpoint: {osp.abspath(ckpt)}')
    log(f'  training log:           {osp.abspath(pre_dir)}')
    log(f'  reconstruction images:  {osp.abspath(pics)}')


if __name__ == '__main__':
    main()
