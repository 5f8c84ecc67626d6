"""Worker process entry point: load the application, then serve each
inherited connection on its own thread."""

import argparse
import hashlib
import importlib
import os
import platform
import socket
import sys
import threading
import traceback
import types

from . import wire
from .worker import FileWrapper, Worker, install_output_routing


class LoadError(Exception):
    """The application could not be loaded; the message says why."""


def load_script(path, callable_name):
    """Load a WSGI script file the way mod_wsgi does: executed as a module
    whose name is unique to the file, never as __main__, and compiled without
    a bytecode cache (app.wsgi's cache file would be app.py's too)."""
    if not os.path.isfile(path):
        raise LoadError('WSGI script %s does not exist (to load a module instead, write module:callable)' % path)
    name = '_caddy_wsgi_' + hashlib.md5(path.encode('utf-8', 'surrogateescape')).hexdigest()
    module = types.ModuleType(name)
    module.__file__ = path
    sys.modules[name] = module
    try:
        with open(path, 'rb') as f:
            code = compile(f.read(), path, 'exec', dont_inherit=True)
        exec(code, module.__dict__)
    except BaseException:
        del sys.modules[name]
        raise
    return find_callable(module, callable_name, 'WSGI script %s' % path)


def load_module(target):
    """Load 'package.module:callable'."""
    module_name, _, callable_name = target.partition(':')
    module = importlib.import_module(module_name)
    return find_callable(module, callable_name or 'application', 'module %s' % module_name)


def find_callable(module, name, where):
    app = getattr(module, name, None)
    if app is None:
        raise LoadError('%s has no callable named %r' % (where, name))
    if not callable(app):
        raise LoadError('%s: %r is a %s, not a callable' % (where, name, type(app).__name__))
    return app


RUNTIME_DIR = os.path.dirname(os.path.abspath(__file__))


def user_frames(tb):
    """Skip the runtime's and importlib's frames at the top of a traceback:
    the user needs to see their own code."""
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if not (filename.startswith(RUNTIME_DIR) or filename.startswith('<frozen ')):
            break
        tb = tb.tb_next
    return tb


def base_environ(args):
    return {
        'wsgi.version': (1, 0),
        'wsgi.multithread': len(args.fds) > 1,
        'wsgi.multiprocess': args.processes > 1,
        'wsgi.run_once': False,
        'wsgi.file_wrapper': FileWrapper,
        'wsgi.input_terminated': True,
        'GATEWAY_INTERFACE': 'CGI/1.1',
        'SERVER_SOFTWARE': 'Caddy caddy-wsgi',
        'SCRIPT_FILENAME': args.script_filename,
        'mod_wsgi.process_group': args.group,
        'mod_wsgi.application_group': '',
    }


def parse_args(argv):
    parser = argparse.ArgumentParser(prog='caddy-wsgi-worker')
    parser.add_argument('--app', required=True, help='script path, or module:callable')
    parser.add_argument('--callable', default='application', help='callable name in a script')
    parser.add_argument('--fds', required=True, type=lambda s: [int(fd) for fd in s.split(',')])
    parser.add_argument('--processes', type=int, default=1, help='processes in the pool (for wsgi.multiprocess)')
    parser.add_argument('--group', default='', help='process group name')
    args = parser.parse_args(argv)
    args.is_script = ':' not in args.app
    args.script_filename = os.path.abspath(args.app) if args.is_script else ''
    return args


def hello(conn):
    conn.send(wire.frame(wire.HELLO, wire.encode_pairs([
        ('protocol', str(wire.VERSION)),
        ('pid', str(os.getpid())),
        ('python', platform.python_version()),
        ('executable', os.fsencode(sys.executable).decode('latin-1')),
    ])))


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    conns = [wire.Connection(socket.socket(fileno=fd)) for fd in args.fds]
    # Scripts and modules next to the application import as they would under
    # mod_wsgi-express, whose working directory is searched first.
    sys.path[0] = os.getcwd()
    # Before the application loads: logging handlers it creates at import
    # time (Django's LOGGING, logging.basicConfig) keep the sys.stderr they
    # see, and it must be the one that follows the request.
    local = install_output_routing()
    try:
        app = load_script(args.script_filename, args.callable) if args.is_script else load_module(args.app)
    except LoadError as exc:
        conns[0].send(wire.frame(wire.STARTUP_ERROR, str(exc).encode('utf-8', 'backslashreplace')))
        return 1
    except BaseException as exc:
        text = ''.join(traceback.format_exception(type(exc), exc, user_frames(exc.__traceback__)))
        conns[0].send(wire.frame(wire.STARTUP_ERROR, ('could not load %s:\n%s' % (args.app, text)).encode('utf-8', 'backslashreplace')))
        return 1

    environ = base_environ(args)
    threads = []
    for conn in conns:
        hello(conn)
        worker = Worker(conn, app, environ, local)
        thread = threading.Thread(target=worker.serve, name='wsgi-%d' % conn.sock.fileno(), daemon=True)
        thread.start()
        threads.append(thread)
    # Caddy closing the connections is the signal to exit.
    for thread in threads:
        thread.join()
    return 0
