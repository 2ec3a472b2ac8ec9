"""run_tool: mmitpn's own errors as one line, others with a traceback."""
import pytest
from mmengine.registry import MODELS as ROOT

import mmitpn.models  # noqa: F401
from mmitpn.utils import run_tool
from mmitpn.utils.errors import own_error


def bad_arch():
    ROOT.build(dict(type='mmitpn.HiViTBackbone', arch='itpn-huge'))


def test_own_error_through_the_registry(capsys, monkeypatch):
    """MMEngine's registry re-raises a build error with the class name
    prepended; the line printed is mmitpn's own message."""
    monkeypatch.delenv('MMITPN_DEBUG', raising=False)
    with pytest.raises(SystemExit) as exit_:
        run_tool(bad_arch)
    assert exit_.value.code == 1
    err = capsys.readouterr().err
    assert err.count('\n') == 1
    assert err.startswith("ERROR: ValueError: Unknown HiViT arch 'itpn-huge'"
                          '; choose one of')
    assert err.rstrip().endswith('(set MMITPN_DEBUG=1 for the traceback)')


def test_debug_shows_the_traceback(monkeypatch):
    monkeypatch.setenv('MMITPN_DEBUG', '1')
    with pytest.raises(ValueError, match='itpn-huge'):
        run_tool(bad_arch)


def test_other_errors_keep_their_traceback(monkeypatch):
    monkeypatch.delenv('MMITPN_DEBUG', raising=False)

    def host_failure():
        {}['missing']  # noqa: B018 -- an error outside mmitpn

    with pytest.raises(KeyError):
        run_tool(host_failure)
    try:
        host_failure()
    except KeyError as e:
        assert own_error(e) is None
