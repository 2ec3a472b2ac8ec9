#!/usr/bin/env python
"""The paper's two ablations on the embedded demo data, over seeds.

For every seed, with the schedules of ``tools/demo.py``, this runs two
integral pre-trainings of the demo's tiny iTPN (backbone + pyramid) and four
Mask R-CNN fine-tunes (``--tasks det,seg``: four UPerNet ones as well):

====  =====================================  =============================
name  backbone                               pyramid (the detector's neck)
====  =====================================  =============================
a     random                                 random
b     pixel + MFM pre-training               random
c     pixel-only pre-training                pixel-only pre-training
d     pixel + MFM pre-training (the demo's)  pixel + MFM pre-training
====  =====================================  =============================

``b - d`` isolates integral pyramid pre-training, ``c - d`` isolates masked
feature modeling (MFM); the pixel-only pre-training is the demo's with
``mfm_head=None`` (and no teacher), same schedule. Each pre-training runs
once per seed and serves every fine-tune that needs it; ``randomness.seed``
of every stage is the seed.

Every finished run goes into a JSON file (``--out``) at once; a run found
there is skipped, an interrupted training continues with ``tools/train.py
--resume``, so the same command picks up where it stopped. The page
``--doc`` (Markdown, with a PNG of the pre-training loss curves next to it)
is rendered from the JSON alone: the table, every seed's number, the paired
differences and a conclusion computed from them.

Usage::

    python tools/analysis_tools/ablation.py [--seeds 0 1 2] [--tasks det,seg]
        [--work-dir work_dirs/ablation] [--out JSON] [--doc docs/ablation.md]
        [--cfg-options [STAGE.]KEY=VALUE ...] [--render-only]

``--cfg-options`` go to every stage's ``tools/train.py`` / ``tools/test.py``;
a key prefixed with ``pretrain.``, ``det.`` or ``seg.`` goes to that stage
only (e.g. ``det.train_cfg.max_epochs=1``). Options change what is measured:
the page then says that its numbers are not the ablation's result.
"""
import argparse
import functools
import importlib.util
import json
import math
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TOOL = 'tools/analysis_tools/ablation.py'

# the demo's configs, found by file name (see find_config)
PRETRAIN_CFG = 'itpn-tiny_pixel-mfm_1xb32-200e_demo.py'
TASKS = {
    # task: (config, {JSON field: metric key of tools/test.py}, what it is)
    'det': ('itpn-tiny_mask-rcnn_1xb4-6e_demo.py',
            {'bbox_mAP': 'coco/bbox_mAP', 'segm_mAP': 'coco/segm_mAP'},
            'Mask R-CNN on the embedded COCO-format set (val split)'),
    'seg': ('itpn-tiny_upernet_1xb4-2k_demo.py', {'mIoU': 'mIoU'},
            'UPerNet on the embedded ADE20K-style set (validation split; mIoU '
            'in %, as mmseg reports it)'),
}
# pre-training kind: (options on top of the demo's config, label)
PRETRAINS = {
    'pixel-mfm': ([], 'pixel + MFM (the demo\'s)'),
    'pixel': (['model.mfm_head=None', 'custom_hooks=[]'], 'pixel only'),
}
# variant: (pre-training of the backbone or None, pyramid too, label)
VARIANTS = {
    'a': (None, False, 'from scratch'),
    'b': ('pixel-mfm', False,
          'backbone from pixel + MFM, pyramid random'),
    'c': ('pixel', True, 'backbone + pyramid from pixel only'),
    'd': ('pixel-mfm', True, 'backbone + pyramid from pixel + MFM'),
}
# paired difference: what it isolates
DIFFERENCES = {
    ('b', 'd'): 'integral pyramid pre-training',
    ('c', 'd'): 'MFM',
    ('a', 'd'): 'pre-training at all',
}
STAGES = ('pretrain', ) + tuple(TASKS)
# two-sided 95% quantiles of Student's t (degrees of freedom 1..30)
T_975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262,
         2.228, 2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101,
         2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052,
         2.048, 2.045, 2.042)
RULE = ('a paired difference is *measurable* when its 95% confidence '
        'interval, mean ± t(0.975, n−1) · std / √n over the n seeds '
        '(Student\'s t, std with n−1), excludes zero; otherwise the page '
        'says "no measurable difference"')


