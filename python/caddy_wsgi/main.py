"""Worker process entry point: load the applications, then serve each
inherited connection on its own thread."""

import argparse
import ast
import faulthandler
import hashlib
import importlib
import inspect
import os
import platform
import site
import socket
import sys
import threading
import time
import traceback
import types

from . import wire
from .worker import FileWrapper, Worker, install_output_routing


class LoadError(Exception):
    """The application could not be loaded; the message says why."""


def load_script(path, callable_name):
    """Load a WSGI script file (see exec_script) and return its callable."""
    if not os.path.isfile(path):
        raise LoadError('WSGI script %s does not exist (to load a module instead, write module:callable)' % path)
    if '(' in callable_name:
        # The script is Python: it can call its factory itself.
        raise LoadError('callable_object %s for WSGI script %s: an application factory call is for module '
                        'targets (module:%s); in a script, call the factory and name the result: '
                        'application = %s' % (callable_name, path, callable_name, callable_name))
    return find_callable(exec_script(path), callable_name, 'WSGI script %s' % path)


def run_import_script(path):
    """Run mod_wsgi's import-script (WSGIImportScript) before the application
    loads."""
    if not os.path.isfile(path):
        raise LoadError('import script %s does not exist' % path)
    exec_script(path)


def exec_script(path):
    """Execute a script file the way mod_wsgi does: as a module whose name is
    unique to the file, never as __main__, and compiled without a bytecode
    cache (app.wsgi's cache file would be app.py's too). A file runs once:
    an import script that is also the WSGI script, the usual way to preload
    an application under mod_wsgi, is the module that serves requests."""
    name = '_caddy_wsgi_' + hashlib.md5(path.encode('utf-8', 'surrogateescape')).hexdigest()
    if name in sys.modules:
        return sys.modules[name]
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
    return module


def load_module(target, callable_name):
    """Load 'package.module:callable', or 'package.module' and its callable
    callable_name. The callable may be an application factory's call, as
    gunicorn allows: 'package.module:create_app()', with literal arguments;
    the factory is called here, once per process, and returns the
    application."""
    module_name, _, name = target.partition(':')
    name = name or callable_name
    # Before the import: a malformed call is the configuration's mistake.
    call = parse_factory_call(name, target)
    module = importlib.import_module(module_name)
    where = 'module %s' % module_name
    if call is None:
        return find_callable(module, name, where, module_name)
    factory, args, kwargs = call
    app = find_callable(module, factory, where, module_name)(*args, **kwargs)
    if not callable(app):
        raise LoadError('application factory %s returned a %s, not a WSGI callable' % (target, type(app).__name__))
    return app


FACTORY_FORM = "a call of a function by its name with literal arguments, as in create_app('production', debug=False)"


def parse_factory_call(text, target):
    """The application factory call that text (the callable of the module
    target) is, as (name, args, kwargs), or None if text is a plain name.
    The arguments must be literals: they are read with ast.literal_eval,
    never evaluated."""
    if '(' not in text:
        return None
    text = text.strip()
    try:
        call = ast.parse(text, mode='eval').body
    except SyntaxError as exc:
        raise LoadError('application factory %s: %s is not valid Python (%s); want %s'
                        % (target, text, exc.msg, FACTORY_FORM)) from None
    if not isinstance(call, ast.Call) or not isinstance(call.func, ast.Name):
        raise LoadError('application factory %s: want %s' % (target, FACTORY_FORM))

    def literal(node):
        if isinstance(node, (ast.Starred, ast.keyword)):
            raise LoadError('application factory %s: unpacking (%s) is not supported; want %s'
                            % (target, ast.get_source_segment(text, node), FACTORY_FORM))
        try:
            return ast.literal_eval(node)
        except (ValueError, TypeError, SyntaxError):
            raise LoadError('application factory %s: the argument %s is not a literal. Arguments are read, never '
                            'evaluated: strings, numbers, bytes, True, False, None and tuples, lists, dicts and sets '
                            'of them; let the factory read anything else (os.environ, a settings file) itself'
                            % (target, ast.get_source_segment(text, node))) from None

    args = [literal(node) for node in call.args]
    kwargs = {}
    for kw in call.keywords:
        if kw.arg in kwargs:
            raise LoadError('application factory %s: the argument %s is given twice' % (target, kw.arg))
        # A keyword without a name is **mapping, refused as is *sequence.
        kwargs[kw.arg] = literal(kw.value if kw.arg else kw)
    return call.func.id, args, kwargs


