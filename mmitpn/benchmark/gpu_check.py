"""The GPU check of ``tools/gpu_check.sh``: the wheel set it installs on a
machine without network, and its report.

The GPU machine has CPython 3.12 with torch, torchvision, timm, numpy,
opencv, pytest and scipy (and what they require, :data:`GPU_BASE`), and no
OpenMMLab package. ``tools/env/gpu_wheels.sh`` fills ``.whl/`` with every
other wheel the stack needs; :func:`check_wheels` shows that the set is
complete and installable there (wheel tags for CPython 3.12 manylinux
x86_64, every requirement met by a wheel of the set or by
:data:`GPU_BASE`). :func:`build_report` gathers what the check ran (pytest's
JUnit file, the benchmark's JSON, the phases and their status) into the
JSON and Markdown the check leaves in ``$OUT``.

Only the standard library and ``packaging`` are imported, so that the
report is written even where the stack failed to install::

    python -m mmitpn.benchmark.gpu_check check-wheels .whl
    python -m mmitpn.benchmark.gpu_check base-links SITE DEST [--also N ..]
    python -m mmitpn.benchmark.gpu_check report --out DIR [--junit F] \\
        [--collected F] [--bench F] [--phase NAME STATUS EXIT SECONDS] ..
"""
import argparse
import email.parser
import json
import os
import os.path as osp
import re
import sys
import zipfile
from typing import Dict, Iterable, List, Optional, Sequence
from xml.etree import ElementTree

from packaging.requirements import Requirement
from packaging.tags import compatible_tags, cpython_tags
from packaging.utils import canonicalize_name, parse_wheel_filename

#: Distributions the GPU machine has: the ones it was described with and
#: what those require (so they are there too). ``nvidia-*`` and ``cuda-*``
#: count as well (:func:`in_gpu_base`).
GPU_BASE = frozenset(canonicalize_name(n) for n in (
    'torch', 'torchvision', 'timm', 'numpy', 'opencv-python',
    'opencv-python-headless', 'pytest', 'scipy',
    # torch
    'filelock', 'typing-extensions', 'sympy', 'mpmath', 'networkx',
    'jinja2', 'markupsafe', 'fsspec', 'setuptools', 'triton',
    # torchvision
    'pillow',
    # timm
    'pyyaml', 'huggingface-hub', 'safetensors', 'requests', 'tqdm',
    'certifi', 'charset-normalizer', 'idna', 'urllib3', 'hf-xet',
    # pytest
    'packaging', 'pluggy', 'iniconfig'))
#: The target: CPython 3.12 on x86_64 Linux with glibc >= 2.28 (PyTorch
#: 2.11's own wheels need it).
GPU_PYTHON = (3, 12)
GPU_GLIBC_MINOR = 28


def in_gpu_base(name: str) -> bool:
    """Whether the GPU machine has distribution ``name``.

    Args:
        name (str): A distribution name.
    """
    name = canonicalize_name(name)
    return name in GPU_BASE or name.startswith(('nvidia-', 'cuda-'))


def gpu_tags(python: Sequence[int] = GPU_PYTHON,
             glibc_minor: int = GPU_GLIBC_MINOR) -> frozenset:
    """Wheel tags installable on the GPU machine.

    Args:
        python (Sequence[int]): CPython version. Defaults to (3, 12).
        glibc_minor (int): glibc is ``2.<glibc_minor>``. Defaults to 28.
    """
    platforms = [f'manylinux_2_{m}_x86_64'
                 for m in range(glibc_minor, 4, -1)]
    platforms += ['manylinux2014_x86_64', 'manylinux2010_x86_64',
                  'manylinux1_x86_64']
    interp = f'cp{python[0]}{python[1]}'
    return frozenset(list(cpython_tags(tuple(python), [interp, 'abi3',
                                                       'none'], platforms)) +
                     list(compatible_tags(tuple(python), interp,
                                          platforms)))


def marker_env(python: Sequence[int] = GPU_PYTHON) -> Dict[str, str]:
    """The environment markers of the GPU machine.

    Args:
        python (Sequence[int]): CPython version. Defaults to (3, 12).
    """
    version = f'{python[0]}.{python[1]}'
    return dict(python_version=version, python_full_version=version + '.0',
                implementation_name='cpython', implementation_version=version
                + '.0', platform_python_implementation='CPython',
                os_name='posix', sys_platform='linux', platform_system='Linux',
                platform_machine='x86_64', platform_release='',
                platform_version='', extra='')


