"""Hostile application (issue 9, processes): it crashes mid-request and
leaves behind a grandchild that holds its standard output and error, and,
with ?sockets=1, its connections to Caddy too.

/crash starts `sleep 60 &` through os.system, logs "grandchild started" on
the worker's real stderr, and exits at once without answering. /pid answers
the worker's pid."""

import os
import sys


def application(environ, start_response):
    if environ['PATH_INFO'] == '/crash':
        if 'sockets=1' in environ['QUERY_STRING']:
            # The worker's sockets are not inheritable: a hostile
            # application can make them so.
            for name in os.listdir('/proc/self/fd'):
                try:
                    if os.readlink('/proc/self/fd/' + name).startswith('socket:'):
                        os.set_inheritable(int(name), True)
                except OSError:
                    pass
        os.system('sleep 60 &')
        print('grandchild started', file=sys.__stderr__, flush=True)
        os._exit(1)
    body = str(os.getpid()).encode()
    start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', str(len(body)))])
    return [body]