def load_paste(path):
    """Load the application a PasteDeploy configuration file describes, as
    mod_wsgi-express's application type paste does."""
    if not os.path.isfile(path):
        raise LoadError('PasteDeploy configuration %s does not exist' % path)
    try:
        from paste.deploy import loadapp
    except ModuleNotFoundError as exc:
        # Only PasteDeploy itself missing: a dependency it lacks is the
        # traceback's to tell.
        if exc.name not in ('paste', 'paste.deploy'):
            raise
        raise LoadError('application type paste needs the PasteDeploy package in this interpreter '
                        '(pip install PasteDeploy): %s' % exc) from None
    return loadapp('config:' + path)


def load_app(target, app_type, callable_name, filename):
    """Load one --app, as its (inferred) --app-type says."""
    if app_type == 'script':
        return load_script(filename, callable_name)
    if app_type == 'module':
        return load_module(target, callable_name)
    return load_paste(filename)


def find_callable(module, name, where, module_name=None):
    """The callable name in module; module_name is the module target's, None
    for a script."""
    app = getattr(module, name, None)
    if app is None:
        raise LoadError(missing_callable(module, name, where, module_name))
    if not callable(app):
        raise LoadError('%s: %r is a %s, not a callable' % (where, name, type(app).__name__))
    return app


def missing_callable(module, name, where, module_name):
    """Why name is not in module, with the callables the module does define
    and how to name one: the user has most likely called the application
    otherwise (Flask's app), or written a factory."""
    defined = []
    for attr, value in list(vars(module).items()):
        if attr.startswith('_') or not callable(value):
            continue
        # Functions and classes imported from elsewhere (Flask itself) are
        # not the application; objects made here (Flask(__name__)) may be.
        if isinstance(value, (type, types.FunctionType, types.BuiltinFunctionType)) \
                and getattr(value, '__module__', None) != module.__name__:
            continue
        defined.append((attr, value))
    if not defined:
        return '%s defines no %r, nor any other callable' % (where, name)
    message = '%s defines no %r; it defines these callables: %s.' % (where, name, ', '.join(attr for attr, _ in defined))
    for attr, value in defined:
        # Exactly environ and start_response: a callable that takes one
        # argument too is more likely a factory.
        if takes_arguments(value, 2) and not takes_arguments(value, 1):
            if module_name is None:
                return '%s Set callable_object %s (WSGICallableObject)' % (message, attr)
            return '%s Write %s:%s' % (message, module_name, attr)
    for attr, value in defined:
        if isinstance(value, types.FunctionType):
            if module_name is None:
                return '%s If %s is an application factory, call it in the script: application = %s()' % (message, attr, attr)
            return '%s If %s is an application factory, write %s:%s()' % (message, attr, module_name, attr)
    return message


def takes_arguments(function, count):
    """Whether function can be called with count positional arguments."""
    try:
        inspect.signature(function).bind(*[None] * count)
    except (TypeError, ValueError):
        return False
    return True


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


def base_environ(args, script_filename):
    """The environ keys that are the same in every request to one
    application."""
    return {
        'wsgi.version': (1, 0),
        'wsgi.multithread': len(args.fds) > 1,
        'wsgi.multiprocess': args.processes > 1,
        'wsgi.run_once': False,
        'wsgi.file_wrapper': FileWrapper,
        'wsgi.input_terminated': True,
        'GATEWAY_INTERFACE': 'CGI/1.1',
        'SERVER_SOFTWARE': 'Caddy caddy-wsgi',
        'SCRIPT_FILENAME': script_filename,
        'mod_wsgi.process_group': args.group,
        'mod_wsgi.application_group': '',
    }


