"""Hostile application (issue 9, processes): a worker that will not die. It
ignores SIGTERM and runs a non-daemon thread, so that neither the
connections closing nor SIGTERM ends the process.

/pid answers the worker's pid."""

import os
import signal
import threading
import time

signal.signal(signal.SIGTERM, signal.SIG_IGN)
threading.Thread(target=time.sleep, args=(3600,), name='immortal', daemon=False).start()


def application(environ, start_response):
    body = str(os.getpid()).encode()
    start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', str(len(body)))])
    return [body]
