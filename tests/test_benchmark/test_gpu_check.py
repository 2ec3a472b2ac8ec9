"""mmitpn.benchmark.gpu_check: the wheel set of the GPU check and its
report, on wheels and pytest runs made here."""
import json
import subprocess
import sys
import zipfile

from mmitpn.benchmark import gpu_check as G


def make_wheel(folder, filename, requires=()):
    """A minimal real wheel: METADATA with Requires-Dist, WHEEL, RECORD."""
    name, version = filename.split('-')[:2]
    info = f'{name}-{version}.dist-info'
    meta = f'Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n'
    meta += ''.join(f'Requires-Dist: {r}\n' for r in requires)
    with zipfile.ZipFile(folder / filename, 'w') as z:
        z.writestr(f'{name}/__init__.py', '')
        z.writestr(f'{info}/METADATA', meta)
        z.writestr(f'{info}/WHEEL', 'Wheel-Version: 1.0\n')
        z.writestr(f'{info}/RECORD', '')


def test_check_wheels_finds_what_the_gpu_machine_would_miss(tmp_path):
    make_wheel(tmp_path, 'a-1.0-py3-none-any.whl', [
        'b>=2', 'numpy>=1.20', 'nvidia-cublas', 'zz; python_version < "3.8"',
        'yy; sys_platform == "win32"', 'c[extra]>=1', 'x; extra == "docs"'
    ])
    make_wheel(tmp_path, 'b-2.1-cp312-cp312-manylinux_2_17_x86_64.whl')
    make_wheel(tmp_path, 'c-0.5-py3-none-any.whl')
    make_wheel(tmp_path, 'd-1.0-cp311-cp311-manylinux_2_17_x86_64.whl',
               ['b>=3'])
    make_wheel(tmp_path, 'e-1.0-cp312-cp312-manylinux_2_34_x86_64.whl')
    res = G.check_wheels(str(tmp_path), need=('a', 'b', 'f'))
    assert res['wheels']['a-1.0-py3-none-any.whl'] == 'a==1.0'
    # a cp311 wheel and one needing glibc 2.34 do not install on the target
    assert res['incompatible'] == [
        'd-1.0-cp311-cp311-manylinux_2_17_x86_64.whl',
        'e-1.0-cp312-cp312-manylinux_2_34_x86_64.whl']
    # numpy and nvidia-* are the machine's; markers for other Pythons,
    # platforms and extras do not count; c 0.5 is too old
    assert res['unmet'] == ['b>=3 (of d)', 'c[extra]>=1 (of a)']
    assert res['absent'] == ['f'] and res['duplicates'] == []
    assert not res['ok']


def test_check_wheels_accepts_a_complete_set(tmp_path):
    make_wheel(tmp_path, 'a-1.0-py3-none-any.whl', ['b>=2', 'torch'])
    make_wheel(tmp_path, 'b-2.1-cp312-abi3-manylinux2014_x86_64.whl')
    res = G.check_wheels(str(tmp_path), need=('a', ))
    assert res['ok'] and res['size_mb'] < 0.1
    make_wheel(tmp_path, 'b-2.2-py3-none-any.whl')
    assert G.check_wheels(str(tmp_path), need=('a', ))['duplicates'] == [
        'b']


def test_node_key_is_the_junit_name():
    assert G.node_key('tests/a/test_b.py::test_d[x-1]') == (
        'tests.a.test_b', 'test_d[x-1]')
    assert G.node_key('tests/a/test_b.py::TestC::test_d') == (
        'tests.a.test_b.TestC', 'test_d')


