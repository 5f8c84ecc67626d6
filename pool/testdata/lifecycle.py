# The lifecycle tests' application. /gate answers once its request body ends,
# so that a test decides when an in-flight request finishes; /grow keeps 32 MiB
# more for as long as the process lives; /burn spins until the process has
# used a second of CPU time; /linger starts a thread that keeps the process
# from exiting; /crash ends the process mid-request.
import os
import threading
import time

hoard = []


def application(environ, start_response):
    path = environ['PATH_INFO']
    if path == '/gate':
        environ['wsgi.input'].read()
    elif path == '/grow':
        hoard.append(b'x' * (32 << 20))
    elif path == '/burn':
        while time.process_time() < 1.0:
            pass
    elif path == '/crash':
        os._exit(1)
    elif path == '/linger':
        threading.Thread(target=time.sleep, args=(3600,), daemon=False).start()
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'ok']
