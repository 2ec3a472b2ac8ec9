"""The paper's two ablations on the embedded demo data, and the demo as a
preset of them.

For every seed, with the demo's schedules, the ablation runs two integral
pre-trainings of the demo's tiny iTPN (backbone + pyramid) and four
fine-tunes per downstream task:

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
of every stage is the seed. The demo (``tools/demo.py``) is variants d (and
a) of seed 0 in folders of its own (:data:`DEMO_LAYOUT`).

Every finished run goes into a JSON file at once; a run found there is
skipped, an interrupted training resumes, so the same call picks up where
it stopped. The statistics are in :mod:`.statistics`, the page in
:mod:`.rendering`.
"""
import json
import os
import shlex
import time
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

from . import records, runs

#: The tool that runs the ablation (the page and its command name it).
TOOL = 'tools/analysis_tools/ablation.py'
#: The demo's pre-training config, found by file name.
PRETRAIN_CFG = 'itpn-tiny_pixel-mfm_1xb32-200e_demo.py'
#: task: (config, {JSON field: metric key of the test}, what it is)
TASKS = {
    'det': ('itpn-tiny_mask-rcnn_1xb4-6e_demo.py',
            {'bbox_mAP': 'coco/bbox_mAP', 'segm_mAP': 'coco/segm_mAP'},
            'Mask R-CNN on the embedded COCO-format set (val split)'),
    'seg': ('itpn-tiny_upernet_1xb4-2k_demo.py', {'mIoU': 'mIoU'},
            'UPerNet on the embedded ADE20K-style set (validation split; mIoU '
            'in %, as mmseg reports it)'),
}
#: pre-training kind: (options on top of the demo's config, label)
PRETRAINS = {
    'pixel-mfm': ([], 'pixel + MFM (the demo\'s)'),
    'pixel': (['model.mfm_head=None', 'custom_hooks=[]'], 'pixel only'),
}
#: variant: (pre-training of the backbone or None, pyramid too, label)
VARIANTS = {
    'a': (None, False, 'from scratch'),
    'b': ('pixel-mfm', False,
          'backbone from pixel + MFM, pyramid random'),
    'c': ('pixel', True, 'backbone + pyramid from pixel only'),
    'd': ('pixel-mfm', True, 'backbone + pyramid from pixel + MFM'),
}
#: paired difference: what it isolates
DIFFERENCES = {
    ('b', 'd'): 'integral pyramid pre-training',
    ('c', 'd'): 'MFM',
    ('a', 'd'): 'pre-training at all',
}
STAGES = ('pretrain', ) + tuple(TASKS)
#: The demo: its seed, and its runs' folders under its work dir (the demo
#: fine-tuning configs load ``work_dirs/demo/pretrain/epoch_200.pth``).
DEMO_SEED = 0
DEMO_LAYOUT = {
    ('pretrain', 'pixel-mfm'): 'pretrain',
    ('det', 'd'): 'mask_rcnn_pretrained',
    ('det', 'a'): 'mask_rcnn_scratch',
}


def progress(name: str) -> Callable[[str], None]:
    """A printer of progress lines ``[name HH:MM:SS] message``.

    Args:
        name (str): What is running, e.g. ``'demo'``.

    Returns:
        callable: ``log(message)``.
    """

    def log(msg: str) -> None:
        """Print ``msg`` (str) with the name and the time of day."""
        print(f'[{name} {time.strftime("%H:%M:%S")}] {msg}', flush=True)

    return log


# ------------------------------------------------------------------ options
def split_options(options: Sequence[str]) -> Dict[str, List[str]]:
    """Route ``--cfg-options`` to the stages.

    Args:
        options (Sequence[str]): ``KEY=VALUE`` strings; a key starting with
            ``pretrain.``, ``det.`` or ``seg.`` is for that stage only.

    Returns:
        dict: ``{stage: [KEY=VALUE, ...]}`` for every stage.
    """
    routed = {s: [] for s in STAGES}
    for opt in options or []:
        if '=' not in opt:
            raise ValueError(f'--cfg-options {opt!r}: expected KEY=VALUE '
                             f'(e.g. det.train_cfg.max_epochs=1).')
        stage, _, rest = opt.partition('.')
        if stage in routed:
            routed[stage].append(rest)
        else:
            for s in STAGES:
                routed[s].append(opt)
    return routed


