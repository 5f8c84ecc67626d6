"""Requests that never end. /sleep waits in stuck_here(), where the GIL is
free; /gil blocks in holding_the_gil(), in C code that holds the GIL (ctypes
releases it around a CDLL call, not a PyDLL one), which silences the
heartbeats. Any other path answers with the process id."""

import ctypes
import os
import time


def stuck_here():
    time.sleep(3600)


def holding_the_gil():
    ctypes.PyDLL(None).sleep(3600)


def application(environ, start_response):
    path = environ['PATH_INFO']
    if path == '/sleep':
        stuck_here()
    elif path == '/gil':
        holding_the_gil()
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [str(os.getpid()).encode()]
