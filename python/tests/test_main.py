"""caddy_wsgi.main: loading the application, and the worker process as Caddy
runs it (python caddy-wsgi-worker.py --app ... --fds ...)."""

import gc
import importlib
import json
import os
import re
import socket
import subprocess
import sys
import textwrap
import threading
import time
import traceback
import types
import warnings
from pathlib import Path

import pytest

from caddy_wsgi import main, wire
from fakecaddy import HELLO, LEVEL_ERROR, LEVEL_INFO, STARTUP_ERROR, TIMEOUT, Client, decode_pairs

WORKER_SCRIPT = Path(__file__).resolve().parents[1] / 'caddy-wsgi-worker.py'

# Interpreters to run the worker process under: this one, and others found
# here (CPython 3.9 is the oldest supported). CADDY_WSGI_TEST_PYTHONS adds
# more, separated by os.pathsep.
OTHER_PYTHONS = ['/root/.pyenv/versions/3.9.18/bin/python']
OTHER_PYTHONS += [p for p in os.environ.get('CADDY_WSGI_TEST_PYTHONS', '').split(os.pathsep) if p]
PYTHONS = [pytest.param(sys.executable, id='this-python')] + [
    pytest.param(p, id=p, marks=pytest.mark.skipif(not os.access(p, os.X_OK), reason='%s not installed' % p))
    for p in OTHER_PYTHONS if os.path.realpath(p) != os.path.realpath(sys.executable)]


@pytest.fixture
def clean_modules():
    """Forget the modules a test imports."""
    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before:
        del sys.modules[name]
    importlib.invalidate_caches()


def write(path, text):
    path.write_text(textwrap.dedent(text))
    return path


HELLO_APP = '''
import os, sys, threading

NAME = __name__

def application(environ, start_response):
    body = environ['wsgi.input'].read()
    print('print() from the request thread')
    environ['wsgi.errors'].write('to wsgi.errors\\n')
    info = {
        'name': NAME,
        'body': body.decode('latin-1'),
        'path': environ['PATH_INFO'],
        'multithread': environ['wsgi.multithread'],
        'multiprocess': environ['wsgi.multiprocess'],
        'script_filename': environ['SCRIPT_FILENAME'],
        'group': environ['mod_wsgi.process_group'],
        'pid': os.getpid(),
        'version': list(sys.version_info[:2]),
        'thread': threading.current_thread().name,
    }
    start_response('200 OK', [('Content-Type', 'application/json')])
    return [json.dumps(info).encode()]

import json
'''


# ---------------------------------------------------------------- load_script

def test_load_script_finds_application(tmp_path, clean_modules):
    script = write(tmp_path / 'site.wsgi', '''
        NAME = __name__
        FILE = __file__
        ran_main = False
        if __name__ == '__main__':
            ran_main = True

        def application(environ, start_response):
            return []
    ''')
    app = main.load_script(str(script), 'application')
    module = sys.modules[app.__module__]
    assert app.__name__ == 'application'
    assert module.NAME == app.__module__ != '__main__'
    assert module.NAME.startswith('_caddy_wsgi_')
    assert module.FILE == str(script)
    assert module.ran_main is False


def test_load_script_named_callable(tmp_path, clean_modules):
    script = write(tmp_path / 'site.wsgi', '''
        def application(environ, start_response):
            return [b'default']

        def app(environ, start_response):
            return [b'named']

        class Callable:
            def __call__(self, environ, start_response):
                return [b'instance']

        instance = Callable()
    ''')
    assert main.load_script(str(script), 'app')(None, None) == [b'named']
    assert main.load_script(str(script), 'instance')(None, None) == [b'instance']


def test_load_script_unique_module_names(tmp_path, clean_modules):
    paths = []
    for sub in ('one', 'two'):
        (tmp_path / sub).mkdir()
        paths.append(write(tmp_path / sub / 'app.wsgi', '''
            def application(environ, start_response):
                return [%r]
        ''' % sub.encode()))
    first = main.load_script(str(paths[0]), 'application')
    second = main.load_script(str(paths[1]), 'application')
    assert first.__module__ != second.__module__
    assert first(None, None) == [b'one'] and second(None, None) == [b'two']
    assert sys.modules[first.__module__].__file__ == str(paths[0])


def test_load_script_bytecode_does_not_shadow_a_module(tmp_path, clean_modules, monkeypatch):
    monkeypatch.setattr(sys, 'dont_write_bytecode', False)   # as in production
    script = write(tmp_path / 'shadowapp.wsgi', 'def application(e, s): return "from the .wsgi"\n')
    module = write(tmp_path / 'shadowapp.py', 'def application(e, s): return "from the .py!!"\n')
    assert script.stat().st_size == module.stat().st_size
    os.utime(script, (1700000000, 1700000000))
    os.utime(module, (1700000000, 1700000000))    # e.g. unpacked from one archive
    assert main.load_script(str(script), 'application')(None, None) == 'from the .wsgi'
    monkeypatch.syspath_prepend(str(tmp_path))
    imported = importlib.import_module('shadowapp')
    assert imported.__file__ == str(module)
    assert imported.application(None, None) == 'from the .py!!'


def test_load_script_missing_file(tmp_path):
    missing = tmp_path / 'nowhere.wsgi'
    with pytest.raises(main.LoadError) as info:
        main.load_script(str(missing), 'application')
    assert str(missing) in str(info.value)
    assert 'does not exist' in str(info.value)


def test_load_script_directory(tmp_path):
    with pytest.raises(main.LoadError) as info:
        main.load_script(str(tmp_path), 'application')
    assert str(tmp_path) in str(info.value)


def test_load_script_syntax_error(tmp_path, clean_modules):
    script = write(tmp_path / 'broken.wsgi', '''
        def application(environ, start_response)
            return []
    ''')
    before = set(sys.modules)
    with pytest.raises(SyntaxError) as info:
        main.load_script(str(script), 'application')
    assert info.value.filename == str(script)
    assert info.value.lineno == 2
    assert set(sys.modules) == before


def test_load_script_import_error(tmp_path, clean_modules):
    script = write(tmp_path / 'imports.wsgi', '''
        import caddy_wsgi_no_such_module_anywhere

        def application(environ, start_response):
            return []
    ''')
    before = set(sys.modules)
    with pytest.raises(ImportError) as info:
        main.load_script(str(script), 'application')
    assert info.value.name == 'caddy_wsgi_no_such_module_anywhere'
    # The traceback names the script and the line.
    text = ''.join(traceback.format_exception(info.type, info.value, info.tb))
    assert 'File "%s", line 2' % script in text
    assert set(sys.modules) == before


def test_load_script_exception_at_import(tmp_path, clean_modules):
    script = write(tmp_path / 'raises.wsgi', '''
        raise RuntimeError('configuration missing')
    ''')
    with pytest.raises(RuntimeError, match='configuration missing'):
        main.load_script(str(script), 'application')


