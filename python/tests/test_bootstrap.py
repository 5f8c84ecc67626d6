"""The worker's entry script refuses an interpreter older than the runtime
supports with a message that says so, before parsing any of the runtime."""

import glob
import os
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

WORKER_SCRIPT = str(Path(__file__).resolve().parents[1] / 'caddy-wsgi-worker.py')

# Old interpreters on this machine: pyenv's, where present (under root's
# home, as the tests run). CADDY_WSGI_TEST_OLD_PYTHONS adds more, separated
# by os.pathsep.
OLD_PYTHONS = sorted(glob.glob(os.path.expanduser('~/.pyenv/versions/2.*/bin/python'))
                     + glob.glob(os.path.expanduser('~/.pyenv/versions/3.[0-8].*/bin/python')))
OLD_PYTHONS += [p for p in os.environ.get('CADDY_WSGI_TEST_OLD_PYTHONS', '').split(os.pathsep) if p]


def version_of(python):
    out = subprocess.run([python, '-c', 'import sys; print("%d.%d.%d" % sys.version_info[:3])'],
                         stdout=subprocess.PIPE, check=True).stdout
    return out.decode().strip()


def message(python, version):
    return ('caddy-wsgi needs Python 3.9 or newer; %s is %s: set python or python_home to a newer interpreter\n'
            % (python, version))


def test_version_check_with_a_faked_version(monkeypatch, capsys):
    monkeypatch.setattr(sys, 'version_info', (3, 7, 3, 'final', 0))
    monkeypatch.setattr(sys, 'executable', '/usr/bin/python3.7')
    with pytest.raises(SystemExit) as info:
        runpy.run_path(WORKER_SCRIPT, run_name='__main__')
    assert info.value.code == 1
    assert capsys.readouterr().err == message('/usr/bin/python3.7', '3.7.3')


@pytest.mark.parametrize('python', [
    pytest.param(p, id=p, marks=pytest.mark.skipif(not os.access(p, os.X_OK), reason='%s not installed' % p))
    for p in OLD_PYTHONS] or [pytest.param(None, marks=pytest.mark.skip(reason='no Python older than 3.9 here'))])
def test_version_check_with_an_old_interpreter(python):
    version = version_of(python)
    if tuple(int(n) for n in version.split('.')[:2]) >= (3, 9):
        pytest.skip('%s is %s' % (python, version))
    # As Caddy starts a worker; the check comes before any argument is read.
    proc = subprocess.run([python, WORKER_SCRIPT, '--app', 'app.wsgi', '--fds', '3'],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    assert proc.returncode == 1
    assert proc.stderr.decode() == message(python, version)
    assert proc.stdout == b''