def variant_options(variant: str, checkpoints: Dict[str, str]) -> List[str]:
    """``init_cfg`` options of a fine-tune.

    Args:
        variant (str): A key of :data:`VARIANTS`.
        checkpoints (dict): ``{pre-training kind: checkpoint path}``.

    Returns:
        list[str]: The backbone's and the neck's ``init_cfg`` option.
    """
    source, with_neck, _ = VARIANTS[variant]
    backbone = ('model.backbone.init_cfg=None' if source is None else
                f'model.backbone.init_cfg.checkpoint={checkpoints[source]}')
    neck = (f'model.neck.init_cfg.checkpoint={checkpoints[source]}'
            if with_neck else 'model.neck.init_cfg=None')
    return [backbone, neck]


def jobs(seeds: Sequence[int],
         tasks: Sequence[str],
         variants: Sequence[str] = tuple(VARIANTS)
         ) -> Iterator[Tuple[int, str, str]]:
    """Every run, in the order they are done (one seed after the other;
    the pre-trainings the variants need first).

    Args:
        seeds (Sequence[int]): The seeds.
        tasks (Sequence[str]): Keys of :data:`TASKS`.
        variants (Sequence[str]): Keys of :data:`VARIANTS`. Defaults to
            all.

    Yields:
        tuple: ``(seed, stage, variant)``.
    """
    needed = {VARIANTS[v][0] for v in variants}
    for seed in seeds:
        for kind in PRETRAINS:
            if kind in needed:
                yield seed, 'pretrain', kind
        for task in tasks:
            for variant in variants:
                yield seed, task, variant


# --------------------------------------------------------------------- JSON
def load_results(path: Path) -> Optional[dict]:
    """The JSON of the runs at ``path``, or None when there is none yet.

    Args:
        path (Path): The JSON file.
    """
    if Path(path).exists():
        return json.loads(Path(path).read_text())
    return None