APP_TYPES = ('script', 'module', 'paste')


def parse_args(argv):
    parser = argparse.ArgumentParser(prog='caddy-wsgi-worker')
    parser.add_argument('--app', action='append', required=True, metavar='TARGET',
                        help='script path, module[:callable] or PasteDeploy file path (repeatable: one per '
                             'application)')
    parser.add_argument('--callable', action='append', default=[], metavar='NAME',
                        help="callable name in the script or module of the --app in the same position "
                             "(default 'application')")
    parser.add_argument('--app-type', action='append', default=[], choices=APP_TYPES,
                        help='what the --app in the same position is (default: module for a TARGET with a colon, '
                             'else script)')
    parser.add_argument('--fds', required=True, type=lambda s: [int(fd) for fd in s.split(',')])
    parser.add_argument('--processes', type=int, default=1, help='processes in the pool (for wsgi.multiprocess)')
    parser.add_argument('--group', default='', help='process group name')
    parser.add_argument('--python-path', action='append', default=[], metavar='DIR',
                        help='directory added with site.addsitedir (repeatable)')
    parser.add_argument('--import-script', help='script run before the application is loaded')
    parser.add_argument('--display-name', help='process name shown by ps')
    parser.add_argument('--umask', type=lambda s: int(s, 8), help='octal file mode creation mask')
    parser.add_argument('--control-fd', type=int,
                        help='socket to Caddy for heartbeats, change notices and stack reports')
    parser.add_argument('--heartbeat', type=float, metavar='SECONDS', help='send a heartbeat every SECONDS')
    parser.add_argument('--reload-on-changes', action='store_true',
                        help='tell Caddy when the source file of a loaded module changes')
    args = parser.parse_args(argv)
    for option, given in (('--callable', args.callable), ('--app-type', args.app_type)):
        if len(given) > len(args.app):
            parser.error('%d %s for %d --app: each %s belongs to the --app in the same position'
                         % (len(given), option, len(args.app), option))
    if args.control_fd is None and (args.heartbeat is not None or args.reload_on_changes):
        parser.error('--heartbeat and --reload-on-changes need --control-fd')
    # Caddy passes a --callable and an --app-type for every --app; a
    # hand-written command line may leave them out.
    names = args.callable + ['application'] * (len(args.app) - len(args.callable))
    app_types = args.app_type + [None] * (len(args.app) - len(args.app_type))
    # (target, type, callable name, absolute path of the script or
    # PasteDeploy file or '' for a module), in the order of the application
    # indexes that REQUEST frames carry.
    args.apps = []
    for target, app_type, name in zip(args.app, app_types, names):
        if app_type is None:
            app_type = 'module' if ':' in target else 'script'
        args.apps.append((target, app_type, name, '' if app_type == 'module' else os.path.abspath(target)))
    if args.import_script:
        # Absolute as the WSGI script's is, so that naming the same file
        # names the same module.
        args.import_script = os.path.abspath(args.import_script)
    return args


def set_display_name(name):
    """Show name in ps and top, as mod_wsgi's display-name does by rewriting
    argv[0]. Linux keeps two names: the command name (/proc/self/comm, at
    most 15 bytes) that ps -e, top and pgrep show and new threads inherit,
    and the command line that ps -f and ps aux show, which is the memory
    holding the original argv. No Python API reaches the latter, so it is
    rewritten through /proc/self/mem, as C programs do in place; CPython
    works from its own copies of argv, so nothing reads that memory again.
    Changing argv[0] at exec instead would cost CPython its sys.executable,
    and a virtualenv its site-packages."""
    encoded = os.fsencode(name)
    with open('/proc/self/comm', 'wb') as f:
        f.write(encoded)
    with open('/proc/self/stat', 'rb') as f:
        stat = f.read()
    # arg_start and arg_end are fields 48 and 49 (proc(5)), counted after
    # the command name, which may contain spaces and parentheses.
    fields = stat[stat.rindex(b')') + 2:].split()
    start, end = int(fields[45]), int(fields[46])
    with open('/proc/self/mem', 'r+b', buffering=0) as mem:
        mem.seek(start)
        mem.write(encoded[:end - start - 1].ljust(end - start, b'\0'))


