"""Hostile application (issue 9, processes): it writes a line of 2 MiB to
the worker's real standard output, which Caddy reads and logs.

/long?n=N writes 2 MiB without a newline to sys.__stdout__, then "after the
long line N" on a line of its own; /print?n=N writes "printed again N".
Both answer "ok" once written: a pipe that Caddy stops reading blocks
them."""

import sys
from urllib.parse import parse_qs


def application(environ, start_response):
    n = parse_qs(environ['QUERY_STRING']).get('n', [''])[0]
    if environ['PATH_INFO'] == '/long':
        sys.__stdout__.write('x' * (2 << 20))
        sys.__stdout__.write('\nafter the long line %s\n' % n)
    else:
        sys.__stdout__.write('printed again %s\n' % n)
    sys.__stdout__.flush()
    start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', '2')])
    return [b'ok']
