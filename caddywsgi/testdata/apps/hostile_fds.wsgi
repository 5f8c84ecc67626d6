"""Hostile application (issue 9, descriptors): it looks for descriptors a
worker must not have. Caddy's tests start Caddy with descriptor 9 open on a
file that the workers' user cannot read.

Every request answers, as JSON, the worker's open descriptors (number: what
/proc/self/fd says it is), what it read from descriptor 9, and the
descriptors of a child process (this file run as a script) started with
close_fds=False, which gets every inheritable descriptor of the worker."""

import json
import os
import subprocess
import sys


def descriptors():
    fds = {}
    for name in os.listdir('/proc/self/fd'):
        try:
            fds[name] = os.readlink('/proc/self/fd/' + name)
        except OSError:
            pass  # the listing's own descriptor, closed already
    return fds


def application(environ, start_response):
    try:
        secret = os.pread(9, 100, 0).decode('latin-1')
    except OSError as exc:
        secret = exc.strerror
    child = subprocess.run([sys.executable, __file__], close_fds=False, stdout=subprocess.PIPE, check=True)
    body = json.dumps({'worker': descriptors(), 'fd9': secret, 'child': json.loads(child.stdout)}).encode()
    start_response('200 OK', [('Content-Type', 'application/json'), ('Content-Length', str(len(body)))])
    return [body]


if __name__ == '__main__':
    print(json.dumps(descriptors()))
