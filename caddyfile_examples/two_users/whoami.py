"""What both applications answer: who the worker runs as."""

import json
import os
import pwd


def whoami(name, environ, start_response):
    body = json.dumps({
        'application': name,
        'process_group': environ.get('mod_wsgi.process_group'),
        'uid': os.getuid(),
        'gid': os.getgid(),
        'user': pwd.getpwuid(os.getuid()).pw_name,
        'pid': os.getpid(),
    }).encode()
    start_response('200 OK', [('Content-Type', 'application/json'),
                              ('Content-Length', str(len(body)))])
    return [body]