def test_load_script_missing_callable(tmp_path, clean_modules):
    script = write(tmp_path / 'nocallable.wsgi', '''
        def app(environ, start_response):
            return []
        nothing = None
    ''')
    for name in ('application', 'nothing'):
        with pytest.raises(main.LoadError) as info:
            main.load_script(str(script), name)
        assert str(script) in str(info.value)
        assert repr(name) in str(info.value)


def test_load_script_not_callable(tmp_path, clean_modules):
    script = write(tmp_path / 'notcallable.wsgi', '''
        application = {'not': 'callable'}
    ''')
    with pytest.raises(main.LoadError) as info:
        main.load_script(str(script), 'application')
    message = str(info.value)
    assert str(script) in message and 'dict' in message and 'callable' in message


def test_load_script_missing_callable_lists_the_others(tmp_path, clean_modules):
    script = write(tmp_path / 'app.wsgi', '''
        from os.path import join            # imported: not the application
        from collections import OrderedDict

        class Factory:
            def __call__(self, environ, start_response):
                return []

        def create_app():
            return Factory()

        app = create_app()
        _private = create_app
        CONFIG = {'debug': False}
    ''')
    with pytest.raises(main.LoadError) as info:
        main.load_script(str(script), 'application')
    assert str(info.value) == ("WSGI script %s defines no 'application'; it defines these callables: "
                               "Factory, create_app, app. Set callable_object app (WSGICallableObject)" % script)


def test_load_script_missing_callable_suggests_calling_the_factory(tmp_path, clean_modules):
    script = write(tmp_path / 'factory.wsgi', '''
        def create_app(config=None):
            return None
    ''')
    with pytest.raises(main.LoadError) as info:
        main.load_script(str(script), 'application')
    assert str(info.value) == ("WSGI script %s defines no 'application'; it defines these callables: create_app. "
                               "If create_app is an application factory, call it in the script: "
                               "application = create_app()" % script)


def test_load_script_without_any_callable(tmp_path, clean_modules):
    script = write(tmp_path / 'empty.wsgi', '''
        import os
        VALUE = 1
    ''')
    with pytest.raises(main.LoadError) as info:
        main.load_script(str(script), 'application')
    assert str(info.value) == "WSGI script %s defines no 'application', nor any other callable" % script


def test_load_script_factory_call_is_for_modules(tmp_path, clean_modules):
    script = write(tmp_path / 'site.wsgi', HELLO_APP)
    with pytest.raises(main.LoadError) as info:
        main.load_script(str(script), 'create_app()')
    assert str(info.value) == ('callable_object create_app() for WSGI script %s: an application factory call is '
                               'for module targets (module:create_app()); in a script, call the factory and name '
                               'the result: application = create_app()' % script)


# ---------------------------------------------------------------- import script

def test_import_script_then_same_wsgi_script_runs_once(tmp_path, clean_modules):
    runs = tmp_path / 'runs'
    script = write(tmp_path / 'site.wsgi', '''
        with open(%r, 'a') as f:
            f.write('ran\\n')

        def application(environ, start_response):
            return []
    ''' % str(runs))
    main.run_import_script(str(script))
    app = main.load_script(str(script), 'application')
    assert runs.read_text() == 'ran\n'
    assert app.__module__.startswith('_caddy_wsgi_')


def test_import_script_has_its_own_module(tmp_path, clean_modules):
    script = write(tmp_path / 'preload.py', '''
        NAME = __name__
    ''')
    main.run_import_script(str(script))
    modules = [m for m in sys.modules.values() if getattr(m, '__file__', None) == str(script)]
    assert len(modules) == 1
    assert modules[0].NAME == modules[0].__name__ != '__main__'


def test_import_script_missing(tmp_path):
    missing = tmp_path / 'nowhere.py'
    with pytest.raises(main.LoadError) as info:
        main.run_import_script(str(missing))
    assert str(info.value) == 'import script %s does not exist' % missing


# ---------------------------------------------------------------- load_module

@pytest.fixture
def package(tmp_path, monkeypatch, clean_modules):
    pkg = tmp_path / 'wsgipkg_under_test'
    pkg.mkdir()
    (pkg / '__init__.py').write_text('')
    write(pkg / 'mod.py', '''
        def application(environ, start_response):
            return [b'default']

        def app(environ, start_response):
            return [b'named']

        setting = 42
    ''')
    monkeypatch.syspath_prepend(str(tmp_path))
    return 'wsgipkg_under_test.mod'


def test_load_module_named_callable(package):
    assert main.load_module(package + ':app', 'application')(None, None) == [b'named']


def test_load_module_default_callable(package):
    assert main.load_module(package, 'application')(None, None) == [b'default']


def test_load_module_callable_from_target_or_argument(package):
    # mod_wsgi-express's module type: the module, and --callable-object.
    assert main.load_module(package, 'app')(None, None) == [b'named']
    # The target's own callable is the more specific.
    assert main.load_module(package + ':application', 'app')(None, None) == [b'default']


def test_load_module_missing_callable(package):
    with pytest.raises(main.LoadError) as info:
        main.load_module(package + ':nope', 'application')
    assert package in str(info.value) and "'nope'" in str(info.value)
    with pytest.raises(main.LoadError) as info:
        main.load_module(package, 'nope')
    assert package in str(info.value) and "'nope'" in str(info.value)


def test_load_module_not_callable(package):
    with pytest.raises(main.LoadError) as info:
        main.load_module(package + ':setting', 'application')
    assert package in str(info.value) and 'int' in str(info.value)


def test_load_module_missing_callable_lists_the_others(package):
    with pytest.raises(main.LoadError) as info:
        main.load_module(package + ':nope', 'application')
    assert str(info.value) == ("module %s defines no 'nope'; it defines these callables: application, app. "
                               "Write %s:application" % (package, package))


# ---------------------------------------------------------------- application factories

@pytest.fixture
def factory_module(tmp_path, monkeypatch, clean_modules):
    write(tmp_path / 'factorymod_under_test.py', '''
        CALLS = []

        def create_app(*args, **kwargs):
            CALLS.append((args, kwargs))

            def application(environ, start_response):
                return [repr((args, kwargs)).encode()]
            return application

        def make_settings():
            return {'not': 'an application'}
    ''')
    monkeypatch.syspath_prepend(str(tmp_path))
    return 'factorymod_under_test'


@pytest.mark.parametrize('call, args, kwargs', [
    ('create_app()', (), {}),
    (' create_app( ) ', (), {}),
    ("create_app('production', debug=False)", ('production',), {'debug': False}),
    ('create_app("a:b", 3, -1.5, None, b"x", n=(1, [2]), opts={"k": {1, 2}})',
     ('a:b', 3, -1.5, None, b'x'), {'n': (1, [2]), 'opts': {'k': {1, 2}}}),
])
def test_load_module_factory(factory_module, call, args, kwargs):
    app = main.load_module(factory_module + ':' + call, 'application')
    assert app(None, None) == [repr((args, kwargs)).encode()]
    assert sys.modules[factory_module].CALLS == [(args, kwargs)]


