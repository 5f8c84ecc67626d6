# Reports the worker's process environment as JSON, for process_test.go.
# /import?MODULE imports MODULE; /hold stands for C code that keeps the GIL
# (libc's sleep called through PyDLL, which does not release it), and
# /sleep?SECONDS for a slow request that does release it.
import ctypes
import importlib
import json
import os
import sys
import time

PRELOADED = os.environ.get('CADDY_WSGI_TEST_PRELOADED', '')


def umask():
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith('Umask:'):
                return line.split()[1]


def application(environ, start_response):
    path, query = environ['PATH_INFO'], environ['QUERY_STRING']
    info = {}
    if path == '/import':
        info['where'] = importlib.import_module(query).WHERE
    elif path == '/hold':
        ctypes.PyDLL(None).sleep(30)
    elif path == '/sleep':
        time.sleep(float(query))
    else:
        info = {
            'executable': sys.executable,
            'prefix': sys.prefix,
            'lang': os.environ.get('LANG'),
            'lc_all': os.environ.get('LC_ALL'),
            'umask': umask(),
            'preloaded': PRELOADED,
        }
    start_response('200 OK', [('Content-Type', 'application/json')])
    return [json.dumps(info).encode()]
