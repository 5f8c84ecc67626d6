"""The worker's cost per hello request, on its real path (Worker.serve ->
handle -> send -> end) over a socketpair. Not a test: a measuring tool.

    python3 python/bench_worker.py N       CPU µs per request (user and system)
    python3 python/bench_worker.py --callgrind [N]
                                           instructions per request

The driver playing Caddy is a separate process that valgrind does not
follow (it is exec'd), so only the worker's side is counted. --callgrind
runs N and 3N requests and divides the difference, which leaves out
start-up and import.
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


def drive(fd, count):
    """Caddy's side: one REQUEST, then read to its RESPONSE_END."""
    sock = socket.socket(fileno=fd)
    environ = dict(ENVIRON)
    payload = ''.join(environ.pop(key) + '\0' for key in wire.REQUEST_KEYS)
    payload += ''.join(key + '\0' + value + '\0' for key, value in environ.items())
    request = wire.frame(wire.REQUEST, payload.encode('latin-1'), wire.FLAG_NO_BODY)
    buf = b''
    for _ in range(count):
        sock.sendall(request)
        done = False
        while not done:
            while len(buf) < wire.HEADER_SIZE:
                buf += sock.recv(65536)
            kind, flags, reserved, size = wire.HEADER.unpack_from(buf)
            while len(buf) < wire.HEADER_SIZE + size:
                buf += sock.recv(65536)
            buf = buf[wire.HEADER_SIZE + size:]
            done = kind == wire.RESPONSE_END
    sock.close()


def serve(count):
    from caddy_wsgi import main, worker
    ours, theirs = socket.socketpair()
    driver = subprocess.Popen([sys.executable, __file__, '--drive', str(theirs.fileno()), str(count)],
                              pass_fds=[theirs.fileno()])
    theirs.close()
    args = argparse.Namespace(fds=[3, 4, 5, 6], processes=2, group='')
    apps = [(application, main.base_environ(args, ''))]
    local = worker.install_output_routing()
    start = resource.getrusage(resource.RUSAGE_SELF)
    worker.Worker(wire.Connection(ours), apps, local).serve()
    end = resource.getrusage(resource.RUSAGE_SELF)
    driver.wait()
    return end.ru_utime - start.ru_utime, end.ru_stime - start.ru_stime


def callgrind_total(count):
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, 'callgrind.out')
        subprocess.run(['valgrind', '--tool=callgrind', '--callgrind-out-file=' + out, sys.executable,
                        __file__, str(count)], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        with open(out) as f:
            return int(re.search(r'^totals: (\d+)', f.read(), re.M).group(1))


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    if sys.argv[1] == '--drive':
        drive(int(sys.argv[2]), int(sys.argv[3]))
        return
    if sys.argv[1] == '--callgrind':
        count = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
        per_request = (callgrind_total(3 * count) - callgrind_total(count)) / (2 * count)
        print('%s %s: %.0f instructions per request' % (sys.executable, sys.version.split()[0], per_request))
        return
    count = int(sys.argv[1])
    user, system = serve(count)
    print('%s %s: %.1f µs CPU per request (user %.1f, system %.1f)'
          % (sys.executable, sys.version.split()[0], (user + system) / count * 1e6,
             user / count * 1e6, system / count * 1e6), file=sys.__stdout__)


if __name__ == '__main__':
    main()