def read_wheel(path: str) -> dict:
    """Name, version, tags and requirements of a wheel file.

    Args:
        path (str): The ``.whl`` file.

    Returns:
        dict: ``file``, ``name`` (canonical), ``version``, ``tags`` and
        ``requires`` (:class:`Requirement` objects).
    """
    name, version, _, tags = parse_wheel_filename(osp.basename(path))
    with zipfile.ZipFile(path) as z:
        meta = next(n for n in z.namelist()
                    if n.endswith('.dist-info/METADATA'))
        msg = email.parser.Parser().parsestr(z.read(meta).decode('utf-8'))
    return dict(file=osp.basename(path), name=canonicalize_name(name),
                version=version, tags=tags,
                requires=[Requirement(r) for r in
                          msg.get_all('Requires-Dist') or []])


def check_wheels(folder: str, python: Sequence[int] = GPU_PYTHON,
                 need: Iterable[str] = ('mmengine', 'mmcv-lite',
                                        'mmpretrain', 'mmitpn')) -> dict:
    """Whether ``folder`` holds a complete, installable set for the GPU
    machine.

    Args:
        folder (str): The wheel folder (``.whl``).
        python (Sequence[int]): CPython version. Defaults to (3, 12).
        need (Iterable[str]): Distributions the set must hold. Defaults to
            the OpenMMLab stack (mmcv without ops is named ``mmcv-lite``)
            and mmitpn.

    Returns:
        dict: ``wheels`` (file -> name==version), ``size_mb``, and the
        problems: ``incompatible`` (files with no tag for the target),
        ``duplicates`` (names with several wheels), ``absent`` (needed
        names without a wheel), ``unmet`` (``'requirement (of name)'``
        met neither by a wheel nor by :data:`GPU_BASE`), ``ok``.
    """
    files = sorted(f for f in os.listdir(folder) if f.endswith('.whl'))
    wheels = [read_wheel(osp.join(folder, f)) for f in files]
    target, env = gpu_tags(python), marker_env(python)
    have: Dict[str, List[str]] = {}
    for w in wheels:
        have.setdefault(w['name'], []).append(w['version'])
    unmet = []
    for w in wheels:
        for req in w['requires']:
            if req.marker is not None and not req.marker.evaluate(env):
                continue
            name = canonicalize_name(req.name)
            ok = in_gpu_base(name) or any(
                req.specifier.contains(v, prereleases=True)
                for v in have.get(name, []))
            if not ok:
                unmet.append(f"{req} (of {w['name']})")
    result = dict(
        wheels={w['file']: f"{w['name']}=={w['version']}" for w in wheels},
        size_mb=round(sum(osp.getsize(osp.join(folder, f))
                          for f in files) / 2**20, 1),
        incompatible=[w['file'] for w in wheels if not w['tags'] & target],
        duplicates=sorted(n for n, v in have.items() if len(v) > 1),
        absent=sorted(canonicalize_name(n) for n in need
                      if canonicalize_name(n) not in have),
        unmet=sorted(set(unmet)))
    result['ok'] = not any(result[k] for k in ('incompatible', 'duplicates',
                                               'absent', 'unmet'))
    return result


def base_links(site: str, dest: str, also: Iterable[str] = ()) -> List[str]:
    """Make ``dest`` a folder that holds, as symbolic links into
    ``site``, the distributions of :data:`GPU_BASE` installed there, what
    they require, and ``also`` (stand-ins for wheels this interpreter
    cannot install): with ``dest`` and the installed wheels on its path,
    an interpreter sees what the GPU machine will see.

    Args:
        site (str): A ``site-packages`` folder holding them.
        dest (str): The folder to fill.
        also (Iterable[str]): More distributions to link.

    Returns:
        list[str]: The distributions linked.
    """
    from importlib import metadata
    dists = {canonicalize_name(d.metadata['Name']): d
             for d in metadata.distributions(path=[site])}
    todo = [n for n in dists if in_gpu_base(n)] + [
        canonicalize_name(n) for n in also]
    env = {k: v for k, v in marker_env(sys.version_info[:2]).items()}
    done = set()
    while todo:
        name = todo.pop()
        if name in done or name not in dists:
            continue
        done.add(name)
        for r in dists[name].requires or []:
            req = Requirement(r)
            if req.marker is None or req.marker.evaluate(env):
                todo.append(canonicalize_name(req.name))
    os.makedirs(dest, exist_ok=True)
    for name in sorted(done):
        for f in dists[name].files or []:
            top = f.parts[0]
            if top == '..' or top == '__pycache__':
                continue
            link = osp.join(dest, top)
            if not osp.lexists(link):
                os.symlink(osp.join(site, top), link)
    return sorted(done)