def save_results(path: Path, results: dict) -> None:
    """Write the JSON atomically (a crash leaves the previous version).

    Args:
        path (Path): The JSON file.
        results (dict): Everything recorded so far.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + '.tmp')
    tmp.write_text(json.dumps(results, indent=1) + '\n')
    os.replace(tmp, path)


def find_run(results: dict, seed: int, stage: str,
             variant: str) -> Optional[dict]:
    """The record of one run, or None.

    Args:
        results (dict): The JSON of the runs.
        seed (int): The seed.
        stage (str): ``'pretrain'`` or a task of :data:`TASKS`.
        variant (str): A key of :data:`PRETRAINS` or :data:`VARIANTS`.
    """
    key = (seed, stage, variant)
    for rec in results['runs']:
        if (rec['seed'], rec['stage'], rec['variant']) == key:
            return rec
    return None


def add_run(results: dict, path: Path, rec: dict) -> None:
    """Record a finished run (replacing an earlier record of it) and save.

    Args:
        results (dict): The JSON of the runs, updated in place.
        path (Path): The JSON file.
        rec (dict): The run's record (``seed``, ``stage``, ``variant``,
            ``wall_s``, metrics ...).
    """
    key = (rec['seed'], rec['stage'], rec['variant'])
    results['runs'] = [r for r in results['runs']
                       if (r['seed'], r['stage'], r['variant']) != key
                       ] + [rec]
    save_results(path, results)


def metric_values(results: dict, task: str, variant: str,
                  field: str) -> Dict[int, float]:
    """``{seed: value}`` of one metric of one variant.

    Args:
        results (dict): The JSON of the runs.
        task (str): A key of :data:`TASKS`.
        variant (str): A key of :data:`VARIANTS`.
        field (str): A metric field, e.g. ``'bbox_mAP'``.
    """
    return {r['seed']: r[field] for r in results['runs']
            if r['stage'] == task and r['variant'] == variant}


def command(results: dict) -> str:
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


def open_results(path: Path, seeds: Sequence[int], tasks: Sequence[str],
                 cfg_options: Sequence[str]) -> dict:
    """The JSON of the runs at ``path`` (new when absent), with this call's
    seeds and tasks added.

    Args:
        path (Path): The JSON file.
        seeds (Sequence[int]): This call's seeds.
        tasks (Sequence[str]): This call's tasks.
        cfg_options (Sequence[str]): This call's ``--cfg-options``.

    Raises:
        ValueError: The file holds runs of other configs or options.
    """
    configs = {t: TASKS[t][0] for t in tasks}
    results = load_results(path) or dict(
        pretrain_config=PRETRAIN_CFG, configs={},
        cfg_options=list(cfg_options), seeds=[], tasks=[], runs=[])
    theirs = (results.get('pretrain_config'), results.get('configs', {}),
              results.get('cfg_options'))
    if (theirs[0] != PRETRAIN_CFG or theirs[2] != list(cfg_options) or any(
            theirs[1].get(t, c) != c for t, c in configs.items())):
        raise ValueError(
            f'{path} holds runs of other configs or --cfg-options ('
            f'{theirs[0]}, {theirs[1]}, options {theirs[2]}); adding runs of '
            f'{PRETRAIN_CFG}, {configs}, options {list(cfg_options)} would '
            f'mix them. Rerun with the same options, or pass another '
            f'--work-dir / --out.')
    results['configs'].update(configs)
    results['seeds'] = sorted(set(results['seeds']) | set(seeds))
    results['tasks'] = [t for t in TASKS
                        if t in results['tasks'] or t in tasks]
    return results


# --------------------------------------------------------------------- runs
class Ablation:
    """The runs of the ablation (or of a preset of it, like the demo), each
    recorded in a JSON file as it finishes.

    Args:
        work_dir (str | Path): The runs' work dirs go under it.
        out (str | Path): The JSON file of the runs.
        seeds (Sequence[int]): The seeds. Defaults to ``(0, )``.
        tasks (Sequence[str]): Keys of :data:`TASKS`. Defaults to
            ``('det', )``.
        cfg_options (Sequence[str]): ``[STAGE.]KEY=VALUE`` overrides (see
            :func:`split_options`). Defaults to ().
        layout (dict, optional): ``{(stage, variant): folder}`` of a
            one-seed preset (:data:`DEMO_LAYOUT`). None: ``seed<N>/
            <stage>_<variant>``. Defaults to None.
        show_dir (str, optional): The tests draw their predictions into
            this folder (under ``<run>/eval/<timestamp>/`` for mmdet).
            Defaults to None.
        log (callable, optional): Printer of progress lines. Defaults to
            ``progress('ablation')``.
    """

    def __init__(self,
                 work_dir,
                 out,
                 seeds: Sequence[int] = (0, ),
                 tasks: Sequence[str] = ('det', ),
                 cfg_options: Sequence[str] = (),
                 layout: Optional[dict] = None,
                 show_dir: Optional[str] = None,
                 log: Optional[Callable[[str], None]] = None):
        bad = [t for t in tasks if t not in TASKS]
        if bad or not tasks:
            raise ValueError(f'Tasks {list(tasks)}: choose from '
                             f'{", ".join(TASKS)}.')
        if layout is not None and len(seeds) != 1:
            raise ValueError('A layout names the folders of one seed; got '
                             f'seeds {list(seeds)}.')
        self.work_dir = Path(work_dir).resolve()
        self.out = Path(out).resolve()
        self.seeds, self.tasks = list(seeds), list(tasks)
        self.options = split_options(cfg_options)
        self.layout, self.show_dir = layout, show_dir
        self.log = log or progress('ablation')
        self.configs = {'pretrain': runs.find_config(PRETRAIN_CFG)}
        self.configs.update(
            {t: runs.find_config(TASKS[t][0]) for t in self.tasks})
        self.results = open_results(self.out, self.seeds, self.tasks,
                                    cfg_options)
        self.machine = records.machine()

    def run_dir(self, seed: int, stage: str, variant: str) -> Path:
        """The work dir of one run.

        Args:
            seed (int): The seed.
            stage (str): ``'pretrain'`` or a task.
            variant (str): A pre-training kind or a variant.
        """
        if self.layout is not None:
            return self.work_dir / self.layout[stage, variant]
        return self.work_dir / f'seed{seed}' / f'{stage}_{variant}'

    def _train(self, stage: str, work_dir: Path, options: List[str],
               final: str) -> bool:
        """Train (resuming an interrupted run) unless ``final`` exists.

        Args:
            stage (str): ``'pretrain'`` or a task (picks the config).
            work_dir (Path): The run's work dir.
            options (list[str]): ``KEY=VALUE`` overrides of the run.
            final (str): Name of the checkpoint the training ends with.

        Returns:
            bool: Whether it resumed a run left by an earlier call.
        """
        if (work_dir / final).exists():
            return False
        config = self.configs[stage]
        runs.check_work_dir(work_dir, config)
        self.log('train, as: ' + shlex.join([
            'python', 'tools/train.py', _shown(config), '--work-dir',
            _shown(work_dir), '--resume', '--cfg-options', *options]))
        return runs.train(config, work_dir, options)

    def pretrain(self, seed: int, kind: str) -> Path:
        """Integral pre-training ``kind`` of ``seed``, unless it is recorded
        and its checkpoint is there.

        Args:
            seed (int): The seed.
            kind (str): A key of :data:`PRETRAINS`.

        Returns:
            Path: The checkpoint it ended with.
        """
        work_dir = self.run_dir(seed, 'pretrain', kind)
        options = self.options['pretrain'] + PRETRAINS[kind][0] + [
            f'randomness.seed={seed}']
        ckpt = work_dir / runs.final_checkpoint(self.configs['pretrain'],
                                                self.options['pretrain'])
        if find_run(self.results, seed, 'pretrain', kind) is not None and \
                ckpt.exists():
            return ckpt
        start = time.time()
        resumed = self._train('pretrain', work_dir, options, ckpt.name)
        losses = records.epoch_losses(work_dir)
        add_run(self.results, self.out, dict(
            seed=seed, stage='pretrain', variant=kind,
            wall_s=round(time.time() - start, 1), resumed=resumed,
            work_dir=str(work_dir), checkpoint=ckpt.name,
            last_epoch_losses=losses[max(losses)] if losses else {},
            machine=self.machine))
        return ckpt

    def finetune(self, seed: int, task: str, variant: str) -> dict:
        """Fine-tune and test ``variant`` of ``task`` for ``seed`` (its
        pre-training first, if that is not there), unless it is recorded.

        The test's metrics are also written to ``<run>/test_metrics.json``.

        Args:
            seed (int): The seed.
            task (str): A key of :data:`TASKS`.
            variant (str): A key of :data:`VARIANTS`.

        Returns:
            dict: The run's record.
        """
        rec = find_run(self.results, seed, task, variant)
        if rec is not None:
            return rec
        keys = TASKS[task][1]
        source = VARIANTS[variant][0]
        checkpoints = {k: self.pretrain(seed, k) for k in {source} - {None}}
        work_dir = self.run_dir(seed, task, variant)
        options = self.options[task] + variant_options(
            variant, checkpoints) + [f'randomness.seed={seed}']
        final = runs.final_checkpoint(self.configs[task], self.options[task])
        start = time.time()
        resumed = self._train(task, work_dir, options, final)
        self.log('test, as: ' + shlex.join(
            ['python', 'tools/test.py', _shown(self.configs[task]),
             _shown(work_dir / final), '--work-dir',
             _shown(work_dir / 'eval')] +
            (['--show-dir', self.show_dir] if self.show_dir else []) +
            ['--cfg-options', *options]))
        metrics = runs.test(self.configs[task], work_dir / final,
                            work_dir / 'eval', options,
                            show_dir=self.show_dir)
        missing = [k for k in keys.values() if k not in metrics]
        if missing:
            raise RuntimeError(f'The test of {work_dir / final} reported no '
                               f'{", ".join(missing)} (only '
                               f'{", ".join(metrics)}).')
        (work_dir / 'test_metrics.json').write_text(
            json.dumps(metrics, indent=2) + '\n')
        rec = dict(seed=seed, stage=task, variant=variant,
                   wall_s=round(time.time() - start, 1), resumed=resumed,
                   work_dir=str(work_dir), checkpoint=final,
                   machine=self.machine)
        rec.update({field: metrics[key] for field, key in keys.items()})
        add_run(self.results, self.out, rec)
        return rec

    def run(self, variants: Sequence[str] = tuple(VARIANTS)) -> dict:
        """Every run of the seeds, tasks and ``variants`` that the JSON does
        not hold yet.

        Args:
            variants (Sequence[str]): Keys of :data:`VARIANTS`. Defaults to
                all.

        Returns:
            dict: The JSON of the runs.
        """
        todo = list(jobs(self.seeds, self.tasks, variants))
        self.log(f'{len(todo)} runs ({len(self.seeds)} seeds); results: '
                 f'{self.out}')
        start = time.time()
        for i, (seed, stage, variant) in enumerate(todo, 1):
            label = (PRETRAINS[variant][1] if stage == 'pretrain' else
                     f'({variant}) {VARIANTS[variant][2]}')
            head = f'{i}/{len(todo)} seed {seed} {stage} {label}'
            if find_run(self.results, seed, stage, variant) is not None:
                self.log(f'{head}: in the JSON, skipped')
                continue
            self.log(f'{head} ({(time.time() - start) / 60:.1f} min so far)')
            try:
                if stage == 'pretrain':
                    self.pretrain(seed, variant)
                else:
                    rec = self.finetune(seed, stage, variant)
                    self.log('  ' + ', '.join(f'{f} {rec[f]:.3f}'
                                              for f in TASKS[stage][1]))
            except BaseException:
                self.log(f'seed {seed} {stage} {variant} failed (the error '
                         f'follows). The runs before it are in {self.out}; '
                         f'the same command continues from there.')
                raise
        self.log(f'done in {(time.time() - start) / 60:.1f} min')
        return self.results


def _shown(path) -> str:
    """``path`` relative to the working directory when it is below it."""
    path = Path(path)
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)
