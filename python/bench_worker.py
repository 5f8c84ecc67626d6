"""The worker's cost per request, on its real path (Worker.serve -> handle
-> send -> end) over a socketpair. Not a test: a measuring tool.

    python3 python/bench_worker.py N           CPU µs per request (user and system)
    python3 python/bench_worker.py --callgrind N
                                               instructions per request
    --app FILE --path /json                    serve FILE's `application` (default: hello world)
    --ahead K                                  keep K more requests waiting

The driver playing Caddy is a separate process that valgrind does not
follow (it is exec'd), so only the worker's side is counted. --callgrind
runs N and 3N requests and divides the difference, which leaves out
start-up and import.

Caddy sends a thread its next request only once the last one has ended, so
between two requests the thread sleeps and is woken. With --ahead K the
driver keeps K requests queued behind the one being served, as a thread
that takes requests from a backlog finds them (mod_wsgi's and uWSGI's
daemons accept from a listen queue): the difference is what the sleep and
the wake-up cost. Only for responses done within 0.1 s, before the worker
first looks for a CANCEL, where a queued REQUEST would be out of step.
"""

import argparse
import os
import re
import resource
import socket
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from caddy_wsgi import wire  # noqa: E402 (after the path is set)

# What Caddy sends for wrk's `GET /` (caddywsgi/environ.go).
ENVIRON = [
    ('REQUEST_METHOD', 'GET'), ('SCRIPT_NAME', ''), ('PATH_INFO', '/'), ('QUERY_STRING', ''),
    ('REQUEST_URI', '/'), ('SERVER_NAME', '127.0.0.1'), ('SERVER_PORT', '8080'),
    ('SERVER_PROTOCOL', 'HTTP/1.1'), ('REMOTE_ADDR', '127.0.0.1'), ('REMOTE_PORT', '40000'),
    ('wsgi.url_scheme', 'http'), ('HTTP_HOST', '127.0.0.1:8080'),
]


def application(environ, start_response):
    """bench/apps/hello.py."""
    start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', '13')])
    return [b'Hello, world!']


def drive(fd, count, path, ahead):
    """Caddy's side: one REQUEST (ahead more queued), then read to its
    RESPONSE_END."""
    sock = socket.socket(fileno=fd)
    environ = dict(ENVIRON, PATH_INFO=path, REQUEST_URI=path)
    payload = ''.join(environ.pop(key) + '\0' for key in wire.REQUEST_KEYS)
    payload += ''.join(key + '\0' + value + '\0' for key, value in environ.items())
    request = wire.frame(wire.REQUEST, payload.encode('latin-1'), wire.FLAG_NO_BODY)
    buf = b''
    sent = min(ahead, count)
    sock.sendall(request * sent)
    for _ in range(count):
        if sent < count:
            sock.sendall(request)
            sent += 1
        done = False
        while not done:
            while len(buf) < wire.HEADER_SIZE:
                buf += receive(sock)
            kind, flags, reserved, size = wire.HEADER.unpack_from(buf)
            while len(buf) < wire.HEADER_SIZE + size:
                buf += receive(sock)
            buf = buf[wire.HEADER_SIZE + size:]
            done = kind == wire.RESPONSE_END
    sock.close()


def receive(sock):
    data = sock.recv(65536)
    if not data:
        sys.exit('bench_worker driver: the worker closed the connection (see its error above)')
    return data


def load_app(path):
    """The `application` of a WSGI script file, imported with its directory
    on sys.path, as the worker imports one."""
    import importlib.util
    path = os.path.abspath(path)
    sys.path.insert(0, os.path.dirname(path))
    spec = importlib.util.spec_from_file_location('bench_app', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.application


def serve(opts):
    from caddy_wsgi import main, worker
    app = load_app(opts.app) if opts.app else application
    ours, theirs = socket.socketpair()
    driver = subprocess.Popen([sys.executable, __file__, '--drive', str(theirs.fileno()), str(opts.count),
                               '--path', opts.path, '--ahead', str(opts.ahead)],
                              pass_fds=[theirs.fileno()])
    theirs.close()
    args = argparse.Namespace(fds=[3, 4, 5, 6], processes=2, group='')
    apps = [(app, main.base_environ(args, ''))]
    local = worker.install_output_routing()
    start = resource.getrusage(resource.RUSAGE_SELF)
    worker.Worker(wire.Connection(ours), apps, local).serve()
    end = resource.getrusage(resource.RUSAGE_SELF)
    driver.wait()
    return end.ru_utime - start.ru_utime, end.ru_stime - start.ru_stime


def callgrind_total(opts, count):
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, 'callgrind.out')
        subprocess.run(['valgrind', '--tool=callgrind', '--callgrind-out-file=' + out, sys.executable,
                        __file__, str(count), *app_args(opts)],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        with open(out) as f:
            return int(re.search(r'^totals: (\d+)', f.read(), re.M).group(1))


def app_args(opts):
    return (['--app', opts.app] if opts.app else []) + ['--path', opts.path, '--ahead', str(opts.ahead)]


def main():
    parser = argparse.ArgumentParser(usage=__doc__)
    parser.add_argument('count', type=int, nargs='?', default=2000)
    parser.add_argument('--callgrind', action='store_true')
    parser.add_argument('--app')
    parser.add_argument('--path', default='/')
    parser.add_argument('--ahead', type=int, default=0)
    parser.add_argument('--drive', type=int, metavar='FD', help=argparse.SUPPRESS)
    opts = parser.parse_args()
    if opts.drive is not None:
        drive(opts.drive, opts.count, opts.path, opts.ahead)
        return
    if opts.callgrind:
        per_request = (callgrind_total(opts, 3 * opts.count) - callgrind_total(opts, opts.count)) / (2 * opts.count)
        print('%s %s: %.0f instructions per request' % (sys.executable, sys.version.split()[0], per_request))
        return
    user, system = serve(opts)
    count = opts.count
    print('%s %s: %.1f µs CPU per request (user %.1f, system %.1f)'
          % (sys.executable, sys.version.split()[0], (user + system) / count * 1e6,
             user / count * 1e6, system / count * 1e6), file=sys.__stdout__)


if __name__ == '__main__':
    main()
