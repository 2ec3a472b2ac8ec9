"""mmitpn.benchmark.report: tables, Markdown pages and machine facts."""
from mmitpn.benchmark import report as R


def _result(cmd, **env):
    return dict(env=dict(dict(
        command=cmd, device='cpu', cpu='X', cpu_isa=None, cores=2,
        threads=2, dtype='fp32', torch='t', mmpretrain='m', repeat=1,
        heavy_repeat=1, load_avg_start=None, load_avg_end=None, wall_s=1),
        **env), notes=['a note'], results=[])


def test_cpu_isa_flags(tmp_path):
    info = tmp_path / 'cpuinfo'
    info.write_text('model name\t: X\nflags\t\t: fpu sse avx2 fma avx512f '
                    'avx512_bf16 amx_tile amx_bf16 avx512_vnni\n')
    assert R.cpu_isa(str(info)) == ['avx2', 'fma', 'avx512f', 'avx512_vnni',
                                    'avx512_bf16', 'amx_tile', 'amx_bf16']
    assert R.cpu_isa(str(tmp_path / 'missing')) is None
    md = R.format_markdown(_result('c', cpu_isa=['avx2', 'avx512_bf16']))
    assert 'ISA flags: avx2 avx512_bf16' in md


def test_tagged_tables_replace_only_their_own(tmp_path):
    md = tmp_path / 'b.md'
    md.write_text(f'intro\n{R.MD_BEGIN}\nold\n{R.MD_END}\nmiddle\n')
    R.write_markdown(str(md), _result('first bf16'), 'bf16')
    R.write_markdown(str(md), _result('second bf16'), 'bf16')
    R.write_markdown(str(md), _result('fp32 again'))
    text = md.read_text()
    assert text.startswith('intro\n') and '\nmiddle\n' in text
    assert text.count('<!-- benchmark:bf16:begin -->') == 1
    assert 'second bf16' in text and 'first bf16' not in text
    assert 'fp32 again' in text and 'old' not in text
    assert 'ISA flags: n/a' in text
    # a body given instead of the cases' table
    R.write_markdown(str(md), {}, 'gpu', body='| gpu table |\n')
    assert text.rstrip() in md.read_text()
    assert md.read_text().endswith(
        '<!-- benchmark:gpu:begin -->\n| gpu table |\n'
        '<!-- benchmark:gpu:end -->\n')


def test_tables_show_ratios_and_memory():
    rows = [
        dict(case='b x', impl='mmpretrain', ref=None, median_ms=20.,
             speedup=None, round_speedups=None, peak_mb=100., mem_ratio=None,
             gemm_share=0.8),
        dict(case='b x', impl='mmitpn', ref='mmpretrain', median_ms=10.,
             speedup=2., round_speedups=[1.5, 2., 4.], peak_mb=None,
             mem_ratio=None, gemm_share=None),
    ]
    text = R.format_table(rows).splitlines()
    assert [c.strip() for c in text[0].split(' | ')][:4] == [
        'case', 'impl', 'median ms', 'speed-up']
    assert '1 (ref)' in text[2] and '100' in text[2]
    assert '2.00x' in text[3] and '2.00x (1.50-4.00)' in text[3]
    assert 'n/a' in text[3]
    md = R.format_markdown(dict(_result('c'), results=rows))
    assert ('| b x | mmitpn | 10.0 | 2.00x | 2.00x (1.50-4.00) | n/a |  |  '
            '| mmpretrain |') in md
    assert '| b x | mmpretrain | 20.0 |  |  | 100 |  | 80% |  |' in md
    assert md.rstrip().endswith('- a note')