class Control:
    """The control connection to Caddy. The main thread sends heartbeats on
    it, the source watcher its notices and answer_stack_requests its
    reports: the lock keeps each whole."""

    def __init__(self, sock):
        self.sock = sock
        self.lock = threading.Lock()

    def send(self, data):
        with self.lock:
            self.sock.sendall(data)


def answer_stack_requests(control, workers):
    """Answer each stack request Caddy sends (it does when a request runs
    past its request_timeout) with a stack report, until the connection
    ends."""
    while True:
        try:
            data = control.sock.recv(64)
        except OSError:
            return
        if not data:
            return
        if wire.STACK_REQUEST in data:
            control.send(wire.stack_report(request_stacks(workers)))


HANDLE = Worker.handle.__code__


# As faulthandler's: the innermost frames of a deeper stack.
MAX_STACK_DEPTH = 100


def request_stacks(workers):
    """The stack of each thread that is serving a request, with the request:
    for stack_report. A stack starts below Worker.handle: the frames above
    it are the runtime's, the same in every thread."""
    frames = sys._current_frames()
    now = time.monotonic()
    threads = []
    for worker in workers:
        serving, frame = worker.serving, frames.get(worker.thread)
        if serving is None or frame is None:
            continue
        environ, started = serving
        entries = traceback.extract_stack(frame, MAX_STACK_DEPTH)
        for i, entry in enumerate(entries):
            if entry.filename == HANDLE.co_filename and entry.name == HANDLE.co_name:
                entries = entries[i + 1:]
                break
        threads.append({
            'thread': worker.thread,
            'method': environ.get('REQUEST_METHOD', ''),
            'uri': environ.get('REQUEST_URI', ''),
            'seconds': round(now - started, 3),
            'stack': ''.join(traceback.format_list(entries)),
        })
    return threads


def heartbeat(control, threads, interval):
    """Send Caddy a byte every interval while the request threads run.
    Sending needs the GIL, so heartbeats stop when no Python code can run in
    the process any more (C code holding the GIL, a deadlock), and Caddy
    replaces it after its deadlock timeout."""
    for thread in threads:
        while thread.is_alive():
            control.send(wire.HEARTBEAT)
            thread.join(interval)


# mod_wsgi-express's default reload interval.
RELOAD_INTERVAL = 1.0


class SourceWatcher:
    """The modification times of the source files of the loaded modules and
    of the given files (the applications' scripts and PasteDeploy files),
    as mod_wsgi-express's --reload-on-changes watches them."""

    def __init__(self, files):
        self.files = files
        self.mtimes = {}

    def scan(self):
        """The files whose modification time changed since the last scan,
        as (path, new modification time in nanoseconds): each change once.
        The files of modules imported since the last scan are recorded: an
        import is not a change."""
        changed = []
        files = [getattr(module, '__file__', None) for module in list(sys.modules.values())]
        for path in self.files + files:
            if not isinstance(path, str):
                continue  # a built-in, frozen or namespace module
            try:
                mtime = os.stat(path).st_mtime_ns
            except OSError:
                # Missing for a moment (an editor replacing it) is not a
                # change yet: reloading now could fail.
                continue
            if self.mtimes.setdefault(path, mtime) != mtime:
                self.mtimes[path] = mtime
                changed.append((path, mtime))
        return changed


