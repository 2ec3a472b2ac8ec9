"""Printing and saving benchmark results: the fixed-width table, the
Markdown table (written between marker lines of a page, so that several
runs live in one file) and the machine facts a reader needs to judge them.
"""
import os
import platform
import statistics
from pathlib import Path
from typing import List, Optional


def format_table(rows: List[dict]) -> str:
    """The results as a fixed-width text table.

    Args:
        rows (list[dict]): Rows of :func:`.cases.summarize`.
    """
    head = ('case', 'impl', 'median ms', 'speed-up', 'per round',
            'peak MB', 'mem ratio', 'vs')
    lines = []
    for r in rows:
        rs = r['round_speedups']
        lines.append((
            r['case'], r['impl'], f"{r['median_ms']:.1f}",
            f"{r['speedup']:.2f}x" if r['speedup'] else '1 (ref)'
            if not r['ref'] else '',
            f'{statistics.median(rs):.2f}x ({min(rs):.2f}-{max(rs):.2f})'
            if rs else '',
            f"{r['peak_mb']:.0f}" if r['peak_mb'] is not None else 'n/a',
            f"{r['mem_ratio']:.2f}" if r['mem_ratio'] is not None else '',
            r['ref'] or ''))
    widths = [max(len(x[i]) for x in lines + [head]) for i in range(8)]
    fmt = ' | '.join('{:<%d}' % w for w in widths)
    sep = '-+-'.join('-' * w for w in widths)
    return '\n'.join([fmt.format(*head), sep] +
                     [fmt.format(*x) for x in lines])


MD_BEGIN = '<!-- benchmark:begin -->'
MD_END = '<!-- benchmark:end -->'


def format_markdown(result: dict) -> str:
    """The run as Markdown: command, environment, table and notes.

    Args:
        result (dict): ``env``, ``notes`` and ``results`` of a run.
    """
    env = result['env']
    lines = [
        f"Command: `{env['command']}`", '',
        f"Machine: {env['device']} ({env['cpu']}, {env['cores']} cores, "
        f"ISA flags: {' '.join(env.get('cpu_isa') or ['n/a'])}), "
        f"{env['threads']} threads, dtype {env['dtype']}, torch "
        f"{env['torch']}, mmpretrain {env['mmpretrain']}; "
        f"{env['repeat']} timed rounds ({env['heavy_repeat']} for case c), "
        f"load average at start / end {env['load_avg_start']} / "
        f"{env['load_avg_end']}, {env['wall_s']} s in all.", '',
        '| case | impl | median ms | speed-up | per round | peak MB | '
        'mem ratio | GEMM share | vs |',
        '|---|---|---|---|---|---|---|---|---|'
    ]
    for r in result['results']:
        rs = r['round_speedups']
        lines.append('| ' + ' | '.join([
            r['case'], r['impl'], f"{r['median_ms']:.1f}",
            f"{r['speedup']:.2f}x" if r['speedup'] else '',
            f'{statistics.median(rs):.2f}x ({min(rs):.2f}-{max(rs):.2f})'
            if rs else '',
            f"{r['peak_mb']:.0f}" if r['peak_mb'] is not None else 'n/a',
            f"{r['mem_ratio']:.2f}" if r['mem_ratio'] is not None else '',
            f"{r['gemm_share']:.0%}" if r.get('gemm_share') is not None
            else '', r['ref'] or ''
        ]) + ' |')
    lines.append('')
    lines += ['- ' + n for n in result['notes']]
    return '\n'.join(lines) + '\n'


def markers(tag: str = ''):
    """The begin / end marker lines of a Markdown table.

    Args:
        tag (str): Names one of several tables in a file; '' gives
            :data:`MD_BEGIN` / :data:`MD_END`. Defaults to ''.
    """
    if not tag:
        return MD_BEGIN, MD_END
    return f'<!-- benchmark:{tag}:begin -->', f'<!-- benchmark:{tag}:end -->'


def write_markdown(path: str, result: dict, tag: str = '',
                   body: Optional[str] = None) -> None:
    """Put a table into ``path``, between the marker lines of ``tag`` (see
    :func:`markers`) when the file has them, else appended to the file
    with new markers (the file is created if absent).

    Args:
        path (str): The Markdown file.
        result (dict): The run (:func:`format_markdown`'s input).
        tag (str): Marker tag. Defaults to ''.
        body (str, optional): Markdown to write instead of
            ``format_markdown(result)``. Defaults to None.
    """
    body = format_markdown(result) if body is None else body
    begin, end = markers(tag)
    p = Path(path)
    text = p.read_text() if p.is_file() else ''
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        tail = rest.split(end, 1)[1]
        text = f'{head}{begin}\n{body}{end}{tail}'
    elif text:
        text = f'{text.rstrip()}\n\n{begin}\n{body}{end}\n'
    else:
        text = f'# mmitpn benchmark\n\n{begin}\n{body}{end}\n'
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)


def cpu_name() -> str:
    """CPU model name (Linux), else what :mod:`platform` knows."""
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


#: CPU instruction-set flags that decide fp32 / bf16 matrix-product speed
ISA_FLAGS = ('avx2', 'fma', 'avx512f', 'avx512_vnni', 'avx512_bf16',
             'avx_vnni', 'amx_tile', 'amx_bf16', 'amx_int8')


def cpu_isa(path: str = '/proc/cpuinfo') -> Optional[List[str]]:
    """Which of :data:`ISA_FLAGS` the CPU reports (Linux; None elsewhere):
    ``avx512_bf16`` and ``amx_bf16`` are the CPU's bf16 dot-product and
    matrix instructions, which bf16 autocast on a CPU relies on for speed.

    Args:
        path (str): The cpuinfo file. Defaults to ``/proc/cpuinfo``.
    """
    try:
        with open(path) as f:
            for line in f:
                if line.startswith('flags'):
                    have = set(line.split(':', 1)[1].split())
                    return [x for x in ISA_FLAGS if x in have]
    except OSError:
        pass
    return None


def load_avg() -> Optional[List[float]]:
    """1/5/15-minute load averages (None where unknown): other work on the
    machine shows here (it inflates both sides of a ratio, but not always
    equally)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None