def test_report_of_a_real_pytest_run(tmp_path):
    """pytest runs three tests of four (one deselected: "not run"); the
    report has each outcome, the failure's first line, the phases and
    what was skipped."""
    tests = tmp_path / 'tests'
    tests.mkdir()
    (tests / 'test_x.py').write_text(
        'import pytest\n\n'
        'def test_ok():\n    pass\n\n'
        'def test_bad():\n    assert 1 == 2, "one is not two"\n\n'
        'def test_skip():\n    pytest.skip("no gpu here")\n\n'
        'def test_late():\n    pass\n')
    base = [sys.executable, '-m', 'pytest', '-p', 'no:cacheprovider', '-o',
            'addopts=', 'tests/test_x.py']
    collected = tmp_path / 'collected.txt'
    collected.write_text(subprocess.run(
        base + ['--collect-only', '-q'], cwd=tmp_path, capture_output=True,
        text=True).stdout)
    junit = tmp_path / 'junit.xml'
    subprocess.run(base + ['-k', 'not late', f'--junitxml={junit}'],
                   cwd=tmp_path, capture_output=True)
    bench = tmp_path / 'bench.json'
    bench.write_text(json.dumps(dict(notes=[], goals=[], rows=[
        dict(phase='compiled', precision='bf16', batch=64, step='pixel step',
             impl='mmitpn compiled', status='skipped: budget')])))
    report = G.build_report(
        [('install', 'ok', 0, 3), ('pytest', 'tests failed', 1, 9.5),
         ('benchmark', 'ok (CPU, tiny model: code paths only)', 0, 20)],
        str(junit), str(collected), str(bench), budget_s=480)
    got = {t['id'].split('::')[-1]: t for t in report['tests']}
    assert {k: v['outcome'] for k, v in got.items()} == {
        'test_ok': 'passed', 'test_bad': 'failed', 'test_skip': 'skipped',
        'test_late': 'not run'}
    assert 'one is not two' in got['test_bad']['message']
    assert 'no gpu here' in got['test_skip']['message']
    assert report['counts'] == {'passed': 1, 'failed': 1, 'skipped': 1,
                                'not run': 1}
    assert report['skipped'] == [
        'phase pytest: tests failed',
        'test tests/test_x.py::test_late: not run',
        'benchmark compiled bf16 b64 pixel step mmitpn compiled: '
        'skipped: budget']
    text = G.format_report(report)
    assert '| pytest | tests failed | 1 | 10 |' in text
    assert '## Tests marked gpu (1 failed, 1 not run, 1 passed, 1 skipped)' \
        in text
    assert '- test tests/test_x.py::test_late: not run' in text


def test_report_without_results_still_writes(tmp_path):
    """Where the stack did not install nothing but the phases is known:
    the command line still writes both files."""
    out = tmp_path / 'out'
    assert G.main(['report', '--out', str(out), '--junit',
                   str(tmp_path / 'missing.xml'), '--phase', 'install',
                   'failed', '1', '2']) == 0
    data = json.loads((out / 'gpu_check.json').read_text())
    assert data['tests'] == [] and data['benchmark'] is None
    assert data['skipped'] == ['phase install: failed']
    assert 'No benchmark result.' in (out / 'gpu_check.md').read_text()


def test_base_links_take_the_gpu_machines_packages_and_their_needs(
        tmp_path):
    """From a site holding torch (needing dep), mmengine and a stand-in,
    the links are torch, dep and the stand-in: not mmengine, which must
    come from the wheels."""
    site = tmp_path / 'site'

    def dist(name, requires=()):
        (site / name).mkdir(parents=True)
        (site / name / '__init__.py').write_text('')
        info = site / f'{name}-1.0.dist-info'
        info.mkdir()
        (info / 'METADATA').write_text(
            f'Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n' +
            ''.join(f'Requires-Dist: {r}\n' for r in requires))
        (info / 'RECORD').write_text(
            f'{name}/__init__.py,,\n{info.name}/METADATA,,\n')

    dist('torch', ['dep', 'winonly; sys_platform == "win32"'])
    dist('dep')
    dist('winonly')
    dist('mmengine')
    dist('matplotlib')
    dest = tmp_path / 'base'
    got = G.base_links(str(site), str(dest), also=['matplotlib'])
    assert got == ['dep', 'matplotlib', 'torch']
    assert sorted(p.name for p in dest.iterdir()) == [
        'dep', 'dep-1.0.dist-info', 'matplotlib', 'matplotlib-1.0.dist-info',
        'torch', 'torch-1.0.dist-info']
    assert (dest / 'torch').resolve() == (site / 'torch').resolve()