def watch_sources(control, watcher, interval):
    """Scan every interval, and tell Caddy of every change. Caddy reloads
    the application, which replaces this process; if the new code does not
    load, this process keeps serving, and watching: the next change (the
    fix) reloads again."""
    while True:
        time.sleep(interval)
        changed = watcher.scan()
        if changed:
            # One write: Caddy reads the changes one scan found together,
            # and reloads once for them.
            control.send(b''.join(wire.change_notice(path, mtime) for path, mtime in changed))


def hello(conn, thread):
    conn.send(wire.frame(wire.HELLO, wire.encode_pairs([
        ('protocol', str(wire.VERSION)),
        ('pid', str(os.getpid())),
        ('python', platform.python_version()),
        ('executable', os.fsencode(sys.executable).decode('latin-1')),
        ('thread', str(thread)),
    ])))


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    # Caddy passes the sockets inheritable, as exec requires. The
    # application's child processes (subprocess, os.system) must not get
    # them: a connection must end when this process does.
    for fd in args.fds + ([] if args.control_fd is None else [args.control_fd]):
        os.set_inheritable(fd, False)
    # First, so that a slow start is already visible under the name.
    if args.display_name:
        try:
            set_display_name(args.display_name)
        except OSError as exc:
            print('caddy-wsgi: could not set the display name %r: %s' % (args.display_name, exc), file=sys.stderr)
    if args.umask is not None:
        os.umask(args.umask)
    conns = [wire.Connection(socket.socket(fileno=fd)) for fd in args.fds]
    # Scripts and modules next to the application import as they would under
    # mod_wsgi-express, whose working directory is searched first.
    sys.path[0] = os.getcwd()
    for directory in args.python_path:
        site.addsitedir(directory)
    control = None if args.control_fd is None else Control(socket.socket(fileno=args.control_fd))
    if control is not None:
        # Before the application loads, so that an application that gives
        # the signal a meaning of its own keeps it.
        faulthandler.register(wire.STACK_SIGNAL, file=control.sock.fileno(), all_threads=True)
    # Before the application loads: logging handlers it creates at import
    # time (Django's LOGGING, logging.basicConfig) keep the sys.stderr they
    # see, and it must be the one that follows the request.
    local = install_output_routing()
    loading = args.import_script
    try:
        if args.import_script:
            run_import_script(args.import_script)
        apps = []
        for target, app_type, callable_name, filename in args.apps:
            loading = target
            apps.append((load_app(target, app_type, callable_name, filename), base_environ(args, filename)))
    except LoadError as exc:
        conns[0].send(wire.frame(wire.STARTUP_ERROR, str(exc).encode('utf-8', 'backslashreplace')))
        return 1
    except BaseException as exc:
        text = ''.join(traceback.format_exception(type(exc), exc, user_frames(exc.__traceback__)))
        conns[0].send(wire.frame(wire.STARTUP_ERROR, ('could not load %s:\n%s' % (loading, text)).encode('utf-8', 'backslashreplace')))
        return 1

    if args.reload_on_changes:
        watcher = SourceWatcher([filename for _, _, _, filename in args.apps if filename])
        # Before the HELLOs, so that no change made once Caddy has the
        # process goes unseen.
        watcher.scan()
        threading.Thread(target=watch_sources, args=(control, watcher, RELOAD_INTERVAL),
                         name='caddy-wsgi-reload', daemon=True).start()
    threads = []
    workers = []
    for conn in conns:
        worker = Worker(conn, apps, local)
        thread = threading.Thread(target=worker.serve, name='wsgi-%d' % conn.sock.fileno(), daemon=True)
        thread.start()
        # Started first, for its id, by which faulthandler's stack dumps
        # name it: Caddy sends nothing before it has every HELLO.
        hello(conn, thread.ident)
        threads.append(thread)
        workers.append(worker)
    if control is not None:
        threading.Thread(target=answer_stack_requests, args=(control, workers),
                         name='caddy-wsgi-control', daemon=True).start()
    # Caddy closing the connections is the signal to exit.
    if args.heartbeat is None:
        for thread in threads:
            thread.join()
    else:
        heartbeat(control, threads, args.heartbeat)
    return 0
