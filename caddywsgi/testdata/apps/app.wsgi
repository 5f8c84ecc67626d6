"""The application the end-to-end tests drive; PATH_INFO picks the behaviour."""

import hashlib
import json
import os
import sys
import threading
import time
from urllib.parse import parse_qs

released = threading.Event()


def query(environ, name, default=''):
    return parse_qs(environ['QUERY_STRING']).get(name, [default])[0]


def ok(start_response, body, content_type='text/plain'):
    start_response('200 OK', [('Content-Type', content_type), ('Content-Length', str(len(body)))])
    return [body]


def env(environ, start_response):
    plain = {k: v for k, v in environ.items() if isinstance(v, (str, int, bool, tuple))}
    return ok(start_response, json.dumps(plain).encode(), 'application/json')


def echo_digest(environ, start_response):
    """Reads the body in pieces, as a file upload handler would."""
    digest = hashlib.sha256()
    size = 0
    read = environ['wsgi.input'].read
    while True:
        chunk = read(1 << 16)
        if not chunk:
            break
        size += len(chunk)
        digest.update(chunk)
    result = {'size': size, 'sha256': digest.hexdigest(), 'pid': os.getpid(),
              'content_length': environ.get('CONTENT_LENGTH')}
    return ok(start_response, json.dumps(result).encode(), 'application/json')


def echo(environ, start_response):
    return ok(start_response, environ['wsgi.input'].read())


def download(environ, start_response):
    size = int(query(environ, 'size'))
    chunk = bytes(range(256)) * 256  # 64 KiB
    start_response('200 OK', [('Content-Type', 'application/octet-stream'), ('Content-Length', str(size))])

    def body():
        left = size
        while left > 0:
            piece = chunk[:left]
            left -= len(piece)
            yield piece
    return body()


def stream(environ, start_response):
    released.clear()
    start_response('200 OK', [('Content-Type', 'text/plain')])

    def body():
        yield b'first\n'
        if not released.wait(30):
            raise RuntimeError('never released')
        yield b'second\n'
    return body()


def release(environ, start_response):
    released.set()
    return ok(start_response, b'released')


def error_before(environ, start_response):
    raise ValueError('boom-before')


def error_after(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain')])
    yield b'partial'
    raise RuntimeError('boom-after')


def bad_header(environ, start_response):
    start_response('200 OK', [('X-Bad', 'a\r\nInjected: 1')])
    return [b'never sent']


def bad_header_name(environ, start_response):
    start_response('200 OK', [('Bad Name', 'x')])
    return [b'never sent']


def bad_status(environ, start_response):
    start_response('200OK', [])
    return [b'never sent']


def write_callable(environ, start_response):
    write = start_response('200 OK', [('Content-Type', 'text/plain')])
    write(b'written ')
    return [b'returned']


def short_content_length(environ, start_response):
    start_response('200 OK', [('Content-Length', '100')])
    return iter([b'short'])


def long_content_length(environ, start_response):
    start_response('200 OK', [('Content-Length', '5')])
    return [b'toolongbody']


def file_response(environ, start_response):
    path = query(environ, 'path')
    f = open(path, 'rb')
    f.seek(int(query(environ, 'offset', '0')))
    start_response('200 OK', [('Content-Type', 'application/octet-stream')])
    return environ['wsgi.file_wrapper'](f, 1 << 16)


def block(environ, start_response):
    print('blocking in pid %d' % os.getpid(), flush=True)
    threading.Event().wait(60)
    return ok(start_response, b'unblocked')


def sleep(environ, start_response):
    ms = int(query(environ, 'ms'))
    print('sleeping for %d ms in pid %d ' % (ms, os.getpid()), flush=True)
    time.sleep(ms / 1000)
    print('done sleeping', flush=True)
    return ok(start_response, b'slept')


grown = []


def grow(environ, start_response):
    """Keeps mb more MiB resident, for memory_limit: filled bytes, so the pages are touched."""
    grown.append(b'\x01' * (int(query(environ, 'mb')) << 20))
    return ok(start_response, ('%d %d' % (os.getpid(), sum(map(len, grown)) >> 20)).encode())


def wait_for_file(environ, start_response):
    """Answers once the file at path exists (the test's signal), or after 10 s."""
    path = query(environ, 'path')
    print('waiting for %s in pid %d' % (path, os.getpid()), flush=True)
    deadline = time.monotonic() + 10
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            return ok(start_response, b'gave up')
        time.sleep(0.005)
    return ok(start_response, b'appeared')


def whoami(environ, start_response):
    me = {'uid': os.getuid(), 'gid': os.getgid(), 'groups': sorted(os.getgroups()),
          'HOME': os.environ.get('HOME'), 'USER': os.environ.get('USER')}
    return ok(start_response, json.dumps(me).encode(), 'application/json')


def getenv(environ, start_response):
    return ok(start_response, os.environ.get(query(environ, 'name'), '').encode())


def pid(environ, start_response):
    return ok(start_response, str(os.getpid()).encode())


def logs(environ, start_response):
    environ['wsgi.errors'].write('to-wsgi-errors\n')
    print('to-stdout')
    print('to-stderr', file=sys.stderr)
    return ok(start_response, b'logged')


def exc_info(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain')])
    try:
        raise KeyError('replaced')
    except KeyError:
        start_response('503 Service Unavailable', [('Content-Type', 'text/plain')], sys.exc_info())
    return [b'error page']


class Closing:
    def __init__(self, name):
        self.name = name

    def __iter__(self):
        yield b'closing body'

    def close(self):
        print('close() called for %s' % self.name, file=sys.stderr)


def closing(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return Closing(query(environ, 'name'))


def cookies(environ, start_response):
    start_response('200 OK', [('Set-Cookie', 'a=1'), ('Set-Cookie', 'b=2'), ('Content-Length', '0')])
    return []


ROUTES = {
    '/env': env, '/echo-digest': echo_digest, '/echo': echo, '/download': download,
    '/stream': stream, '/release': release, '/error-before': error_before,
    '/error-after': error_after, '/bad-header': bad_header, '/bad-header-name': bad_header_name,
    '/bad-status': bad_status,
    '/write': write_callable, '/cl-short': short_content_length, '/cl-long': long_content_length,
    '/file': file_response, '/block': block, '/sleep': sleep, '/pid': pid, '/getenv': getenv, '/whoami': whoami, '/logs': logs, '/exc-info': exc_info,
    '/closing': closing, '/cookies': cookies, '/grow': grow, '/wait-for-file': wait_for_file,
}


def application(environ, start_response):
    route = ROUTES.get(environ['PATH_INFO'].rstrip('/') or environ['PATH_INFO'], env)
    return route(environ, start_response)
