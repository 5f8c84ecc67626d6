"""A hostile application, for hostile_test.go: it writes crafted frames on
its own connection to Caddy (the socket behind wsgi.errors), passing
descriptors where the protocol does not allow them, too many, or ones that
are not regular files. Honest routes serve files, and one request that
never ends. What the hostile routes did goes to the worker's real stderr,
which Caddy logs."""

import os
import socket
import struct
import sys
import threading
from urllib.parse import parse_qs

HEADER = struct.Struct('>BBHI')
LOG = 0x30
BODY_MORE = 0x20

# Keeps the write ends of pipes passed to Caddy open: a reader of the pipe
# would wait for data forever.
kept = []


def query(environ, name, default=''):
    return parse_qs(environ['QUERY_STRING']).get(name, [default])[0]


def say(text):
    print(text, file=sys.__stderr__, flush=True)


def connection(environ):
    """The worker's Connection object for this request."""
    return environ['wsgi.errors'].conn


def log_frame(text):
    data = text.encode()
    return HEADER.pack(LOG, 0, 0, len(data)) + data


def with_fds(environ, fds):
    """Makes the worker pass fds instead of the file's descriptor with the
    RESPONSE_FILE frame of this response's wsgi.file_wrapper."""
    conn = connection(environ)

    def send_with_fd(data, fd):
        del conn.send_with_fd
        socket.send_fds(conn.sock, [data], fds)

    conn.send_with_fd = send_with_fd


def not_a_file(kind):
    if kind == 'eventfd':
        return os.eventfd(0)
    r, w = os.pipe()
    kept.append(w)
    return r


def application(environ, start_response):
    path = environ['PATH_INFO']
    if path == '/file':
        # Honest: the file through wsgi.file_wrapper, with pad bytes of
        # response header.
        headers = [('Content-Type', 'text/plain')]
        pad = int(query(environ, 'pad', '0'))
        if pad:
            headers.append(('X-Pad', 'p' * pad))
        start_response('200 OK', headers)
        return environ['wsgi.file_wrapper'](open(query(environ, 'path'), 'rb'))
    if path == '/log-fd':
        # A descriptor with a LOG frame.
        with open(query(environ, 'path'), 'rb') as f:
            socket.send_fds(connection(environ).sock, [log_frame('a log line with a descriptor')], [f.fileno()])
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return [b'sent a descriptor with a LOG frame']
    if path == '/file-two-fds':
        # RESPONSE_FILE with two descriptors.
        f = open(query(environ, 'path'), 'rb')
        with_fds(environ, [f.fileno(), f.fileno()])
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return environ['wsgi.file_wrapper'](f)
    if path == '/file-not-regular':
        # RESPONSE_FILE with an eventfd or the read end of a pipe.
        fd = not_a_file(query(environ, 'kind'))
        with_fds(environ, [fd])
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return environ['wsgi.file_wrapper'](open(query(environ, 'path'), 'rb'))
    if path == '/burst':
        # As many descriptors as fit in Caddy's control buffer, in message
        # after message.
        sock = connection(environ).sock
        with open(query(environ, 'path'), 'rb') as f:
            fds = [f.fileno()] * 4
            sent = 0
            try:
                for sent in range(int(query(environ, 'n'))):
                    socket.send_fds(sock, [log_frame('burst %d' % sent)], fds)
                sent += 1
            except OSError as exc:
                say('burst refused after %d messages: %s' % (sent, exc))
                raise
        say('burst sent: %d messages' % sent)
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return [b'burst sent']
    if path == '/ask-body':
        # Asks for 8 MiB of request body, reads none of it, and never
        # answers: Caddy's writes to the connection block once its buffer
        # is full.
        connection(environ).sock.sendall(HEADER.pack(BODY_MORE, 0, 0, 4) + struct.pack('>I', 8 << 20))
        say('asked for body in pid %d' % os.getpid())
        threading.Event().wait()
    if path == '/stuck':
        say('stuck %s in pid %d' % (query(environ, 'tag'), os.getpid()))
        threading.Event().wait()
    if path == '/pid':
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return [str(os.getpid()).encode()]
    start_response('404 Not Found', [('Content-Type', 'text/plain')])
    return [b'no such route']