def test_load_module_factory_from_callable_object(factory_module):
    # mod_wsgi-express's module type with --callable-object.
    app = main.load_module(factory_module, "create_app('x')")
    assert app(None, None) == [repr((('x',), {})).encode()]


@pytest.mark.parametrize('call, says', [
    ('create_app(os.environ)', 'the argument os.environ is not a literal'),
    ("create_app('a', debug=get_debug())", 'the argument get_debug() is not a literal'),
    ('create_app(x)', 'the argument x is not a literal'),
    ('create_app(*ARGS)', 'unpacking (*ARGS) is not supported'),
    ('create_app(**OPTIONS)', 'unpacking (**OPTIONS) is not supported'),
    ('create_app(', 'is not valid Python'),
    ('create_app(a=1, a=2)', 'the argument a is given twice'),
    ('factories.create_app()', 'want a call of a function by its name'),
    ('create_app()()', 'want a call of a function by its name'),
    ("__import__('os').system('false')", 'want a call of a function by its name'),
])
def test_load_module_factory_refused(factory_module, call, says):
    target = factory_module + ':' + call
    with pytest.raises(main.LoadError) as info:
        main.load_module(target, 'application')
    message = str(info.value)
    assert message.startswith('application factory %s: ' % target)
    assert says in message
    # Refused before the module is imported, and never called.
    assert factory_module not in sys.modules


def test_load_module_factory_returning_no_callable(factory_module):
    with pytest.raises(main.LoadError) as info:
        main.load_module(factory_module + ':make_settings()', 'application')
    assert str(info.value) == ('application factory %s:make_settings() returned a dict, not a WSGI callable'
                               % factory_module)


def test_load_module_missing_factory(factory_module):
    with pytest.raises(main.LoadError) as info:
        main.load_module(factory_module + ':build_app()', 'application')
    assert str(info.value) == ("module %s defines no 'build_app'; it defines these callables: create_app, "
                               "make_settings. If create_app is an application factory, write %s:create_app()"
                               % (factory_module, factory_module))


def test_load_module_missing_module(package):
    with pytest.raises(ImportError):
        main.load_module('wsgipkg_under_test.absent:app', 'application')


# ---------------------------------------------------------------- load_paste

PASTE_FACTORY = '''
def factory(global_conf, **local_conf):
    greeting = local_conf['greeting']

    def application(environ, start_response):
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return [('%s from %s for %s' % (greeting, global_conf['here'], environ['SCRIPT_FILENAME'])).encode()]
    return application
'''

PASTE_INI = '''
[app:main]
use = call:pastefactory_under_test:factory
greeting = hello
'''


@pytest.fixture
def paste_ini(tmp_path, monkeypatch, clean_modules):
    """A PasteDeploy file whose application comes from a factory in a
    module next to it, on the Python path."""
    write(tmp_path / 'pastefactory_under_test.py', PASTE_FACTORY)
    monkeypatch.syspath_prepend(str(tmp_path))
    return write(tmp_path / 'site.ini', PASTE_INI)


def without_pastedeploy(monkeypatch):
    """Make PasteDeploy unimportable, as in an interpreter without it: no
    directory on the path that holds it, and nothing of it imported."""
    monkeypatch.setattr(sys, 'path', [p for p in sys.path if not os.path.isdir(os.path.join(p, 'paste'))])
    for name in list(sys.modules):
        if name == 'paste' or name.startswith('paste.'):
            monkeypatch.delitem(sys.modules, name)


def test_load_paste(paste_ini):
    pytest.importorskip('paste.deploy')
    app = main.load_paste(str(paste_ini))
    body = app({'SCRIPT_FILENAME': 'x'}, lambda status, headers: None)
    assert body == [b'hello from %s for x' % bytes(paste_ini.parent)]


def test_load_paste_missing_file(tmp_path):
    missing = tmp_path / 'nowhere.ini'
    with pytest.raises(main.LoadError) as info:
        main.load_paste(str(missing))
    assert str(info.value) == 'PasteDeploy configuration %s does not exist' % missing


def test_load_paste_without_pastedeploy(paste_ini, monkeypatch):
    without_pastedeploy(monkeypatch)
    with pytest.raises(main.LoadError) as info:
        main.load_paste(str(paste_ini))
    assert str(info.value) == ('application type paste needs the PasteDeploy package in this interpreter '
                               "(pip install PasteDeploy): No module named 'paste'")


def test_load_paste_pastedeploy_missing_a_dependency(paste_ini, tmp_path, monkeypatch):
    # Not a missing PasteDeploy: the traceback says what is missing.
    without_pastedeploy(monkeypatch)
    (tmp_path / 'paste' / 'deploy').mkdir(parents=True)
    write(tmp_path / 'paste' / 'deploy' / '__init__.py', 'import caddy_wsgi_no_such_dependency\n')
    with pytest.raises(ModuleNotFoundError) as info:
        main.load_paste(str(paste_ini))
    assert info.value.name == 'caddy_wsgi_no_such_dependency'


# ---------------------------------------------------------------- arguments

def test_parse_args_and_base_environ(tmp_path):
    script = tmp_path / 'site.wsgi'
    args = main.parse_args(['--app', str(script), '--fds', '3,4,5', '--processes', '2', '--group', 'site'])
    assert args.fds == [3, 4, 5]
    assert args.apps == [(str(script), 'script', 'application', str(script))]
    env = main.base_environ(args, str(script))
    assert env['wsgi.multithread'] is True and env['wsgi.multiprocess'] is True
    assert env['SCRIPT_FILENAME'] == str(script)
    assert env['mod_wsgi.process_group'] == 'site'
    assert env['wsgi.version'] == (1, 0)

    args = main.parse_args(['--app', 'pkg.mod:app', '--fds', '3'])
    assert args.apps == [('pkg.mod:app', 'module', 'application', '')]
    env = main.base_environ(args, '')
    assert env['wsgi.multithread'] is False and env['wsgi.multiprocess'] is False
    assert env['SCRIPT_FILENAME'] == ''


def test_relative_script_path_is_made_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = main.parse_args(['--app', 'site.wsgi', '--fds', '3', '--import-script', 'preload.py'])
    assert args.apps[0][3] == str(tmp_path / 'site.wsgi')
    assert args.import_script == str(tmp_path / 'preload.py')


def test_parse_args_app_callable_pairs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = main.parse_args(['--app', 'site.wsgi', '--callable', 'app', '--app', 'pkg.mod:admin',
                            '--callable', 'application', '--app', 'site.wsgi', '--callable', 'other', '--fds', '3'])
    assert args.apps == [
        ('site.wsgi', 'script', 'app', str(tmp_path / 'site.wsgi')),
        ('pkg.mod:admin', 'module', 'application', ''),
        ('site.wsgi', 'script', 'other', str(tmp_path / 'site.wsgi')),
    ]