# ----------------------------------------------------------------- report
def node_key(node_id: str) -> tuple:
    """The ``(classname, name)`` pytest's JUnit file gives a test node.

    Args:
        node_id (str): E.g. ``'tests/a/test_b.py::TestC::test_d[x]'``.
    """
    path, *rest = node_id.split('::')
    module = re.sub(r'\.py$', '', path).replace('/', '.')
    return '.'.join([module] + rest[:-1]), rest[-1] if rest else ''


def read_junit(path: str) -> List[dict]:
    """The test cases of a pytest JUnit XML file.

    Args:
        path (str): The file.

    Returns:
        list[dict]: ``id`` (``classname::name``), ``key``
        (:func:`node_key`), ``outcome`` (passed, failed, error, skipped),
        ``seconds`` and ``message`` (first line of a failure, error or skip).
    """
    out = []
    for case in ElementTree.parse(path).getroot().iter('testcase'):
        outcome, message = 'passed', ''
        for tag in ('failure', 'error', 'skipped'):
            el = case.find(tag)
            if el is not None:
                outcome = 'failed' if tag == 'failure' else tag
                message = (el.get('message') or el.text or '').strip()
                message = (message.splitlines() or [''])[0][:300]
                break
        key = (case.get('classname', ''), case.get('name', ''))
        out.append(dict(id='::'.join(key), key=key, outcome=outcome,
                        seconds=float(case.get('time') or 0),
                        message=message))
    return out


def read_collected(path: str) -> List[str]:
    """Node ids of ``pytest --collect-only -q`` output.

    Args:
        path (str): The saved output.
    """
    with open(path) as f:
        return [line.strip() for line in f if '::' in line and
                not line.startswith(('=', ' '))]


def build_report(phases: Sequence[Sequence], junit: Optional[str] = None,
                 collected: Optional[str] = None,
                 bench: Optional[str] = None,
                 budget_s: Optional[float] = None) -> dict:
    """Everything the check did, in one dict.

    Args:
        phases (Sequence[Sequence]): ``(name, status, exit code,
            seconds)`` of each phase, in order.
        junit (str, optional): pytest's JUnit XML file.
        collected (str, optional): The ``--collect-only -q`` output.
        bench (str, optional): The benchmark's JSON.
        budget_s (float, optional): The time budget.

    Returns:
        dict: ``budget_s``, ``phases``, ``tests`` (each test with its
        outcome; tests collected but not run are ``not run``), ``counts``,
        ``benchmark`` (the benchmark's JSON, or None) and ``skipped`` (the
        phases, tests and benchmark rows that did not run).
    """
    tests = read_junit(junit) if junit and osp.isfile(junit) else []
    ran = {t['key'] for t in tests}
    ids = read_collected(collected) if collected and osp.isfile(
        collected) else []
    for node in ids:
        key = node_key(node)
        if key not in ran:
            tests.append(dict(id=node, key=key, outcome='not run',
                              seconds=0., message=''))
    for t in tests:
        t.pop('key')
    counts: Dict[str, int] = {}
    for t in tests:
        counts[t['outcome']] = counts.get(t['outcome'], 0) + 1
    benchmark = None
    if bench and osp.isfile(bench):
        with open(bench) as f:
            benchmark = json.load(f)
    phase_rows = [dict(name=p[0], status=p[1], exit_code=int(p[2]),
                       seconds=float(p[3])) for p in phases]
    skipped = [f"phase {p['name']}: {p['status']}" for p in phase_rows
               if not p['status'].startswith('ok')]
    skipped += [f"test {t['id']}: not run" for t in tests
                if t['outcome'] == 'not run']
    for r in (benchmark or {}).get('rows', []):
        if r.get('status') != 'ok':
            skipped.append(f"benchmark {r['phase']} {r['precision']} "
                           f"b{r['batch']} {r['step']} {r['impl']}: "
                           f"{r['status']}")
    return dict(budget_s=budget_s, phases=phase_rows, tests=tests,
                counts=counts, benchmark=benchmark, skipped=skipped)