@functools.lru_cache(None)
def load_tool(rel_path):
    """A script of ``tools/`` as a module (the demo's helpers and the data
    generator are reused, not copied).

    Args:
        rel_path (str): Path relative to the repository.
    """
    path = REPO / rel_path
    spec = importlib.util.spec_from_file_location(
        'mmitpn_' + path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def find_config(name):
    """Path (relative to the repository) of the demo config ``name``.

    The demo configs live in ``configs/itpn/`` or in a folder per task; the
    file name is what identifies them.

    Args:
        name (str): File name, e.g. ``'itpn-tiny_mask-rcnn_1xb4-6e_demo.py'``.
    """
    hits = sorted(REPO.glob(f'configs/**/{name}'),
                  key=lambda p: (p.parent.name != 'itpn', str(p)))
    if not hits:
        raise FileNotFoundError(f'No config named {name} under '
                                f'{REPO / "configs"}; is the checkout '
                                f'complete?')
    return str(hits[0].relative_to(REPO))


def log(msg):
    """Print a progress line with the time of day.

    Args:
        msg (str): The line.
    """
    print(f'[ablation {time.strftime("%H:%M:%S")}] {msg}', flush=True)


def run(cmd, in_process=False):
    """Run ``python TOOL ARGS...`` of the repository, in its root.

    Args:
        cmd (list): ``[python, 'tools/<tool>.py', args...]``.
        in_process (bool): Call the tool's ``main`` in this process instead
            of a fresh one (saves the imports, seconds per run; what the
            test does). By default every run has its own process, as in the
            demo: fresh registries, loggers and memory. Defaults to False.
    """
    cmd = [str(c) for c in cmd]
    log('$ ' + shlex.join(cmd))
    if not in_process:
        subprocess.run(cmd, cwd=REPO, check=True)
        return
    argv, cwd, env = sys.argv, os.getcwd(), dict(os.environ)
    sys.argv = cmd[1:]
    os.chdir(REPO)
    try:
        load_tool(cmd[1]).main()
    finally:  # the tools set LOCAL_RANK and the like
        sys.argv = argv
        os.chdir(cwd)
        os.environ.clear()
        os.environ.update(env)


# ------------------------------------------------------------------ options
def split_options(options):
    """Route ``--cfg-options`` to the stages.

    Args:
        options (list[str]): ``KEY=VALUE`` strings; a key starting with
            ``pretrain.``, ``det.`` or ``seg.`` is for that stage only.

    Returns:
        dict: ``{stage: [KEY=VALUE, ...]}`` for every stage.
    """
    routed = {s: [] for s in STAGES}
    for opt in options or []:
        if '=' not in opt:
            raise SystemExit(f'--cfg-options {opt!r}: expected KEY=VALUE '
                             f'(e.g. det.train_cfg.max_epochs=1).')
        stage, _, rest = opt.partition('.')
        if stage in routed:
            routed[stage].append(rest)
        else:
            for s in STAGES:
                routed[s].append(opt)
    return routed


@functools.lru_cache(None)
def final_checkpoint(cfg_path, options):
    """File name of the checkpoint a training ends with, with ``options``
    applied (``epoch_N.pth`` or ``iter_N.pth``).

    Args:
        cfg_path (str): Config, relative to the repository.
        options (tuple[str]): ``KEY=VALUE`` overrides of tools/train.py
            (the user's: seeds and checkpoints do not change the schedule).
    """
    from mmengine.config import Config, DictAction
    cfg = Config.fromfile(REPO / cfg_path)
    if options:
        parser = argparse.ArgumentParser()
        parser.add_argument('--o', nargs='+', action=DictAction)
        cfg.merge_from_dict(parser.parse_args(['--o', *options]).o)
    if 'max_epochs' in cfg.train_cfg:
        return f'epoch_{cfg.train_cfg.max_epochs}.pth'
    return f'iter_{cfg.train_cfg.max_iters}.pth'


def variant_options(variant, checkpoints):
    """``init_cfg`` options of a fine-tune.

    Args:
        variant (str): A key of :data:`VARIANTS`.
        checkpoints (dict): ``{pre-training kind: checkpoint path}``.
    """
    source, with_neck, _ = VARIANTS[variant]
    backbone = ('model.backbone.init_cfg=None' if source is None else
                f'model.backbone.init_cfg.checkpoint={checkpoints[source]}')
    neck = (f'model.neck.init_cfg.checkpoint={checkpoints[source]}'
            if with_neck else 'model.neck.init_cfg=None')
    return [backbone, neck]


# -------------------------------------------------------------- logs, JSON
def read_test_metrics(eval_dir, key):
    """Metrics of the newest ``tools/test.py`` run whose work dir was
    ``eval_dir`` (MMEngine writes them to ``<timestamp>/<timestamp>.json``).

    Args:
        eval_dir (Path): The ``--work-dir`` of tools/test.py.
        key (str): A metric the record must hold, e.g. ``'mIoU'``.
    """
    rec = load_tool('tools/demo.py').last_test_metrics(eval_dir, key)
    if not rec:
        raise RuntimeError(
            f'tools/test.py wrote no {key!r} under {eval_dir}.')
    return rec


def loss_curve(work_dir):
    """Logged training losses of a run by iteration, over all its sessions
    (an interrupted and resumed run has one ``scalars.json`` per session;
    the later session wins where they overlap).

    Args:
        work_dir (Path): The training's work dir.

    Returns:
        dict: ``{loss name: ([iteration, ...], [value, ...])}``.
    """
    by_iter = {}
    for js in sorted(Path(work_dir).glob('*/vis_data/scalars.json')):
        for line in js.read_text().splitlines():
            rec = json.loads(line)
            if 'loss' in rec and 'iter' in rec:
                by_iter[rec['iter']] = rec
    curves = {}
    for it in sorted(by_iter):
        for k, v in by_iter[it].items():
            if k.startswith('loss'):
                xs, ys = curves.setdefault(k, ([], []))
                xs.append(it)
                ys.append(v)
    return curves


def machine():
    """The CPU and software a run was measured on (results move with the
    CPU's kernels)."""
    import torch
    info = dict(cpu=platform.processor() or platform.machine(),
                cores=os.cpu_count(),
                omp_num_threads=os.environ.get('OMP_NUM_THREADS'),
                isa=torch.backends.cpu.get_cpu_capability(),
                torch=torch.__version__,
                python=platform.python_version())
    flags = set()
    try:
        for line in Path('/proc/cpuinfo').read_text().splitlines():
            key, _, value = line.partition(':')
            if key.strip() == 'model name':
                info['cpu'] = value.strip()
            elif key.strip() in ('flags', 'Features'):
                flags = set(value.split())
    except OSError:  # not Linux
        pass
    wanted = ('avx', 'avx2', 'fma', 'avx512f', 'avx512_vnni', 'avx512_bf16',
              'amx_bf16', 'amx_tile', 'asimd', 'sve')
    info['flags'] = [f for f in wanted if f in flags]
    for pkg in ('mmengine', 'mmcv', 'mmdet', 'mmseg', 'mmpretrain'):
        try:
            info[pkg] = __import__(pkg).__version__
        except ImportError:
            pass
    return info


def describe_machine(info):
    """One line of what :func:`machine` recorded.

    Args:
        info (dict): A run's ``machine`` record.
    """
    flags = ', '.join(info.get('flags', [])) or 'none of the listed'
    sw = ', '.join(f'{k} {info[k]}'
                   for k in ('torch', 'mmengine', 'mmcv', 'mmdet', 'mmseg',
                             'mmpretrain') if k in info)
    return (f'{info["cpu"]}, {info["cores"]} cores, OMP_NUM_THREADS='
            f'{info["omp_num_threads"]}; torch CPU capability '
            f'{info["isa"]}, ISA flags {flags}; {sw}; Python '
            f'{info["python"]}')


def load_results(path):
    """The JSON of the runs at ``path``, or None when there is none yet.

    Args:
        path (Path): The ``--out`` file.
    """
    if Path(path).exists():
        return json.loads(Path(path).read_text())
    return None


def save_results(path, results):
    """Write the JSON atomically (a crash leaves the previous version).

    Args:
        path (Path): The ``--out`` file.
        results (dict): Everything recorded so far.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + '.tmp')
    tmp.write_text(json.dumps(results, indent=1) + '\n')
    os.replace(tmp, path)


def find_run(results, seed, stage, variant):
    """The record of one run, or None.

    Args:
        results (dict): The JSON of the runs.
        seed (int): The seed.
        stage (str): ``'pretrain'`` or a task of :data:`TASKS`.
        variant (str): A key of :data:`PRETRAINS` or :data:`VARIANTS`.
    """
    for rec in results['runs']:
        if (rec['seed'], rec['stage'], rec['variant']) == (seed, stage,
                                                          variant):
            return rec
    return None


def add_run(results, out, rec):
    """Record a finished run (replacing an earlier record of it) and save.

    Args:
        results (dict): The JSON of the runs, updated in place.
        out (Path): The ``--out`` file.
        rec (dict): The run's record (``seed``, ``stage``, ``variant``,
            ``wall_s``, metrics ...).
    """
    results['runs'] = [
        r for r in results['runs']
        if (r['seed'], r['stage'], r['variant']) != (rec['seed'],
                                                     rec['stage'],
                                                     rec['variant'])
    ] + [rec]
    save_results(out, results)


def command(results):
    """The command that (re)produces every run of ``results``.

    Args:
        results (dict): The JSON of the runs.
    """
    seeds = sorted({r['seed'] for r in results['runs']}) or results['seeds']
    tasks = [t for t in TASKS
             if t in results['tasks'] or any(r['stage'] == t
                                             for r in results['runs'])]
    cmd = ['python', TOOL, '--seeds', *map(str, seeds)]
    if tasks != ['det']:
        cmd += ['--tasks', ','.join(tasks)]
    if results['cfg_options']:
        cmd += ['--cfg-options', *results['cfg_options']]
    return shlex.join(cmd)


# -------------------------------------------------------------- statistics
def mean_std(values):
    """Mean and sample standard deviation (n−1; None for one value).

    Args:
        values (list[float]): At least one number.
    """
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, None
    return mean, math.sqrt(sum((v - mean)**2 for v in values) / (n - 1))


def paired_verdict(diffs):
    """Summary of paired differences ``x - d`` over seeds, judged by
    :data:`RULE`.

    Args:
        diffs (list[float]): One difference per seed.

    Returns:
        dict: ``mean``, ``std``, ``ci`` (``(low, high)`` or None) and
        ``measurable`` (bool, or None with fewer than two seeds).
    """
    mean, std = mean_std(diffs)
    if std is None:
        return dict(mean=mean, std=None, ci=None, measurable=None)
    n = len(diffs)
    t = T_975[n - 2] if n - 1 <= len(T_975) else 1.96
    half = t * std / math.sqrt(n)
    return dict(mean=mean, std=std, ci=(mean - half, mean + half),
                measurable=not (mean - half <= 0 <= mean + half))


# -------------------------------------------------------------------- runs
def train(cfg_path, work_dir, options, final, in_process=False):
    """Train (resuming an interrupted run) unless ``final`` exists.

    Args:
        cfg_path (str): Config, relative to the repository.
        work_dir (Path): The run's work dir.
        options (list[str]): ``--cfg-options`` of tools/train.py.
        final (str): Name of the checkpoint the training ends with.
        in_process (bool): See :func:`run`. Defaults to False.

    Returns:
        bool: Whether it resumed a run left by an earlier call.
    """
    if (work_dir / final).exists():
        return False
    load_tool('tools/demo.py').check_work_dir(work_dir, cfg_path)
    resumed = (work_dir / 'last_checkpoint').exists()
    run([sys.executable, 'tools/train.py', cfg_path, '--work-dir', work_dir,
         '--resume', '--cfg-options', *options], in_process)
    return resumed


def run_pretrain(ctx, seed, kind):
    """Integral pre-training ``kind`` of ``seed`` unless it is recorded and
    its checkpoint is there.

    Args:
        ctx (dict): The state of this call (results, paths, options).
        seed (int): The seed.
        kind (str): A key of :data:`PRETRAINS`.

    Returns:
        Path: The checkpoint it ended with.
    """
    results, opts = ctx['results'], ctx['options']
    work_dir = ctx['work_dir'] / f'seed{seed}' / f'pretrain_{kind}'
    options = opts['pretrain'] + PRETRAINS[kind][0] + [
        f'randomness.seed={seed}']
    ckpt = work_dir / final_checkpoint(ctx['pretrain_cfg'],
                                       tuple(opts['pretrain']))
    rec = find_run(results, seed, 'pretrain', kind)
    if rec is not None and ckpt.exists():
        return ckpt
    start = time.time()
    resumed = train(ctx['pretrain_cfg'], work_dir, options, ckpt.name,
                    ctx['in_process'])
    losses = load_tool('tools/demo.py').epoch_losses(work_dir)
    add_run(results, ctx['out'], dict(
        seed=seed, stage='pretrain', variant=kind,
        wall_s=round(time.time() - start, 1), resumed=resumed,
        work_dir=str(work_dir), checkpoint=ckpt.name,
        last_epoch_losses=losses[max(losses)] if losses else {},
        machine=ctx['machine']))
    return ckpt


def run_finetune(ctx, seed, task, variant):
    """Fine-tune and evaluate ``variant`` of ``task`` for ``seed`` (its
    pre-training first, if that is not there).

    Args:
        ctx (dict): The state of this call (results, paths, options).
        seed (int): The seed.
        task (str): A key of :data:`TASKS`.
        variant (str): A key of :data:`VARIANTS`.

    Returns:
        dict: The run's record.
    """
    cfg_path, keys = ctx['configs'][task], TASKS[task][1]
    source = VARIANTS[variant][0]
    checkpoints = {k: run_pretrain(ctx, seed, k)
                   for k in {source} - {None}}
    work_dir = ctx['work_dir'] / f'seed{seed}' / f'{task}_{variant}'
    options = ctx['options'][task] + variant_options(variant, checkpoints) + [
        f'randomness.seed={seed}']
    final = final_checkpoint(cfg_path, tuple(ctx['options'][task]))
    start = time.time()
    resumed = train(cfg_path, work_dir, options, final, ctx['in_process'])
    eval_dir = work_dir / 'eval'
    run([sys.executable, 'tools/test.py', cfg_path, work_dir / final,
         '--work-dir', eval_dir, '--cfg-options', *options],
        ctx['in_process'])
    metrics = read_test_metrics(eval_dir, next(iter(keys.values())))
    rec = dict(seed=seed, stage=task, variant=variant,
               wall_s=round(time.time() - start, 1), resumed=resumed,
               work_dir=str(work_dir), checkpoint=final,
               machine=ctx['machine'])
    rec.update({field: metrics[key] for field, key in keys.items()})
    add_run(ctx['results'], ctx['out'], rec)
    return rec


def jobs(seeds, tasks):
    """Every run, in the order they are done (one seed after the other).

    Args:
        seeds (list[int]): The seeds.
        tasks (list[str]): Keys of :data:`TASKS`.

    Yields:
        tuple: ``(seed, stage, variant)``.
    """
    for seed in seeds:
        for kind in PRETRAINS:
            yield seed, 'pretrain', kind
        for task in tasks:
            for variant in VARIANTS:
                yield seed, task, variant


def check_compatible(results, pretrain_cfg, configs, cfg_options, out):
    """Refuse to mix runs of other configs or options into ``results``.

    Args:
        results (dict): The JSON of the runs.
        pretrain_cfg (str): File name of the pre-training config.
        configs (dict): ``{task: config file name}`` of this call.
        cfg_options (list[str]): This call's ``--cfg-options``.
        out (Path): The ``--out`` file (named in the error).
    """
    theirs = (results.get('pretrain_config'), results.get('configs', {}),
              results.get('cfg_options'))
    for task, cfg in configs.items():
        if theirs[1].get(task, cfg) != cfg:
            break
    else:
        if theirs[0] == pretrain_cfg and theirs[2] == cfg_options:
            return
    raise SystemExit(
        f'{out} holds runs of other configs or --cfg-options ('
        f'{theirs[0]}, {theirs[1]}, options {theirs[2]}); adding runs of '
        f'{pretrain_cfg}, {configs}, options {cfg_options} would mix them. '
        f'Rerun with the same options, or pass another --work-dir / --out.')


# ------------------------------------------------------------------ page
def fmt(v, signed=False):
    """Three decimals (a sign with ``signed``), a dash for None."""
    return '—' if v is None else (f'{v:+.3f}' if signed else f'{v:.3f}')


def metric_values(results, task, variant, field):
    """``{seed: value}`` of one metric of one variant.

    Args:
        results (dict): The JSON of the runs.
        task (str): A key of :data:`TASKS`.
        variant (str): A key of :data:`VARIANTS`.
        field (str): A metric field, e.g. ``'bbox_mAP'``.
    """
    return {r['seed']: r[field] for r in results['runs']
            if r['stage'] == task and r['variant'] == variant}


def plot_losses(results, png):
    """Pre-training loss curves, pixel only vs pixel + MFM (one line per
    seed), read from the runs' logs.

    Args:
        results (dict): The JSON of the runs.
        png (Path): The picture to write.

    Returns:
        bool: False when no run logged a loss (nothing written).
    """
    curves = {
        (r['seed'], r['variant']): loss_curve(r['work_dir'])
        for r in sorted(results['runs'], key=lambda r: r['seed'])
        if r['stage'] == 'pretrain'
    }
    if not any(curves.values()):
        return False
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, (ax_pix, ax_all) = plt.subplots(1, 2, figsize=(11, 4))
    colours = {'pixel': 'tab:blue', 'pixel-mfm': 'tab:orange'}
    for (seed, kind), curve in curves.items():
        label = f'{PRETRAINS[kind][1]}, seed {seed}'
        if 'loss_pixel' in curve:
            ax_pix.plot(*curve['loss_pixel'], color=colours[kind],
                        alpha=0.8, lw=1, label=label)
        if 'loss' in curve:
            ax_all.plot(*curve['loss'], color=colours[kind], alpha=0.8, lw=1,
                        label=f'total, {label}')
        mfm = sorted((k for k in curve if k.startswith('loss_mfm')),
                     key=lambda k: (len(k), k))  # s4, s8, s16
        for i, name in enumerate(mfm):
            ax_all.plot(*curve[name], color=colours[kind], alpha=0.6, lw=1,
                        ls=(':', '--', '-.')[i % 3],
                        label=f'{name}, seed {seed}')
    ax_pix.set_title('pixel loss (normalised-pixel L2)')
    ax_all.set_title('total and MFM losses')
    for ax in (ax_pix, ax_all):
        ax.set_xlabel('iteration')
        ax.set_ylabel('loss')
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=110)
    plt.close(fig)
    return True


def render(results, doc):
    """Write the Markdown page (and its PNG) from ``results``.

    Args:
        results (dict or None): The JSON of the runs; None renders the page
            of an ablation not run yet.
        doc (Path): The Markdown file.
    """
    doc = Path(doc)
    png = doc.with_name(doc.stem + '_losses.png')
    lines = [
        '# Ablations: integral pyramid pre-training and MFM', '',
        f'Generated by `{TOOL}` from its JSON of runs; do not edit by hand.',
        '',
        'The paper\'s two ablations on the embedded demo data, with the '
        'schedules of `tools/demo.py`. For each seed the tiny iTPN is '
        'integrally pre-trained twice (pixel + MFM, the demo\'s; pixel only, '
        '`mfm_head=None`, same schedule), and each downstream task is '
        'fine-tuned four ways:', '',
        '| variant | backbone and pyramid |', '|---|---|'
    ] + [f'| {v} | {label} |' for v, (_, _, label) in VARIANTS.items()] + [
        '', '`b − d` isolates integral pyramid pre-training; `c − d` '
        'isolates MFM (negative: `d` is better).', ''
    ]
    if not results or not results['runs']:
        lines += [
            '## Status: not yet run', '',
            'No complete run has been made; this page holds no numbers. '
            'Regenerate it with (three seeds, variants a-d; add `--tasks '
            'det,seg` for UPerNet as well):', '',
            f'    python {TOOL} --seeds 0 1 2', '',
            'The same command continues an interrupted run. Every finished '
            'run goes into `work_dirs/ablation/ablation.json` (`--out`); '
            f'`python {TOOL} --render-only` renders this page from it.', ''
        ]
        doc.parent.mkdir(parents=True, exist_ok=True)
        doc.write_text('\n'.join(lines))
        return
    seeds = sorted({r['seed'] for r in results['runs']})
    tasks = [t for t in TASKS if any(r['stage'] == t
                                     for r in results['runs'])]
    expected = len(list(jobs(seeds, tasks)))
    done = len(results['runs'])
    lines += ['Command:', '', f'    {command(results)}', '']
    if results['cfg_options']:
        lines += [
            '**Not a result.** These runs used the `--cfg-options` above, '
            'which change the demo\'s schedules: the numbers below only '
            'show that the machinery works.', ''
        ]
    if done < expected:
        lines += [f'**Incomplete:** {done} of the {expected} runs of seeds '
                  f'{", ".join(map(str, seeds))} are done.', '']
    if len(seeds) < 3:
        lines += [f'**Fewer than 3 seeds** ({len(seeds)}): the spread over '
                  'seeds is not known well enough to judge a difference.',
                  '']
    machines = sorted({describe_machine(r['machine'])
                       for r in results['runs']})
    lines += ['Machine' + (' (runs on more than one!)' if len(machines) > 1
                           else '') + ':', '']
    lines += [f'- {m}' for m in machines] + ['']
    wall = {}
    for r in results['runs']:
        wall.setdefault(r['stage'], []).append(r['wall_s'])
    lines += ['Wall time: ' + '; '.join(
        f'{s} {sum(w) / 60:.1f} min over {len(w)} runs'
        for s, w in wall.items()) +
        f'; total {sum(sum(w) for w in wall.values()) / 60:.1f} min '
        '(the part measured by the call that ran each stage).', '']

    verdicts = []
    for task in tasks:
        _, keys, title = TASKS[task]
        lines += [f'## {title}', '']
        head = ['variant'] + [
            f'{f.replace("_", " ")} {h}' for f in keys
            for h in ('(mean ± std)', f'(seeds {", ".join(map(str, seeds))})')
        ]
        lines += ['| ' + ' | '.join(head) + ' |',
                  '|' + '---|' * len(head)]
        for v, (_, _, label) in VARIANTS.items():
            row = [f'{v}: {label}']
            for f in keys:
                vals = metric_values(results, task, v, f)
                m, s = mean_std(list(vals.values())) if vals else (None,
                                                                    None)
                row += [f'{fmt(m)} ± {fmt(s)}' if vals else '—',
                        ' / '.join(fmt(vals.get(sd)) for sd in seeds)]
            lines.append('| ' + ' | '.join(row) + ' |')
        lines += ['', 'Paired differences (per seed, then over seeds):', '',
                  '| difference | isolates | metric | per seed | mean ± std '
                  '| 95% CI | verdict |', '|---|---|---|---|---|---|---|']
        for (x, y), what in DIFFERENCES.items():
            for f in keys:
                xs = metric_values(results, task, x, f)
                ys = metric_values(results, task, y, f)
                paired = [sd for sd in seeds if sd in xs and sd in ys]
                if not paired:
                    continue
                diffs = [xs[sd] - ys[sd] for sd in paired]
                pv = paired_verdict(diffs)
                if pv['measurable'] is None:
                    verdict = 'one seed: no spread, no verdict'
                elif not pv['measurable']:
                    verdict = 'no measurable difference'
                else:
                    verdict = (f'{x} better' if pv['mean'] > 0 else
                               f'{y} better')
                verdicts.append((task, x, y, what, f, pv, verdict))
                ci = ('—' if pv['ci'] is None else
                      f'[{pv["ci"][0]:+.3f}, {pv["ci"][1]:+.3f}]')
                lines.append(
                    f'| {x} − {y} | {what} | {f.replace("_", " ")} | ' +
                    ' / '.join(fmt(d, True) for d in diffs) +
                    f' | {fmt(pv["mean"], True)} ± {fmt(pv["std"])} | '
                    f'{ci} | {verdict} |')
        lines.append('')

    lines += ['## Conclusion', '', f'Rule: {RULE}.', '']
    for (x, y), what in DIFFERENCES.items():
        ours = [v for v in verdicts if v[1:3] == (x, y)]
        if not ours:
            continue
        kinds = {v[6] for v in ours}
        if kinds == {'no measurable difference'}:
            summary = 'no measurable difference on this data at this scale'
        elif kinds == {'one seed: no spread, no verdict'}:
            summary = 'no verdict from one seed'
        else:
            summary = 'measurable on ' + ', '.join(
                f'{task} {f.replace("_", " ")} ({verdict})'
                for task, _, _, _, f, pv, verdict in ours if pv['measurable'])
            if not any(v[5]['measurable'] for v in ours):
                summary = 'mixed'
        lines.append(f'- **{what}** ({x} − {y}): {summary}: ' + '; '.join(
            f'{task} {f.replace("_", " ")} {fmt(pv["mean"], True)}, '
            f'{verdict}' for task, _, _, _, f, pv, verdict in ours) + '.')
    lines.append('')
    if plot_losses(results, png):
        lines += ['## Pre-training losses', '',
                  'Logged training losses of the pre-trainings, pixel only '
                  '(blue) and pixel + MFM (orange), one line per seed:', '',
                  f'![pre-training losses]({png.name})', '']
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text('\n'.join(lines))


# ------------------------------------------------------------------ main
def parse_args(argv=None):
    """Command line.

    Args:
        argv (list[str], optional): Arguments (default: ``sys.argv[1:]``).
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
    parser.add_argument('--in-process', action='store_true',
                        help='run the trainings and tests in this process '
                        '(saves the imports of each; default: a process '
                        'per run, as the demo)')
    parser.add_argument('--render-only', action='store_true',
                        help='only render --doc from the JSON (a page "not '
                        'yet run" without one)')
    args = parser.parse_args(argv)
    tasks = [t for t in args.tasks.split(',') if t]
    bad = [t for t in tasks if t not in TASKS]
    if bad or not tasks:
        parser.error(f'--tasks {args.tasks}: choose from '
                     f'{",".join(TASKS)} (comma-separated)')
    args.tasks = tasks
    return args