def test_parse_args_missing_callables_default_to_application():
    # The i-th --callable is the i-th --app's, wherever it is written.
    args = main.parse_args(['--callable', 'first', '--app', '/a.wsgi', '--app', '/b.wsgi', '--app', '/c.wsgi',
                            '--fds', '3'])
    assert args.apps == [('/a.wsgi', 'script', 'first', '/a.wsgi'), ('/b.wsgi', 'script', 'application', '/b.wsgi'),
                         ('/c.wsgi', 'script', 'application', '/c.wsgi')]


def test_parse_args_more_callables_than_apps(capsys):
    with pytest.raises(SystemExit) as info:
        main.parse_args(['--app', '/a.wsgi', '--callable', 'one', '--callable', 'two', '--fds', '3'])
    assert info.value.code == 2
    assert '2 --callable for 1 --app' in capsys.readouterr().err


def test_parse_args_app_types(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    # The i-th --app-type is the i-th --app's; missing ones are inferred.
    args = main.parse_args(['--app', 'pkg.mod', '--app-type', 'module', '--app', 'site.ini', '--app-type', 'paste',
                            '--app', 'odd:name.wsgi', '--app-type', 'script', '--callable', 'app',
                            '--app', 'pkg.mod:admin', '--app', 'site.wsgi', '--fds', '3'])
    assert args.apps == [
        ('pkg.mod', 'module', 'app', ''),
        ('site.ini', 'paste', 'application', str(tmp_path / 'site.ini')),
        ('odd:name.wsgi', 'script', 'application', str(tmp_path / 'odd:name.wsgi')),
        ('pkg.mod:admin', 'module', 'application', ''),
        ('site.wsgi', 'script', 'application', str(tmp_path / 'site.wsgi')),
    ]


def test_parse_args_more_app_types_than_apps(capsys):
    with pytest.raises(SystemExit) as info:
        main.parse_args(['--app', '/a.wsgi', '--app-type', 'script', '--app-type', 'module', '--fds', '3'])
    assert info.value.code == 2
    assert '2 --app-type for 1 --app' in capsys.readouterr().err


def test_parse_args_unknown_app_type(capsys):
    with pytest.raises(SystemExit) as info:
        main.parse_args(['--app', '/a.wsgi', '--app-type', 'static', '--fds', '3'])
    assert info.value.code == 2
    assert "--app-type: invalid choice: 'static'" in capsys.readouterr().err


def test_parse_args_control_options_need_control_fd(capsys):
    for option in (['--heartbeat', '1'], ['--reload-on-changes']):
        with pytest.raises(SystemExit) as info:
            main.parse_args(['--app', '/a.wsgi', '--fds', '3', *option])
        assert info.value.code == 2
        assert '--heartbeat and --reload-on-changes need --control-fd' in capsys.readouterr().err


def test_parse_args_requires_an_app(capsys):
    with pytest.raises(SystemExit) as info:
        main.parse_args(['--callable', 'app', '--fds', '3'])
    assert info.value.code == 2
    assert '--app' in capsys.readouterr().err


def test_parse_args_process_environment():
    args = main.parse_args(['--app', 'pkg.mod:app', '--fds', '3'])
    assert args.python_path == [] and args.import_script is None and args.display_name is None
    assert args.umask is None and args.control_fd is None
    assert args.heartbeat is None and args.reload_on_changes is False

    args = main.parse_args(['--app', 'pkg.mod:app', '--fds', '3,4', '--python-path', '/a', '--python-path', '/b',
                            '--display-name', '(wsgi:site)', '--umask', '0027', '--control-fd', '5',
                            '--heartbeat', '0.25', '--reload-on-changes'])
    assert args.python_path == ['/a', '/b']
    assert args.display_name == '(wsgi:site)'
    assert args.umask == 0o027
    assert args.control_fd == 5 and args.heartbeat == 0.25 and args.reload_on_changes is True


def test_heartbeat_until_the_threads_end():
    server, control = socket.socketpair()
    stop = threading.Event()
    serving = threading.Thread(target=stop.wait)
    serving.start()
    beating = threading.Thread(target=main.heartbeat, args=(control, [serving], 0.001))
    beating.start()
    with server, control:
        server.settimeout(TIMEOUT)
        received = b''
        while len(received) < 3:
            received += server.recv(3 - len(received))
        stop.set()
        beating.join(TIMEOUT)
        assert not beating.is_alive()


def parked_here(event):
    event.wait()


def test_stack_report_of_serving_threads():
    """Caddy's stack request is answered with the stack of each thread
    serving a request, with the request; idle threads are left out."""
    server, sock = socket.socketpair()
    release = threading.Event()
    parked = threading.Thread(target=parked_here, args=(release,))
    parked.start()
    serving = types.SimpleNamespace(thread=parked.ident, serving=(
        {'REQUEST_METHOD': 'POST', 'REQUEST_URI': '/upload?x=1'}, time.monotonic() - 2))
    idle = types.SimpleNamespace(thread=threading.get_ident(), serving=None)
    answering = threading.Thread(target=main.answer_stack_requests, args=(main.Control(sock), [serving, idle]))
    answering.start()
    try:
        with server:
            server.settimeout(TIMEOUT)
            server.sendall(b'S')
            report = b''
            while not report.endswith(b'\n'):
                report += server.recv(65536)
            assert report.startswith(b'S') and report.count(b'\n') == 1
            [thread] = json.loads(report[1:])
            assert thread['thread'] == parked.ident
            assert (thread['method'], thread['uri']) == ('POST', '/upload?x=1')
            assert 2 <= thread['seconds'] < 2 + TIMEOUT
            line = parked_here.__code__.co_firstlineno + 1
            assert 'File "%s", line %d, in parked_here\n    event.wait()\n' % (__file__, line) in thread['stack']
        answering.join(TIMEOUT)
        assert not answering.is_alive()  # Caddy closed the connection
    finally:
        release.set()
        sock.close()


# ---------------------------------------------------------------- reload on changes

def touch(path, seconds_later=10):
    """Give path a newer modification time, whatever the file system's
    timestamp granularity."""
    mtime = path.stat().st_mtime_ns + seconds_later * 10**9
    os.utime(path, ns=(mtime, mtime))


@pytest.fixture
def watched_module(tmp_path, monkeypatch, clean_modules):
    """A module in tmp_path, imported; returns its path."""
    monkeypatch.syspath_prepend(str(tmp_path))
    path = write(tmp_path / 'watchedmod_under_test.py', 'VALUE = 1\n')
    importlib.import_module('watchedmod_under_test')
    return path


def mtime(path):
    return path.stat().st_mtime_ns


def test_source_watcher_reports_every_change_once(watched_module):
    watcher = main.SourceWatcher([])
    assert watcher.scan() == []
    assert watcher.scan() == []
    touch(watched_module)
    assert watcher.scan() == [(str(watched_module), mtime(watched_module))]
    assert watcher.scan() == []
    # A change after one that Caddy could not load (the fix) is reported too.
    touch(watched_module)
    assert watcher.scan() == [(str(watched_module), mtime(watched_module))]
    assert watcher.scan() == []


def test_source_watcher_records_new_modules(watched_module, tmp_path):
    watcher = main.SourceWatcher([])
    watcher.scan()
    later = write(tmp_path / 'latermod_under_test.py', 'VALUE = 2\n')
    touch(later)    # changed before the import: what loads is current
    importlib.import_module('latermod_under_test')
    assert watcher.scan() == []
    touch(later)
    assert watcher.scan() == [(str(later), mtime(later))]


def test_source_watcher_file_missing_for_a_moment(watched_module):
    watcher = main.SourceWatcher([])
    watcher.scan()
    moved = watched_module.with_suffix('.bak')
    watched_module.rename(moved)
    assert watcher.scan() == []
    moved.rename(watched_module)
    assert watcher.scan() == []
    watched_module.unlink()
    assert watcher.scan() == []
    write(watched_module, 'VALUE = 3\n')
    touch(watched_module)
    assert watcher.scan() == [(str(watched_module), mtime(watched_module))]


def test_source_watcher_given_files(tmp_path):
    ini = write(tmp_path / 'site.ini', PASTE_INI)
    watcher = main.SourceWatcher([str(ini)])
    watcher.scan()
    touch(ini)
    assert watcher.scan() == [(str(ini), mtime(ini))]


def test_watch_sources_keeps_watching(watched_module, tmp_path):
    """Each change is one notice, and the watcher goes on after one: a
    reload that fails leaves this process serving, and the fix must reach
    Caddy too."""
    other = write(tmp_path / 'othermod_under_test.py', 'VALUE = 2\n')
    importlib.import_module('othermod_under_test')
    watcher = main.SourceWatcher([])
    watcher.scan()
    server, sock = socket.socketpair()
    with server, sock:
        server.settimeout(TIMEOUT)

        def watch():
            try:
                main.watch_sources(main.Control(sock), watcher, 0.01)
            except Stop:
                pass

        watching = threading.Thread(target=watch, daemon=True)
        watching.start()

        def notices(count):
            received = b''
            while received.count(b'\n') < count:
                received += server.recv(4096)
            return received

        touch(watched_module)
        touch(other)
        first = notices(2)
        assert sorted(first.splitlines()) == sorted([
            b'C%d %s' % (mtime(watched_module), bytes(watched_module)),
            b'C%d %s' % (mtime(other), bytes(other)),
        ])
        touch(watched_module)
        assert notices(1) == b'C%d %s\n' % (mtime(watched_module), bytes(watched_module))
        watcher.scan = stop
        watching.join(TIMEOUT)
        assert not watching.is_alive()


class Stop(Exception):
    pass


def stop():
    raise Stop


# ---------------------------------------------------------------- main() failing to load, in process

def run_main_expecting_startup_error(argv_app, monkeypatch, extra=()):
    monkeypatch.setattr(sys, 'path', list(sys.path))     # main() sets sys.path[0]
    server, child = socket.socketpair()
    with server:
        fd = child.detach()
        with warnings.catch_warnings():
            # main() leaves its socket for process exit to close.
            warnings.simplefilter('ignore', ResourceWarning)
            status = main.main(['--app', argv_app, '--fds', str(fd), *extra])
            gc.collect()
        client = Client(server)
        f = client.read_hello()
        assert client.reader.read() is None, 'nothing may follow STARTUP_ERROR'
    return status, f


def test_main_startup_error_load_error(tmp_path, monkeypatch):
    missing = str(tmp_path / 'missing.wsgi')
    status, f = run_main_expecting_startup_error(missing, monkeypatch)
    assert status == 1
    assert f.kind == STARTUP_ERROR
    assert missing in f.payload.decode()


def test_main_startup_error_traceback(tmp_path, monkeypatch, clean_modules):
    script = write(tmp_path / 'raises.wsgi', '''
        def helper():
            raise RuntimeError('cannot start')
        helper()
    ''')
    status, f = run_main_expecting_startup_error(str(script), monkeypatch)
    assert status == 1
    text = f.payload.decode()
    assert str(script) in text
    assert 'Traceback' in text and 'helper' in text and 'RuntimeError: cannot start' in text


def test_main_startup_error_module(monkeypatch, clean_modules):
    status, f = run_main_expecting_startup_error('caddy_wsgi_absent_module:app', monkeypatch)
    assert status == 1
    text = f.payload.decode()
    assert 'caddy_wsgi_absent_module' in text and 'ModuleNotFoundError' in text


def test_main_startup_error_import_script(tmp_path, monkeypatch, clean_modules):
    preload = write(tmp_path / 'preload.py', '''
        def helper():
            raise RuntimeError('preload failed')
        helper()
    ''')
    app = write(tmp_path / 'site.wsgi', HELLO_APP)
    status, f = run_main_expecting_startup_error(str(app), monkeypatch, ['--import-script', str(preload)])
    assert status == 1
    assert f.kind == STARTUP_ERROR
    text = f.payload.decode()
    assert text.startswith('could not load %s:' % preload)
    assert 'helper' in text and 'RuntimeError: preload failed' in text


def test_main_startup_error_names_the_second_app(tmp_path, monkeypatch, clean_modules):
    first = write(tmp_path / 'first.wsgi', HELLO_APP)
    second = write(tmp_path / 'second.wsgi', '''
        def helper():
            raise RuntimeError('second cannot start')
        helper()
    ''')
    status, f = run_main_expecting_startup_error(str(first), monkeypatch, ['--app', str(second)])
    assert status == 1
    assert f.kind == STARTUP_ERROR
    text = f.payload.decode()
    assert text.startswith('could not load %s:' % second)
    assert 'RuntimeError: second cannot start' in text


def test_main_startup_error_names_the_second_callable(tmp_path, monkeypatch, clean_modules):
    script = write(tmp_path / 'site.wsgi', HELLO_APP)
    status, f = run_main_expecting_startup_error(str(script), monkeypatch, [
        '--callable', 'application', '--app', str(script), '--callable', 'admin'])
    assert status == 1
    assert f.payload.decode() == ("WSGI script %s defines no 'admin'; it defines these callables: application. "
                                  "Set callable_object application (WSGICallableObject)" % script)


def test_main_startup_error_without_pastedeploy(paste_ini, monkeypatch):
    without_pastedeploy(monkeypatch)
    status, f = run_main_expecting_startup_error(str(paste_ini), monkeypatch, ['--app-type', 'paste'])
    assert status == 1
    assert f.kind == STARTUP_ERROR
    assert f.payload.decode() == ('application type paste needs the PasteDeploy package in this interpreter '
                                  "(pip install PasteDeploy): No module named 'paste'")


def test_main_startup_error_missing_import_script(tmp_path, monkeypatch):
    app = write(tmp_path / 'site.wsgi', HELLO_APP)
    missing = str(tmp_path / 'missing.py')
    status, f = run_main_expecting_startup_error(str(app), monkeypatch, ['--import-script', missing])
    assert status == 1
    assert f.payload.decode() == 'import script %s does not exist' % missing


# ---------------------------------------------------------------- the worker process

class WorkerProcess:
    """python caddy-wsgi-worker.py started as Caddy starts it, with one
    socketpair end per --fds entry."""

    def __init__(self, python, app, cwd, conns=1, extra=(), pass_fds=()):
        pairs = [socket.socketpair() for _ in range(conns)]
        child_fds = [child.fileno() for _, child in pairs]
        env = dict(os.environ, PYTHONDONTWRITEBYTECODE='1')
        self.proc = subprocess.Popen(
            [python, str(WORKER_SCRIPT), '--app', str(app), '--fds', ','.join(map(str, child_fds)), *extra],
            pass_fds=child_fds + list(pass_fds), cwd=str(cwd), env=env,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _, child in pairs:
            child.close()
        self.clients = [Client(server) for server, _ in pairs]

    def finish(self):
        """Close every connection, as Caddy does to stop a worker, and wait."""
        # All at once: the process exits when every connection has ended,
        # and only then closes its ends.
        for client in self.clients:
            client.sock.shutdown(socket.SHUT_WR)
        try:
            out, err = self.proc.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
        for client in self.clients:
            assert client.close() == [], 'frames after the last response'
        return self.proc.returncode, out.decode(errors='replace'), err.decode(errors='replace')

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.communicate()
        for client in self.clients:
            client.close()


@pytest.fixture
def worker_process():
    started = []

    def start(*args, **kwargs):
        wp = WorkerProcess(*args, **kwargs)
        started.append(wp)
        return wp

    yield start
    for wp in started:
        wp.kill()


def check_hello(f, proc, python):
    assert f.kind == HELLO, f
    hello = decode_pairs(f.payload)
    assert hello['protocol'] == '6'
    assert hello['pid'] == str(proc.pid)
    assert hello['python'].startswith('3.')
    assert hello['executable']
    assert int(hello['thread']) > 0
    return hello


@pytest.mark.parametrize('python', PYTHONS)
def test_worker_process_serves_and_exits(python, tmp_path, worker_process):
    script = write(tmp_path / 'hello.wsgi', HELLO_APP)
    wp = worker_process(python, script, tmp_path, extra=['--group', 'g1'])
    client = wp.clients[0]
    check_hello(client.read_hello(), wp.proc, python)

    resp = client.request({'PATH_INFO': '/caf\xc3\xa9', 'REQUEST_METHOD': 'POST'}, body=b'posted')
    assert resp.status == '200 OK', resp
    info = json.loads(resp.body)
    assert info['body'] == 'posted'
    assert info['path'] == '/caf\xc3\xa9'
    assert info['pid'] == wp.proc.pid
    assert info['name'] != '__main__'
    assert info['multithread'] is False and info['multiprocess'] is False
    assert info['script_filename'] == str(script)
    assert info['group'] == 'g1'
    assert (LEVEL_INFO, 'print() from the request thread') in resp.logs
    assert (LEVEL_ERROR, 'to wsgi.errors') in resp.logs
    # Large body, in grants.
    body = os.urandom(3 * 65536 + 1).hex().encode()
    resp = client.request({'REQUEST_METHOD': 'PUT'}, body=body, chunked_window=65536)
    assert json.loads(resp.body)['body'] == body.decode()
    assert resp.body_more

    status, out, err = wp.finish()
    assert status == 0, err
    assert 'print() from the request thread' not in out
    assert err == ''


@pytest.mark.parametrize('python', PYTHONS)
def test_worker_process_several_connections(python, tmp_path, worker_process):
    script = write(tmp_path / 'hello.wsgi', HELLO_APP)
    wp = worker_process(python, script, tmp_path, conns=3, extra=['--processes', '2'])
    threads = set()
    for client in wp.clients:
        check_hello(client.read_hello(), wp.proc, python)
    for i, client in enumerate(reversed(wp.clients)):
        info = json.loads(client.request(body=b'conn %d' % i).body)
        assert info['body'] == 'conn %d' % i
        assert info['multithread'] is True and info['multiprocess'] is True
        threads.add(info['thread'])
    assert len(threads) == 3
    status, out, err = wp.finish()
    assert status == 0, err


@pytest.mark.parametrize('python', PYTHONS)
def test_worker_process_several_apps(python, tmp_path, worker_process):
    (tmp_path / 'admin').mkdir()
    site = write(tmp_path / 'site.wsgi', HELLO_APP)
    admin = write(tmp_path / 'admin' / 'admin.wsgi', HELLO_APP)
    write(tmp_path / 'wsgimod_several.py', '''
        def app(environ, start_response):
            start_response('200 OK', [('Content-Type', 'text/plain')])
            return [('module ' + environ['SCRIPT_FILENAME']).encode()]
    ''')
    # As Caddy passes them: a --callable for each --app, in order.
    wp = worker_process(python, site, tmp_path, conns=2, extra=[
        '--callable', 'application', '--app', str(admin), '--callable', 'application',
        '--app', 'wsgimod_several:app', '--callable', 'application'])
    for client in wp.clients:
        check_hello(client.read_hello(), wp.proc, python)
    for client in wp.clients:
        for app, script in ((1, admin), (0, site), (1, admin)):
            info = json.loads(client.request(body=b'for %d' % app, app=app).body)
            assert info['script_filename'] == str(script)
            assert info['body'] == 'for %d' % app
        assert client.request(app=2).body == b'module '
    names = {json.loads(wp.clients[0].request(app=app).body)['name'] for app in (0, 1)}
    assert len(names) == 2
    status, out, err = wp.finish()
    assert status == 0, err


@pytest.mark.parametrize('python', PYTHONS)
def test_worker_process_one_script_two_callables(python, tmp_path, worker_process):
    runs = tmp_path / 'runs'
    script = write(tmp_path / 'site.wsgi', '''
        with open(%r, 'a') as f:
            f.write('ran\\n')

        def application(environ, start_response):
            start_response('200 OK', [('Content-Type', 'text/plain')])
            return [('site ' + environ['SCRIPT_FILENAME']).encode()]

        def admin(environ, start_response):
            start_response('200 OK', [('Content-Type', 'text/plain')])
            return [('admin ' + environ['SCRIPT_FILENAME']).encode()]
    ''' % str(runs))
    wp = worker_process(python, script, tmp_path, extra=[
        '--callable', 'application', '--app', str(script), '--callable', 'admin'])
    client = wp.clients[0]
    check_hello(client.read_hello(), wp.proc, python)
    assert client.request(app=1).body == b'admin %s' % bytes(script)
    assert client.request(app=0).body == b'site %s' % bytes(script)
    assert runs.read_text() == 'ran\n'
    status, out, err = wp.finish()
    assert status == 0, err


@pytest.mark.parametrize('python', PYTHONS)
def test_worker_process_exits_on_unknown_app_index(python, tmp_path, worker_process):
    from fakecaddy import DEFAULT_ENVIRON, FLAG_NO_BODY, REQUEST, encode_request, frame
    script = write(tmp_path / 'hello.wsgi', HELLO_APP)
    wp = worker_process(python, script, tmp_path, extra=['--app', str(script)])
    client = wp.clients[0]
    check_hello(client.read_hello(), wp.proc, python)
    assert json.loads(client.request(app=1).body)['script_filename'] == str(script)
    client.sock.sendall(frame(REQUEST, encode_request(DEFAULT_ENVIRON), FLAG_NO_BODY, app=2))
    assert wp.proc.wait(TIMEOUT) == 70
    assert 'ProtocolError: REQUEST for application 2; applications in this worker: 2' in wp.proc.stderr.read().decode()


@pytest.mark.parametrize('python', PYTHONS)
def test_worker_process_module_app(python, tmp_path, worker_process):
    write(tmp_path / 'wsgimod_under_test.py', '''
        def app(environ, start_response):
            start_response('200 OK', [('Content-Type', 'text/plain')])
            return [b'module app']
    ''')
    # The working directory is searched first, as under mod_wsgi-express.
    wp = worker_process(python, 'wsgimod_under_test:app', tmp_path)
    client = wp.clients[0]
    check_hello(client.read_hello(), wp.proc, python)
    assert client.request().body == b'module app'
    status, out, err = wp.finish()
    assert status == 0, err


@pytest.mark.parametrize('python', PYTHONS)
def test_worker_process_module_type_names_its_callable(python, tmp_path, worker_process):
    write(tmp_path / 'wsgimod_typed.py', '''
        def app(environ, start_response):
            start_response('200 OK', [('Content-Type', 'text/plain')])
            return [b'typed module app']
    ''')
    # As Caddy passes it: the module and, apart, its callable.
    wp = worker_process(python, 'wsgimod_typed', tmp_path, extra=['--callable', 'app', '--app-type', 'module'])
    client = wp.clients[0]
    check_hello(client.read_hello(), wp.proc, python)
    assert client.request().body == b'typed module app'
    status, out, err = wp.finish()
    assert status == 0, err


def test_worker_process_paste_app(tmp_path, worker_process):
    pytest.importorskip('paste.deploy')
    write(tmp_path / 'pastefactory_under_test.py', PASTE_FACTORY)
    ini = write(tmp_path / 'site.ini', PASTE_INI)
    server, control = socket.socketpair()
    with server:
        with control:
            # The working directory is on the path, so the factory imports.
            wp = worker_process(sys.executable, ini, tmp_path, pass_fds=[control.fileno()], extra=[
                '--callable', 'application', '--app-type', 'paste',
                '--control-fd', str(control.fileno()), '--reload-on-changes'])
        client = wp.clients[0]
        check_hello(client.read_hello(), wp.proc, sys.executable)
        # SCRIPT_FILENAME is the PasteDeploy file, as under mod_wsgi-express.
        assert client.request().body == b'hello from %s for %s' % (bytes(tmp_path), bytes(ini))
        # No module's file, yet a source of the application.
        touch(ini)
        server.settimeout(TIMEOUT)
        received = b''
        while not received.endswith(b'\n'):
            received += server.recv(4096)
        assert received == b'C%d %s\n' % (mtime(ini), bytes(ini))
        status, out, err = wp.finish()
        assert status == 0, err


@pytest.mark.parametrize('python', PYTHONS)
@pytest.mark.parametrize('heartbeat', [[], ['--heartbeat', '0.01']], ids=['alone', 'with-heartbeats'])
def test_worker_process_reload_on_changes(python, heartbeat, tmp_path, worker_process):
    helper = write(tmp_path / 'reloadhelper_under_test.py', 'VALUE = 1\n')
    script = write(tmp_path / 'site.wsgi', '''
        import reloadhelper_under_test

        def application(environ, start_response):
            start_response('200 OK', [('Content-Type', 'text/plain')])
            return [b'%d' % reloadhelper_under_test.VALUE]
    ''')
    server, control = socket.socketpair()
    with server:
        with control:
            wp = worker_process(python, script, tmp_path, pass_fds=[control.fileno()],
                                extra=['--control-fd', str(control.fileno()), '--reload-on-changes', *heartbeat])
        client = wp.clients[0]
        check_hello(client.read_hello(), wp.proc, python)
        assert client.request().body == b'1'
        write(helper, 'VALUE = 2\n')
        touch(helper)
        server.settimeout(TIMEOUT)
        received = b''
        while b'\n' not in received:
            received += server.recv(4096)
        notice = received[:received.index(b'\n') + 1]
        if heartbeat:
            notice = notice.lstrip(b'.')
        else:
            assert received == notice, 'heartbeats without --heartbeat'
        assert notice == b'C%d %s\n' % (mtime(helper), bytes(helper))
        # The process goes on serving the code it has until Caddy replaces it.
        assert client.request().body == b'1'
        status, out, err = wp.finish()
        assert status == 0, err


@pytest.mark.parametrize('python', PYTHONS)
def test_worker_process_dumps_stacks_on_the_stack_signal(python, tmp_path, worker_process):
    """On the stack signal, faulthandler writes every thread's stack to the
    control connection: no Python code needs to run."""
    script = write(tmp_path / 'hello.wsgi', HELLO_APP)
    server, control = socket.socketpair()
    with server:
        with control:
            wp = worker_process(python, script, tmp_path, pass_fds=[control.fileno()],
                                extra=['--control-fd', str(control.fileno())])
        check_hello(wp.clients[0].read_hello(), wp.proc, python)
        # Once a request is answered, the thread that serves runs and the main
        # thread is done with the hellos.
        assert wp.clients[0].request().status == "200 OK"
        os.kill(wp.proc.pid, wire.STACK_SIGNAL)
        server.settimeout(TIMEOUT)
        dump = b''
        # The headers of the main thread and of the thread that serves, and
        # the main thread's frames, which do not change once it waits for the
        # threads that serve (faulthandler reads running threads' frames as
        # they change). A header says "Current thread" or "Thread" depending
        # on which thread the kernel picked for the signal.
        header = re.compile(rb'^(?:Current thread|Thread) 0x[0-9a-f]+ \(most recent call first\):$', re.M)
        while len(header.findall(dump)) < 2 or b' in main\n' not in dump:
            dump += server.recv(65536)
        status, out, err = wp.finish()
        assert status == 0, err


@pytest.mark.parametrize('python', PYTHONS)
def test_worker_process_app_keeps_its_stack_signal_handler(python, tmp_path, worker_process):
    """An application that handles the stack signal itself keeps its
    handler: the worker registers faulthandler before it loads."""
    script = write(tmp_path / 'signals.wsgi', """
        import os, signal, threading

        handled = threading.Event()
        signal.signal(%d, lambda signum, frame: handled.set())

        def application(environ, start_response):
            os.kill(os.getpid(), %d)
            start_response('200 OK', [('Content-Type', 'text/plain')])
            return [b'handled' if handled.wait(%r) else b'not handled']
    """ % (wire.STACK_SIGNAL, wire.STACK_SIGNAL, TIMEOUT))
    server, control = socket.socketpair()
    with server:
        with control:
            wp = worker_process(python, script, tmp_path, pass_fds=[control.fileno()],
                                extra=['--control-fd', str(control.fileno())])
        client = wp.clients[0]
        check_hello(client.read_hello(), wp.proc, python)
        assert client.request().body == b'handled'
        status, out, err = wp.finish()
        assert status == 0, err


@pytest.mark.parametrize('python', PYTHONS)
@pytest.mark.parametrize('source, needles', [
    ('def application(environ, start_response)\n    return []\n', ['SyntaxError', 'line 1']),
    ('import caddy_wsgi_no_such_module_anywhere\n', ['ModuleNotFoundError', 'caddy_wsgi_no_such_module_anywhere']),
    ('raise RuntimeError("broken on purpose")\n', ['Traceback', 'line 1', 'RuntimeError: broken on purpose']),
], ids=['syntax', 'import', 'raise'])
def test_worker_process_broken_script(python, tmp_path, worker_process, source, needles):
    script = tmp_path / 'broken.wsgi'
    script.write_text(source)
    wp = worker_process(python, script, tmp_path)
    client = wp.clients[0]
    f = client.read_hello()
    assert f.kind == STARTUP_ERROR, f
    text = f.payload.decode()
    assert str(script) in text
    for needle in needles:
        assert needle in text, text
    assert wp.proc.wait(TIMEOUT) == 1
    assert client.reader.read() is None


@pytest.mark.parametrize('python', PYTHONS)
def test_worker_process_missing_callable(python, tmp_path, worker_process):
    script = write(tmp_path / 'nocallable.wsgi', 'app = None\n')
    wp = worker_process(python, script, tmp_path)
    f = wp.clients[0].read_hello()
    assert f.kind == STARTUP_ERROR
    assert str(script) in f.payload.decode() and "'application'" in f.payload.decode()
    assert wp.proc.wait(TIMEOUT) == 1


@pytest.mark.parametrize('python', PYTHONS)
def test_worker_process_exits_on_protocol_error(python, tmp_path, worker_process):
    from fakecaddy import BODY, frame
    script = write(tmp_path / 'hello.wsgi', HELLO_APP)
    wp = worker_process(python, script, tmp_path)
    client = wp.clients[0]
    check_hello(client.read_hello(), wp.proc, python)
    client.sock.sendall(frame(BODY, b'where is the REQUEST?'))
    assert wp.proc.wait(TIMEOUT) == 70
    assert 'ProtocolError' in wp.proc.stderr.read().decode()


ENVIRONMENT_APP = '''
import importlib, json, os, sys

PRELOADED = os.environ.get('PRELOADED_BY', '')

def application(environ, start_response):
    module = environ['QUERY_STRING']
    with open('/proc/self/status') as f:
        umask = [line.split()[1] for line in f if line.startswith('Umask:')][0]
    info = {
        'where': importlib.import_module(module).WHERE if module else '',
        'preloaded': PRELOADED,
        'umask': umask,
        'executable': sys.executable,
        'prefix': sys.prefix,
    }
    start_response('200 OK', [('Content-Type', 'application/json')])
    return [json.dumps(info).encode()]
'''


@pytest.mark.parametrize('python', PYTHONS)
def test_worker_process_environment(python, tmp_path, worker_process):
    site_dir, other = tmp_path / 'site', tmp_path / 'other'
    site_dir.mkdir()
    other.mkdir()
    write(site_dir / 'sitemod_direct.py', "WHERE = 'direct'\n")
    write(site_dir / 'more.pth', str(other) + '\n')
    write(other / 'sitemod_via_pth.py', "WHERE = 'pth'\n")
    write(tmp_path / 'preload.py', "import os\nos.environ['PRELOADED_BY'] = __name__\n")
    script = write(tmp_path / 'env.wsgi', ENVIRONMENT_APP)
    expected = subprocess.run([python, '-c', 'import sys; print(sys.executable); print(sys.prefix)'],
                              capture_output=True, text=True, check=True).stdout.split('\n')[:2]
    wp = worker_process(python, script, tmp_path, extra=[
        '--python-path', str(site_dir), '--import-script', 'preload.py', '--umask', '0027',
        '--display-name', '(wsgi:site)'])
    client = wp.clients[0]
    check_hello(client.read_hello(), wp.proc, python)

    info = json.loads(client.request({'QUERY_STRING': 'sitemod_direct'}).body)
    assert info['where'] == 'direct'
    assert json.loads(client.request({'QUERY_STRING': 'sitemod_via_pth'}).body)['where'] == 'pth'
    assert info['preloaded'].startswith('_caddy_wsgi_')
    assert info['umask'] == '0027'
    # Renamed, yet the interpreter still knows where it is installed.
    assert [info['executable'], info['prefix']] == expected
    with open('/proc/%d/comm' % wp.proc.pid) as f:
        assert f.read() == '(wsgi:site)\n'
    with open('/proc/%d/cmdline' % wp.proc.pid, 'rb') as f:
        assert f.read().rstrip(b'\0') == b'(wsgi:site)'
    status, out, err = wp.finish()
    assert status == 0, err


@pytest.mark.parametrize('python', PYTHONS)
def test_worker_process_heartbeat(python, tmp_path, worker_process):
    script = write(tmp_path / 'hello.wsgi', HELLO_APP)
    server, control = socket.socketpair()
    with server:
        with control:
            wp = worker_process(python, script, tmp_path, conns=2, pass_fds=[control.fileno()],
                                extra=['--control-fd', str(control.fileno()), '--heartbeat', '0.01'])
        for client in wp.clients:
            check_hello(client.read_hello(), wp.proc, python)
        server.settimeout(TIMEOUT)
        received = b''
        while len(received) < 3:
            received += server.recv(3 - len(received))
        status, out, err = wp.finish()
        assert status == 0, err
        # The worker's end closes only as it exits.
        while server.recv(4096):
            pass