def format_report(report: dict) -> str:
    """The report as Markdown.

    Args:
        report (dict): :func:`build_report`'s result.
    """
    lines = ['# GPU check', '']
    env = (report['benchmark'] or {}).get('env', {})
    if env:
        lines += [f"Device: {env.get('device')}, torch {env.get('torch')} "
                  f"(CUDA {env.get('cuda')}), Python {env.get('python')}, "
                  f"mmengine {env.get('mmengine')}, mmcv {env.get('mmcv')} "
                  f"(no ops), mmpretrain {env.get('mmpretrain')}.", '']
    lines += [f"Budget {report['budget_s']} s.", '',
              '| phase | status | exit | s |', '|---|---|---|---|']
    lines += [f"| {p['name']} | {p['status'].replace('|', '/')} | "
              f"{p['exit_code']} | {p['seconds']:.0f} |"
              for p in report['phases']]
    counts = ', '.join(f'{v} {k}' for k, v in sorted(
        report['counts'].items()))
    lines += ['', f'## Tests marked gpu ({counts or "none"})', '',
              '| test | outcome | s | message |', '|---|---|---|---|']
    lines += [f"| {t['id']} | {t['outcome']} | {t['seconds']:.1f} | "
              f"{t['message'].replace('|', '/')} |" for t in report['tests']]
    bench = report['benchmark']
    lines += ['', '## Throughput', '']
    if bench is None:
        lines.append('No benchmark result.')
    else:
        try:
            from mmitpn.benchmark.throughput import format_throughput
            lines.append(format_throughput(bench, markdown=True))
        except ImportError as exc:  # the stack did not install
            lines.append(f'(table not formatted: {exc}; see the JSON)')
    if report['skipped']:
        lines += ['', '## Skipped or not run', '']
        lines += ['- ' + s for s in report['skipped']]
    return '\n'.join(lines) + '\n'


def main(argv: Optional[List[str]] = None) -> int:
    """Command line (see the module docstring).

    Args:
        argv (list[str], optional): Arguments; None reads ``sys.argv``.

    Returns:
        int: The exit status.
    """
    p = argparse.ArgumentParser(prog='python -m mmitpn.benchmark.gpu_check')
    sub = p.add_subparsers(dest='cmd', required=True)
    c = sub.add_parser('check-wheels', help='is the wheel folder complete')
    c.add_argument('folder')
    b = sub.add_parser('base-links', help='link the GPU machine\'s '
                       'distributions of a site into a folder')
    b.add_argument('site')
    b.add_argument('dest')
    b.add_argument('--also', nargs='*', default=[])
    r = sub.add_parser('report', help='write gpu_check.json / .md')
    r.add_argument('--out', required=True)
    r.add_argument('--junit')
    r.add_argument('--collected')
    r.add_argument('--bench')
    r.add_argument('--budget-s', type=float)
    r.add_argument('--phase', nargs=4, action='append', default=[],
                   metavar=('NAME', 'STATUS', 'EXIT', 'SECONDS'))
    args = p.parse_args(argv)
    if args.cmd == 'check-wheels':
        res = check_wheels(args.folder)
        print(f"{len(res['wheels'])} wheels, {res['size_mb']} MiB")
        for key in ('incompatible', 'duplicates', 'absent', 'unmet'):
            for item in res[key]:
                print(f'{key}: {item}')
        print('complete for CPython 3.12 manylinux x86_64' if res['ok'] else
              'NOT complete: run bash tools/env/gpu_wheels.sh')
        return 0 if res['ok'] else 1
    if args.cmd == 'base-links':
        print(' '.join(base_links(args.site, args.dest, args.also)))
        return 0
    report = build_report(args.phase, args.junit, args.collected, args.bench,
                          args.budget_s)
    os.makedirs(args.out, exist_ok=True)
    with open(osp.join(args.out, 'gpu_check.json'), 'w') as f:
        json.dump(report, f, indent=1)
    text = format_report(report)
    with open(osp.join(args.out, 'gpu_check.md'), 'w') as f:
        f.write(text)
    print(text)
    return 0


if __name__ == '__main__':
    sys.exit(main())