def main(argv=None):
    """Run what is missing, then render the page.

    Args:
        argv (list[str], optional): Arguments (default: ``sys.argv[1:]``).
    """
    args = parse_args(argv)
    work_dir = Path(args.work_dir).resolve()
    out = Path(args.out or work_dir / 'ablation.json').resolve()
    doc = Path(args.doc).resolve()
    results = load_results(out)
    if args.render_only:
        render(results, doc)
        log(f'page: {doc}')
        return
    pretrain_cfg = find_config(PRETRAIN_CFG)
    configs = {t: find_config(TASKS[t][0]) for t in args.tasks}
    names = (PRETRAIN_CFG, {t: TASKS[t][0] for t in args.tasks})
    if results is None:
        results = dict(pretrain_config=names[0], configs={},
                       cfg_options=args.cfg_options, seeds=[], tasks=[],
                       runs=[])
    check_compatible(results, names[0], names[1], args.cfg_options, out)
    results['configs'].update(names[1])
    results['seeds'] = sorted(set(results['seeds']) | set(args.seeds))
    results['tasks'] = [t for t in TASKS
                        if t in results['tasks'] or t in args.tasks]
    # as the demo: torch gets every core unless OMP_NUM_THREADS says
    # otherwise (the subprocesses inherit it)
    os.environ.setdefault('OMP_NUM_THREADS', str(os.cpu_count() or 1))
    ctx = dict(results=results, out=out, work_dir=work_dir,
               pretrain_cfg=pretrain_cfg, configs=configs,
               options=split_options(
                   args.cfg_options), machine=machine(),
               in_process=args.in_process)
    todo = list(jobs(args.seeds, args.tasks))
    log(f'{len(todo)} runs ({len(args.seeds)} seeds); results: {out}')
    log('embedded data: ' + str(REPO / 'data' / 'demo'))
    load_tool('tools/data/make_demo_data.py').make_demo_data(
        str(REPO / 'data' / 'demo'), verbose=True)
    start = time.time()
    for i, (seed, stage, variant) in enumerate(todo, 1):
        label = (PRETRAINS[variant][1] if stage == 'pretrain' else
                 f'({variant}) {VARIANTS[variant][2]}')
        rec = find_run(results, seed, stage, variant)
        if rec is not None:
            log(f'{i}/{len(todo)} seed {seed} {stage} {label}: in the JSON, '
                'skipped')
            continue
        log(f'{i}/{len(todo)} seed {seed} {stage} {label} '
            f'({(time.time() - start) / 60:.1f} min so far)')
        try:
            if stage == 'pretrain':
                run_pretrain(ctx, seed, variant)
            else:
                rec = run_finetune(ctx, seed, stage, variant)
                log('  ' + ', '.join(f'{f} {rec[f]:.3f}'
                                     for f in TASKS[stage][1]))
        except subprocess.CalledProcessError as exc:
            raise SystemExit(
                f'seed {seed} {stage} {variant}: {exc.cmd[1]} failed (exit '
                f'{exc.returncode}; its output is above). The runs before it '
                f'are in {out}; the same command continues from there.')
    render(results, doc)
    log(f'done in {(time.time() - start) / 60:.1f} min; JSON: {out}; '
        f'page: {doc}')


if __name__ == '__main__':
    main()
