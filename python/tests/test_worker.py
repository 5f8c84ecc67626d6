"""caddy_wsgi.worker against a fake Caddy (fakecaddy.py): PEP 3333 behaviour
and the wire protocol, one request at a time on one connection."""

import contextlib
import io
import json
import logging
import logging.handlers
import sys
import threading
import warnings
from pathlib import Path
from wsgiref.validate import validator

import pytest

from caddy_wsgi import wire, worker
from fakecaddy import (BODY, BODY_CHUNK, BODY_END, CANCEL, DEFAULT_ENVIRON, FLAG_NO_BODY,  # noqa: F401 (fixtures)
                       LEVEL_DEBUG, LEVEL_ERROR, LEVEL_INFO, LEVEL_WARN, REQUEST, TIMEOUT, encode_request, frame,
                       make_base_environ, make_caddy, os_trap, routed_output)

KiB = 1024
MiB = 1024 * KiB


def ok(body=b'ok', headers=None):
    """An application answering 200 with a fixed body."""
    def app(environ, start_response):
        start_response('200 OK', headers if headers is not None else [('Content-Type', 'text/plain')])
        return [body]
    return app


def echo(environ, start_response):
    """Answers the request body, read whole, unless PATH_INFO is /ignore."""
    data = b'' if environ['PATH_INFO'] == '/ignore' else environ['wsgi.input'].read()
    start_response('200 OK', [('Content-Type', 'application/octet-stream')])
    return [data]


def capture(store, fn=None):
    """An application that keeps its environ (and fn(environ)'s result)."""
    def app(environ, start_response):
        store['environ'] = environ
        if fn is not None:
            store['result'] = fn(environ)
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return [b'captured']
    return app


def reads(fn):
    """An application that runs fn on wsgi.input and keeps what it returns."""
    store = {}
    return capture(store, lambda environ: fn(environ['wsgi.input'])), store


def with_echo(app):
    """app, except that PATH_INFO /next is answered by echo."""
    def dispatch(environ, start_response):
        if environ['PATH_INFO'] == '/next':
            return echo(environ, start_response)
        return app(environ, start_response)
    return dispatch


@pytest.fixture
def serve(make_caddy):
    """FakeCaddy for an application, which also answers /next with echo."""
    return lambda app, **kwargs: make_caddy(with_echo(app), **kwargs)


def assert_serves(caddy, body=b'next request body', window=None):
    """The worker is still in step: a request with a body round-trips."""
    resp = caddy.request({'PATH_INFO': '/next'}, body=body, chunked_window=window)
    assert resp.status == '200 OK', resp
    assert not resp.aborted and resp.app_error is None
    assert resp.body == body
    return resp


class Closing:
    """A response iterable with close(), which counts its calls."""

    def __init__(self, chunks, fail_at=None):
        self.chunks = list(chunks)
        self.fail_at = fail_at
        self.closed = 0

    def __iter__(self):
        for i, chunk in enumerate(self.chunks):
            if i == self.fail_at:
                raise RuntimeError('iteration failed at %d' % i)
            yield chunk

    def close(self):
        self.closed += 1


# ---------------------------------------------------------------- environ

def test_environ_request_keys_are_latin1_str(serve):
    store = {}
    caddy = serve(capture(store))
    path = '/caf\u00e9/\u4e2d'.encode('utf-8')   # raw UTF-8 bytes, as Caddy sends them
    resp = caddy.request({'PATH_INFO': path, 'QUERY_STRING': 'a=1&b=%20', 'HTTP_X_THING': 'v\xe9',
                          'CONTENT_TYPE': 'text/plain'})
    assert resp.status == '200 OK'
    env = store['environ']
    # PEP 3333: native strings holding the bytes as latin-1.
    assert env['PATH_INFO'] == path.decode('latin-1') == '/caf\xc3\xa9/\xe4\xb8\xad'
    assert env['PATH_INFO'].encode('latin-1').decode('utf-8') == '/caf\u00e9/\u4e2d'
    assert env['QUERY_STRING'] == 'a=1&b=%20'
    assert env['HTTP_X_THING'] == 'v\xe9'
    assert env['CONTENT_TYPE'] == 'text/plain'
    assert env['SCRIPT_NAME'] == ''
    for key, value in env.items():
        assert type(key) is str
        if '.' not in key:
            assert type(value) is str, (key, value)


def test_environ_empty_values_and_many_headers(serve):
    store = {}
    caddy = serve(capture(store))
    headers = {'HTTP_X_%d' % i: 'value %d' % i for i in range(200)}
    caddy.request(dict(headers, QUERY_STRING='', HTTP_EMPTY=''))
    env = store['environ']
    assert env['QUERY_STRING'] == '' and env['HTTP_EMPTY'] == ''
    for key, value in headers.items():
        assert env[key] == value


@pytest.mark.parametrize('fds, processes, multithread, multiprocess', [
    (1, 1, False, False),
    (4, 1, True, False),
    (1, 3, False, True),
    (2, 2, True, True),
])
def test_environ_constant_keys(serve, fds, processes, multithread, multiprocess):
    store = {}
    caddy = serve(capture(store), base_environ=make_base_environ(fds=fds, processes=processes))
    caddy.request()
    env = store['environ']
    assert env['wsgi.version'] == (1, 0) and type(env['wsgi.version']) is tuple
    assert env['wsgi.multithread'] is multithread
    assert env['wsgi.multiprocess'] is multiprocess
    assert env['wsgi.run_once'] is False
    assert env['wsgi.input_terminated'] is True
    assert env['wsgi.file_wrapper'] is worker.FileWrapper
    assert env['GATEWAY_INTERFACE'] == 'CGI/1.1'
    assert hasattr(env['wsgi.input'], 'read')
    assert hasattr(env['wsgi.errors'], 'write')


def test_apps_are_chosen_by_index(make_caddy):
    seen = []

    def named(name):
        def app(environ, start_response):
            seen.append((name, environ['SCRIPT_FILENAME'], environ['PATH_INFO']))
            start_response('200 OK', [])
            return [name.encode()]
        return app

    caddy = make_caddy(named('site'), base_environ=make_base_environ(app='/srv/site.wsgi'), extra_apps=[
        (named('admin'), make_base_environ(app='/srv/admin.wsgi')),
        (named('module'), make_base_environ(app='pkg.mod:app')),
    ])
    for app, name in [(2, 'module'), (0, 'site'), (1, 'admin'), (0, 'site')]:
        assert caddy.request({'PATH_INFO': '/%d' % app}, app=app).body == name.encode()
    assert seen == [('module', '', '/2'), ('site', '/srv/site.wsgi', '/0'),
                    ('admin', '/srv/admin.wsgi', '/1'), ('site', '/srv/site.wsgi', '/0')]


@pytest.mark.parametrize('scheme', ['http', 'https'])
def test_environ_url_scheme(serve, scheme):
    store = {}
    caddy = serve(capture(store))
    caddy.request({'wsgi.url_scheme': scheme})
    assert store['environ']['wsgi.url_scheme'] == scheme


def test_environ_is_fresh_for_every_request(serve):
    seen = []

    def app(environ, start_response):
        seen.append(dict(environ))
        environ['wsgi.run_once'] = 'changed'
        environ['added.by.app'] = True
        start_response('200 OK', [])
        return []

    caddy = serve(app)
    caddy.request({'HTTP_ONLY_FIRST': '1'}, body=b'one')
    caddy.request(body=b'two')
    caddy.request()
    assert seen[1]['wsgi.run_once'] is False
    assert 'added.by.app' not in seen[1]
    assert 'HTTP_ONLY_FIRST' not in seen[1]
    # A request with a body gets a stream of its own; body-less requests
    # share one that is always empty.
    assert seen[0]['wsgi.input'] is not seen[1]['wsgi.input']
    assert seen[2]['wsgi.input'].read() == b''


# ---------------------------------------------------------------- wsgi.input

def test_input_read_n(serve):
    app, store = reads(lambda f: [f.read(5), f.read(1), f.read(0), f.read(100), f.read(10)])
    serve(app).request(body=b'hello world')
    assert store['result'] == [b'hello', b' ', b'', b'world', b'']


@pytest.mark.parametrize('call', [lambda f: f.read(), lambda f: f.read(None), lambda f: f.read(-1)],
                         ids=['read()', 'read(None)', 'read(-1)'])
def test_input_read_all(serve, call):
    app, store = reads(lambda f: [f.read(3), call(f), call(f)])
    serve(app).request(body=b'hello world')
    assert store['result'] == [b'hel', b'lo world', b'']


def test_input_readline(serve):
    app, store = reads(lambda f: [f.readline(), f.readline(), f.readline(), f.readline()])
    serve(app).request(body=b'a\nbb\nccc')
    assert store['result'] == [b'a\n', b'bb\n', b'ccc', b'']


def test_input_readline_size(serve):
    app, store = reads(lambda f: [f.readline(3), f.readline(10), f.readline(0), f.readline(1),
                                  f.readline(-1), f.readline(5)])
    serve(app).request(body=b'abcdef\nxyz\n')
    assert store['result'] == [b'abc', b'def\n', b'', b'x', b'yz\n', b'']


def test_input_readlines(serve):
    app, store = reads(lambda f: f.readlines())
    serve(app).request(body=b'one\ntwo\n\nthree')
    assert store['result'] == [b'one\n', b'two\n', b'\n', b'three']


def test_input_readlines_hint(serve):
    app, store = reads(lambda f: [f.readlines(5), f.read()])
    serve(app).request(body=b'one\ntwo\nthree\n')
    lines, rest = store['result']
    assert lines == [b'one\n', b'two\n']
    assert rest == b'three\n'


def test_input_iteration(serve):
    app, store = reads(list)
    serve(app).request(body=b'one\ntwo\nthree')
    assert store['result'] == [b'one\n', b'two\n', b'three']


def test_input_reading_past_the_end(serve):
    app, store = reads(lambda f: [f.read(), f.read(), f.read(1), f.readline(), f.readlines(), list(f)])
    serve(app).request(body=b'abc')
    assert store['result'] == [b'abc', b'', b'', b'', [], []]


def test_input_without_body(serve):
    app, store = reads(lambda f: [f.read(), f.read(10), f.readline(), list(f)])
    resp = serve(app).request({'REQUEST_METHOD': 'GET'})   # FlagNoBody
    assert store['result'] == [b'', b'', b'', []]
    assert resp.body_more == []


def test_input_empty_body(serve):
    app, store = reads(lambda f: f.read())
    resp = serve(app).request(body=b'')
    assert store['result'] == b''
    assert resp.body_more == []


def big_body(size):
    line = b''.join(b'%06d,' % i for i in range(11)) + b'\n'
    return (line * (size // len(line) + 1))[:size]


@pytest.mark.parametrize('size', [BODY_CHUNK + 1, 5 * BODY_CHUNK + 123, 3 * MiB + 7])
def test_input_large_body_in_grants(serve, size):
    body = big_body(size)
    caddy = serve(echo)
    resp = caddy.request({'REQUEST_METHOD': 'POST'}, body=body, chunked_window=BODY_CHUNK)
    assert resp.status == '200 OK'
    assert resp.body == body
    # The fake refuses a BODY_MORE unless the previous grant ended in
    # BODY_PAUSE: one grant at a time. Grants are bounded.
    assert resp.body_more, 'the worker never asked for the rest of the body'
    assert all(0 < want <= 16 * BODY_CHUNK for want in resp.body_more), resp.body_more
    assert_serves(caddy)


@pytest.mark.parametrize('reader', ['read8k', 'readline', 'iterate', 'read-all'])
def test_input_large_body_read_in_pieces(serve, reader):
    def read8k(f):
        parts = []
        while True:
            part = f.read(8192)
            if not part:
                return b''.join(parts)
            assert len(part) <= 8192
            parts.append(part)

    def readline(f):
        parts = []
        while True:
            line = f.readline()
            if not line:
                return b''.join(parts)
            parts.append(line)

    fns = {'read8k': read8k, 'readline': readline, 'iterate': lambda f: b''.join(f), 'read-all': lambda f: f.read()}
    body = big_body(700 * KiB + 3)
    app, store = reads(fns[reader])
    resp = serve(app).request(body=body, chunked_window=BODY_CHUNK)
    assert store['result'] == body
    assert len(resp.body_more) >= 1


def test_input_grant_ending_exactly_at_the_body_end(serve):
    # The last grant uses the body up and ends in BODY_PAUSE; the next
    # BODY_MORE is answered by a bare BODY_END.
    body = big_body(2 * BODY_CHUNK)
    app, store = reads(lambda f: [f.read(), f.read()])
    caddy = serve(app)
    resp = caddy.request(body=body, chunked_window=BODY_CHUNK, empty_last_grant=True)
    assert store['result'] == [body, b'']
    assert len(resp.body_more) == 2
    resp = caddy.request(body=b'x' * BODY_CHUNK, chunked_window=BODY_CHUNK, empty_last_grant=True)
    assert store['result'] == [b'x' * BODY_CHUNK, b'']
    assert_serves(caddy)


def test_input_line_longer_than_a_grant(serve):
    body = b'x' * (3 * BODY_CHUNK) + b'\nend'
    app, store = reads(lambda f: [f.readline(), f.readline()])
    serve(app).request(body=body, chunked_window=BODY_CHUNK)
    assert store['result'] == [b'x' * (3 * BODY_CHUNK) + b'\n', b'end']


@pytest.mark.parametrize('size, window', [(100, None), (BODY_CHUNK, None), (3 * BODY_CHUNK, BODY_CHUNK)])
def test_input_unread_body_does_not_desync(serve, size, window):
    caddy = serve(echo)
    resp = caddy.request({'PATH_INFO': '/ignore'}, body=big_body(size), chunked_window=window)
    assert resp.status == '200 OK' and resp.body == b''
    assert resp.body_more == []     # nothing asked for that nobody reads
    body = big_body(2 * BODY_CHUNK + 5)[::-1]
    resp = caddy.request(body=body, chunked_window=BODY_CHUNK)
    assert resp.body == body


@pytest.mark.parametrize('amount', [10, BODY_CHUNK - 1, BODY_CHUNK + 10, 3 * BODY_CHUNK])
def test_input_half_read_body_does_not_desync(serve, amount):
    # amount > BODY_CHUNK: the worker asked for a grant and stopped reading
    # part way through it.
    app, store = reads(lambda f: f.read(amount))
    caddy = serve(app)
    body = big_body(40 * BODY_CHUNK)
    caddy.request(body=body, chunked_window=BODY_CHUNK)
    assert store['result'] == body[:amount]
    assert_serves(caddy, big_body(BODY_CHUNK * 2)[::-1], window=BODY_CHUNK)
    assert_serves(caddy)


def test_input_unread_body_after_app_error(serve):
    def app(environ, start_response):
        environ['wsgi.input'].read(10)
        raise ValueError('failed with the body unread')

    caddy = serve(app)
    resp = caddy.request(body=big_body(5 * BODY_CHUNK), chunked_window=BODY_CHUNK)
    assert resp.app_error is not None
    assert_serves(caddy)


@pytest.mark.parametrize('window', [None, BODY_CHUNK])
def test_input_truncated_body_raises(serve, window):
    def fn(f):
        got = f.read(3)
        errors = []
        for _ in range(2):
            try:
                f.read()
            except OSError as exc:
                errors.append(str(exc))
        return got, errors

    app, store = reads(fn)
    caddy = serve(app)
    body = b'abc' + b'd' * (2 * BODY_CHUNK if window else 10)
    resp = caddy.request(body=body, chunked_window=window, truncated=True)
    assert resp.status == '200 OK'
    got, errors = store['result']
    assert got == b'abc'
    # Every read after the truncation says so: a retry cannot take part of
    # the body for all of it.
    assert len(errors) == 2 and all('truncated' in e for e in errors)
    assert_serves(caddy)


def test_input_truncated_body_uncaught_is_app_error(serve):
    app, store = reads(lambda f: f.read())
    caddy = serve(app)
    resp = caddy.request(body=b'partial', truncated=True)
    assert resp.app_error is not None and 'OSError' in resp.app_error
    assert 'truncated' in resp.log_text(LEVEL_ERROR)
    assert_serves(caddy)


# ---------------------------------------------------------------- start_response

def test_start_response_returns_write_that_sends_at_once(serve):
    arrived = threading.Event()
    outcome = {}

    def app(environ, start_response):
        write = start_response('200 OK', [('Content-Type', 'text/plain')])
        assert callable(write)
        write(b'first')
        # Caddy receives the write before the application returns.
        outcome['arrived'] = arrived.wait(TIMEOUT)
        write(b'')
        return iter([b'second'])

    def on_frame(f):
        if f.name == 'BODY' and f.payload == b'first':
            arrived.set()

    resp = serve(app).request(on_frame=on_frame)
    assert outcome['arrived']
    assert resp.kinds == ['HEAD', 'BODY', 'BODY', 'END']
    assert resp.body == b'firstsecond'


def test_write_then_list(serve):
    def app(environ, start_response):
        write = start_response('200 OK', [])
        write(b'written, ')
        return [b'then returned']

    resp = serve(app).request()
    assert resp.body == b'written, then returned'
    assert resp.kinds == ['HEAD', 'BODY', 'BODY', 'END']


def test_write_then_generator(serve):
    def app(environ, start_response):
        write = start_response('200 OK', [])
        write(b'a')
        write(b'b')
        yield b'c'

    resp = serve(app).request()
    assert resp.body == b'abc'
    assert resp.kinds.count('HEAD') == 1


def test_exc_info_after_head_sent_reraises(serve):
    outcome = {}

    def app(environ, start_response):
        write = start_response('200 OK', [('Content-Type', 'text/plain')])
        write(b'partial')
        try:
            raise ValueError('original problem')
        except ValueError as exc:
            original = exc
            try:
                start_response('500 Internal Server Error', [], sys.exc_info())
            except ValueError as again:
                outcome['same'] = again is original
                raise
        outcome['same'] = 'no exception'
        return [b'not reached']

    caddy = serve(app)
    resp = caddy.request()
    assert outcome['same'] is True
    assert resp.status == '200 OK'
    assert resp.aborted
    assert resp.body == b'partial'
    assert 'original problem' in resp.log_text(LEVEL_ERROR)
    assert_serves(caddy)


def test_exc_info_before_head_sent_replaces_head(serve):
    def app(environ, start_response):
        start_response('200 OK', [('X-First', '1')])
        try:
            raise ValueError('changed my mind')
        except ValueError:
            start_response('503 Service Unavailable', [('X-Second', '2')], sys.exc_info())
        return [b'sorry']

    resp = serve(app).request()
    assert resp.status == '503 Service Unavailable'
    assert resp.headers == [('X-Second', '2')]
    assert resp.body == b'sorry'
    assert not resp.aborted


def test_exc_info_on_first_call(serve):
    def app(environ, start_response):
        try:
            raise KeyError('x')
        except KeyError:
            start_response('500 Internal Server Error', [('Content-Type', 'text/plain')], sys.exc_info())
        return [b'error page']

    resp = serve(app).request()
    assert resp.status == '500 Internal Server Error'
    assert resp.body == b'error page'


def test_second_start_response_without_exc_info_raises(serve):
    outcome = {}

    def app(environ, start_response):
        start_response('200 OK', [('X-First', '1')])
        try:
            start_response('404 Not Found', [])
        except Exception as exc:   # noqa: BLE001
            outcome['raised'] = type(exc).__name__
        return [b'first head stands']

    resp = serve(app).request()
    assert 'raised' in outcome
    assert resp.status == '200 OK' and resp.headers == [('X-First', '1')]


def test_second_start_response_uncaught_is_app_error(serve):
    def app(environ, start_response):
        start_response('200 OK', [])
        start_response('404 Not Found', [])
        return [b'']

    caddy = serve(app)
    resp = caddy.request()
    assert resp.app_error is not None
    assert 'second time' in resp.log_text(LEVEL_ERROR)
    assert_serves(caddy)


BAD_HEADS = [
    # id, status, headers, text the log must show to name the problem
    ('bytes-name', '200 OK', [(b'X-Name', 'v')], "b'X-Name'"),
    ('bytes-value', '200 OK', [('X-Name', b'v')], "b'v'"),
    ('int-value', '200 OK', [('Content-Length', 12)], 'int'),
    ('none-value', '200 OK', [('X-Name', None)], 'NoneType'),
    ('non-latin1-value', '200 OK', [('X-Name', 'caf\u00e9 \u20ac')], 'latin-1'),
    ('non-latin1-name', '200 OK', [('X-\u20ac', 'v')], 'latin-1'),
    ('crlf-value', '200 OK', [('X-Name', 'v\r\nSet-Cookie: evil=1')], 'Set-Cookie: evil=1'),
    ('lf-value', '200 OK', [('X-Name', 'v\nx')], 'LF'),
    ('cr-value', '200 OK', [('X-Name', 'v\rx')], 'CR'),
    ('nul-value', '200 OK', [('X-Name', 'v\0x')], 'NUL'),
    ('nul-name', '200 OK', [('X\0Name', 'v')], 'NUL'),
    ('crlf-name', '200 OK', [('X\r\nName', 'v')], 'CR'),
    ('3-tuple', '200 OK', [('X-Name', 'v', 'extra')], "'extra'"),
    ('1-tuple', '200 OK', [('X-Name',)], "('X-Name',)"),
    ('not-a-tuple', '200 OK', [42], '42'),
    ('bytes-status', b'200 OK', [], "b'200 OK'"),
    ('int-status', 200, [], 'int'),
    ('crlf-status', '200 OK\r\nX-Injected: 1', [], 'X-Injected'),
    ('nul-status', '200 OK\0', [], 'NUL'),
    ('non-latin1-status', '200 \u20ac', [], 'latin-1'),
]


@pytest.mark.parametrize('status, headers, needle', [b[1:] for b in BAD_HEADS], ids=[b[0] for b in BAD_HEADS])
def test_bad_head_is_app_error(serve, status, headers, needle):
    def app(environ, start_response):
        start_response(status, headers)
        return [b'body']

    caddy = serve(app)
    resp = caddy.request()
    assert resp.status is None, 'a bad head was sent: %r' % (resp.frames,)
    assert resp.app_error is not None
    assert resp.kinds == ['LOG', 'APP_ERROR']
    log = resp.log_text(LEVEL_ERROR)
    assert 'Traceback' in log and 'start_response' in log
    assert needle in log, log
    assert_serves(caddy)


def test_bad_head_mixed_tuple_sizes(serve):
    def app(environ, start_response):
        start_response('200 OK', [('X-A', 'a', 'X-Smuggled'), ('smuggled-value',)])
        return [b'body']

    resp = serve(app).request()
    assert resp.app_error is not None, resp.headers   # got [('X-A', 'a'), ('X-Smuggled', 'smuggled-value')]


def test_oversized_head_is_app_error(serve):
    def app(environ, start_response):
        start_response('200 OK', [('X-Huge', 'x' * (16 << 20))])
        return [b'body']

    caddy = serve(app)
    resp = caddy.request()
    assert resp.app_error is not None
    assert_serves(caddy)


def test_good_head_passes_through(serve):
    headers = [('Content-Type', 'text/html; charset=utf-8'), ('Set-Cookie', 'a=1'), ('Set-Cookie', 'b=2'),
               ('X-Latin1', 'caf\xe9'), ('X-Empty', '')]
    resp = serve(ok(b'<p>', headers)).request()
    assert resp.status == '200 OK'
    assert resp.headers == headers
    resp_head_payload = resp.frames[0].payload
    assert b'caf\xe9' in resp_head_payload


def test_headers_as_tuple_of_tuples(serve):
    resp = serve(ok(b'x', (('A', '1'), ('B', '2')))).request()
    assert resp.headers == [('A', '1'), ('B', '2')]


# ---------------------------------------------------------------- response

def test_list_response_is_one_send(serve):
    resp = serve(ok(b'hello world')).request()
    assert resp.kinds == ['HEAD', 'BODY', 'END']
    assert resp.body == b'hello world'
    assert len(resp.sends) == 1, resp.sends
    assert len({f.recv for f in resp.frames}) == 1


@pytest.mark.parametrize('size', [worker.SMALL_BODY, worker.SMALL_BODY + 1, BODY_CHUNK])
def test_list_response_around_the_copy_limit_is_one_send(serve, size):
    body = big_body(size)
    resp = serve(ok(body)).request()
    assert resp.kinds == ['HEAD', 'BODY', 'END']
    assert resp.body == body
    assert len(resp.sends) == 1, resp.sends


def test_list_of_several_chunks(serve):
    def app(environ, start_response):
        start_response('200 OK', [])
        return [b'a', b'', b'bc', b'd']

    resp = serve(app).request()
    assert resp.body == b'abcd'
    assert resp.kinds[0] == 'HEAD' and resp.kinds[-1] == 'END'
    assert len(resp.sends) == 1


def test_empty_list_response(serve):
    resp = serve(ok(b'')).request()
    assert resp.kinds == ['HEAD', 'END']
    assert resp.body == b''


def test_large_list_response_split_in_frames(serve):
    body = big_body(5 * BODY_CHUNK + 17)
    resp = serve(ok(body)).request()
    assert resp.body == body
    assert all(len(f.payload) <= BODY_CHUNK for f in resp.frames if f.name == 'BODY')
    assert resp.kinds.count('BODY') == 6


def test_generator_chunks_stream_in_order(serve):
    first_arrived = threading.Event()
    state = {'finished': False}

    def app(environ, start_response):
        start_response('200 OK', [('Content-Type', 'text/plain')])
        yield b'first'
        state['arrived_while_running'] = first_arrived.wait(TIMEOUT)
        yield b'second'
        yield b'third'
        state['finished'] = True

    def on_frame(f):
        if f.name == 'BODY' and f.payload == b'first':
            state['finished_when_first_arrived'] = state['finished']
            first_arrived.set()

    resp = serve(app).request(on_frame=on_frame)
    assert state['arrived_while_running'] is True
    assert state['finished_when_first_arrived'] is False
    assert resp.kinds == ['HEAD', 'BODY', 'BODY', 'BODY', 'END']
    assert [f.payload for f in resp.frames if f.name == 'BODY'] == [b'first', b'second', b'third']


def test_empty_chunks_skipped_and_head_waits_for_first_data(serve):
    sent_before_data = {}

    def app(environ, start_response):
        start_response('200 OK', [('Content-Type', 'text/plain')])
        yield b''
        yield b''
        sent_before_data['sends'] = list(caddy.sends)
        yield b'data'
        yield b''

    caddy = serve(app)
    resp = caddy.request()
    assert sent_before_data['sends'] == []
    assert resp.kinds == ['HEAD', 'BODY', 'END']
    assert resp.body == b'data'


def test_head_can_still_change_after_empty_chunks(serve):
    # PEP 3333: the head is not sent before the first non-empty chunk, so the
    # application may still replace it with exc_info.
    def app(environ, start_response):
        start_response('200 OK', [('X-Original', '1')])
        yield b''
        try:
            raise RuntimeError('late failure')
        except RuntimeError:
            start_response('500 Internal Server Error', [('X-Replaced', '1')], sys.exc_info())
        yield b'error page'

    resp = serve(app).request()
    assert resp.status == '500 Internal Server Error'
    assert resp.headers == [('X-Replaced', '1')]
    assert resp.body == b'error page'


def test_generator_yielding_nothing(serve):
    def app(environ, start_response):
        start_response('204 No Content', [])
        return iter(())

    resp = serve(app).request()
    assert resp.status == '204 No Content'
    assert resp.kinds == ['HEAD', 'END']


@pytest.mark.parametrize('result', [['text'], [b'ok', 'text'], [''], [bytearray(b'x')], [memoryview(b'x')], [None]],
                         ids=['str', 'bytes-then-str', 'empty-str', 'bytearray', 'memoryview', 'none'])
@pytest.mark.parametrize('kind', ['list', 'generator'])
def test_non_bytes_chunk_before_head_is_app_error(serve, result, kind):
    def app(environ, start_response):
        start_response('200 OK', [])
        return list(result) if kind == 'list' else iter(result)

    caddy = serve(app)
    resp = caddy.request()
    if kind == 'generator' and result[0] == b'ok':
        # The first chunk went out: the response can only be broken off.
        assert resp.status == '200 OK' and resp.aborted and resp.body == b'ok'
    else:
        assert resp.app_error is not None and resp.status is None, resp
    log = resp.log_text(LEVEL_ERROR)
    assert 'bytes' in log and 'Traceback' in log
    assert_serves(caddy)


def test_str_chunk_after_head_aborts(serve):
    it = Closing([b'first', 'second'])

    def app(environ, start_response):
        start_response('200 OK', [])
        return it

    caddy = serve(app)
    resp = caddy.request()
    assert resp.status == '200 OK' and resp.body == b'first'
    assert resp.aborted
    assert 'str' in resp.log_text(LEVEL_ERROR)
    assert it.closed == 1
    assert_serves(caddy)


def test_str_to_write_is_an_error(serve):
    def app(environ, start_response):
        start_response('200 OK', [])('text')
        return []

    resp = serve(app).request()
    assert resp.app_error is not None
    assert 'str' in resp.log_text(LEVEL_ERROR)


@pytest.mark.parametrize('method', ['GET', 'HEAD'])
def test_close_called_on_success(serve, method):
    it = Closing([b'a', b'b'])

    def app(environ, start_response):
        start_response('200 OK', [])
        return it

    resp = serve(app).request({'REQUEST_METHOD': method})
    assert it.closed == 1
    assert not resp.aborted


def test_close_called_when_iteration_fails_before_head(serve):
    it = Closing([b'a'], fail_at=0)

    def app(environ, start_response):
        start_response('200 OK', [])
        return it

    resp = serve(app).request()
    assert resp.app_error is not None
    assert it.closed == 1


def test_close_called_when_iteration_fails_after_head(serve):
    it = Closing([b'a', b'b'], fail_at=1)

    def app(environ, start_response):
        start_response('200 OK', [])
        return it

    caddy = serve(app)
    resp = caddy.request()
    assert resp.aborted and resp.body == b'a'
    assert it.closed == 1
    assert 'iteration failed at 1' in resp.log_text(LEVEL_ERROR)
    assert_serves(caddy)


def test_generator_close_runs_finally(serve):
    state = {}

    def app(environ, start_response):
        start_response('200 OK', [])
        try:
            yield b'a'
            yield b'b'
        finally:
            state['finally'] = True

    serve(app).request({'REQUEST_METHOD': 'HEAD'})
    assert state['finally']


def test_close_that_raises_is_logged(serve):
    class BadClose(Closing):
        def close(self):
            super().close()
            raise RuntimeError('close failed')

    it = BadClose([b'body'])

    def app(environ, start_response):
        start_response('200 OK', [])
        return it

    caddy = serve(app)
    resp = caddy.request()
    assert it.closed == 1
    assert 'close failed' in resp.log_text(LEVEL_ERROR)
    assert resp.kinds[-1] == 'END'
    assert_serves(caddy)


@pytest.mark.parametrize('style', ['list', 'generator', 'write'])
def test_head_request_sends_no_body(serve, style):
    def app(environ, start_response):
        write = start_response('200 OK', [('Content-Length', '5')])
        if style == 'write':
            write(b'hello')
            return []
        if style == 'list':
            return [b'hello']
        return iter([b'he', b'llo'])

    resp = serve(app).request({'REQUEST_METHOD': 'HEAD'})
    assert resp.kinds == ['HEAD', 'END']
    assert resp.headers == [('Content-Length', '5')]


def test_exception_before_start_response(serve):
    def failing_app(environ, start_response):
        raise ValueError('boom before the head')

    caddy = serve(failing_app)
    resp = caddy.request()
    assert resp.kinds == ['LOG', 'APP_ERROR']
    assert 'ValueError' in resp.app_error and 'boom before the head' in resp.app_error
    level, text = resp.logs[0]
    assert level == LEVEL_ERROR
    assert 'Traceback' in text and 'failing_app' in text and 'boom before the head' in text
    assert_serves(caddy)


def test_exception_after_start_response_before_data(serve):
    def app(environ, start_response):
        start_response('200 OK', [])
        raise ValueError('boom after start_response')

    resp = serve(app).request()
    assert resp.status is None and resp.app_error is not None


@pytest.mark.parametrize('result', [[b'body without a head'], [], iter([b'x']), iter([])],
                         ids=['list', 'empty-list', 'iterator', 'empty-iterator'])
def test_no_start_response_is_app_error(serve, result):
    def app(environ, start_response):
        return result

    caddy = serve(app)
    resp = caddy.request()
    assert resp.app_error is not None
    assert 'start_response' in resp.log_text(LEVEL_ERROR)
    assert_serves(caddy)


def test_exception_after_head_aborts(serve):
    def app(environ, start_response):
        start_response('200 OK', [])
        yield b'part one'
        raise ValueError('boom mid-body')

    caddy = serve(app)
    resp = caddy.request()
    assert resp.status == '200 OK' and resp.body == b'part one'
    assert resp.aborted
    assert resp.kinds[-2:] == ['LOG', 'END']
    assert 'Traceback' in resp.log_text(LEVEL_ERROR) and 'boom mid-body' in resp.log_text(LEVEL_ERROR)
    assert_serves(caddy)


@pytest.mark.parametrize('exc', [SystemExit(3), KeyboardInterrupt()], ids=['SystemExit', 'KeyboardInterrupt'])
def test_base_exceptions_do_not_kill_the_worker(serve, exc):
    def app(environ, start_response):
        raise exc

    caddy = serve(app)
    resp = caddy.request()
    assert resp.app_error is not None
    assert_serves(caddy)


def test_streaming_echo_reads_body_while_responding(serve):
    # Body grants (BODY_MORE) interleave with response frames.
    def app(environ, start_response):
        start_response('200 OK', [('Content-Type', 'application/octet-stream')])
        f = environ['wsgi.input']
        while True:
            chunk = f.read(50000)
            if not chunk:
                return
            yield chunk

    body = big_body(20 * BODY_CHUNK + 3)
    caddy = serve(app)
    resp = caddy.request({'REQUEST_METHOD': 'POST'}, body=body, chunked_window=BODY_CHUNK)
    assert resp.body == body
    kinds = resp.kinds
    assert kinds.index('BODY_MORE') > kinds.index('BODY'), 'no response body was sent before asking for more'
    assert_serves(caddy)


def test_many_requests_on_one_connection(serve):
    caddy = serve(echo)
    for i in range(50):
        body = b'request %d' % i
        assert caddy.request(body=body if i % 2 else None).body == (body if i % 2 else b'')


# ---------------------------------------------------------------- wsgi.file_wrapper

@pytest.fixture
def data_file(tmp_path):
    path = tmp_path / 'data.bin'
    path.write_bytes(bytes(range(256)) * 8)   # 2048 bytes
    return path


@pytest.mark.parametrize('position', ['start', 'seek', 'read'])
def test_file_wrapper_regular_file_sends_fd(serve, data_file, position):
    opened = []
    content = data_file.read_bytes()
    expected_offset = {'start': 0, 'seek': 100, 'read': 50}[position]

    def app(environ, start_response):
        f = open(data_file, 'rb')
        opened.append(f)
        if position == 'seek':
            f.seek(100)
        elif position == 'read':
            f.read(50)     # buffered: the OS position is further on
        start_response('200 OK', [('Content-Type', 'application/octet-stream')])
        return environ['wsgi.file_wrapper'](f, 4096)

    resp = serve(app).request()
    assert resp.kinds == ['HEAD', 'FILE', 'END']
    file_frame = resp.frames[1]
    offset, length = file_frame.payload[:8], file_frame.payload[8:]
    assert int.from_bytes(offset, 'big') == expected_offset
    assert int.from_bytes(length, 'big') == len(content) - expected_offset
    assert file_frame.fd_was_regular
    assert resp.body == content[expected_offset:]
    assert opened[0].closed


def test_file_wrapper_after_write(serve, data_file):
    def app(environ, start_response):
        start_response('200 OK', [])(b'prefix:')
        return environ['wsgi.file_wrapper'](open(data_file, 'rb'))

    resp = serve(app).request()
    assert resp.kinds == ['HEAD', 'BODY', 'FILE', 'END']
    assert resp.body == b'prefix:' + data_file.read_bytes()


def test_file_wrapper_empty_file(serve, tmp_path):
    empty = tmp_path / 'empty'
    empty.write_bytes(b'')

    def app(environ, start_response):
        start_response('200 OK', [])
        return environ['wsgi.file_wrapper'](open(empty, 'rb'))

    resp = serve(app).request()
    assert resp.status == '200 OK' and resp.body == b''
    assert not resp.aborted


def test_file_wrapper_head_request(serve, data_file):
    opened = []

    def app(environ, start_response):
        f = open(data_file, 'rb')
        opened.append(f)
        start_response('200 OK', [])
        return environ['wsgi.file_wrapper'](f)

    resp = serve(app).request({'REQUEST_METHOD': 'HEAD'})
    assert resp.kinds == ['HEAD', 'END']
    assert opened[0].closed


def test_file_wrapper_bytesio_is_iterated(serve):
    data = big_body(3 * 8192 + 5)
    buf = io.BytesIO(data)

    def app(environ, start_response):
        start_response('200 OK', [])
        return environ['wsgi.file_wrapper'](buf, 8192)

    resp = serve(app).request()
    assert resp.body == data
    assert 'FILE' not in resp.kinds
    assert [len(f.payload) for f in resp.frames if f.name == 'BODY'] == [8192, 8192, 8192, 5]
    assert buf.closed


def test_file_wrapper_pipe_is_iterated(serve):
    import os
    r, w = os.pipe()
    os.write(w, b'from a pipe')
    os.close(w)
    f = open(r, 'rb')

    def app(environ, start_response):
        start_response('200 OK', [])
        return environ['wsgi.file_wrapper'](f)

    resp = serve(app).request()
    assert resp.body == b'from a pipe'
    assert 'FILE' not in resp.kinds
    assert f.closed


def test_file_wrapper_without_close(serve):
    class Reader:
        def __init__(self):
            self.data = io.BytesIO(b'no close method')

        def read(self, n):
            return self.data.read(n)

    def app(environ, start_response):
        start_response('200 OK', [])
        return environ['wsgi.file_wrapper'](Reader(), 4)

    resp = serve(app).request()
    assert resp.body == b'no close method'


def test_file_wrapper_alone_is_iterable(data_file):
    with open(data_file, 'rb') as f:
        wrapper = worker.FileWrapper(f, 1000)
        assert b''.join(wrapper) == data_file.read_bytes()


# ---------------------------------------------------------------- logging

def test_wsgi_errors_lines_become_log_frames(serve):
    arrived = threading.Event()
    outcome = {}

    def app(environ, start_response):
        errors = environ['wsgi.errors']
        errors.write('a')
        errors.write('b\n')
        outcome['arrived'] = arrived.wait(TIMEOUT)    # line-buffered: sent at the newline
        errors.writelines(['two\n', 'three\n'])
        errors.write('tail without newline')
        start_response('200 OK', [])
        return iter([b'x'])

    def on_frame(f):
        if f.name == 'LOG' and f.payload == b'ab':
            arrived.set()

    caddy = serve(app)
    resp = caddy.request(on_frame=on_frame)
    assert outcome['arrived']
    assert all(level == LEVEL_ERROR for level, _ in resp.logs)
    assert resp.log_text().split('\n') == ['ab', 'two', 'three', 'tail without newline']
    assert resp.kinds[0] == 'LOG'
    assert resp.kinds[-1] == 'END'


def test_wsgi_errors_flush(serve):
    def app(environ, start_response):
        environ['wsgi.errors'].write('partial')
        environ['wsgi.errors'].flush()
        environ['wsgi.errors'].flush()
        start_response('200 OK', [])
        return [b'x']

    resp = serve(app).request()
    assert resp.logs == [(LEVEL_ERROR, 'partial')]
    assert resp.kinds == ['LOG', 'HEAD', 'BODY', 'END']


def test_unterminated_log_line_comes_before_end_list(serve):
    def app(environ, start_response):
        environ['wsgi.errors'].write('no newline at the end')
        start_response('200 OK', [])
        return [b'x']

    caddy = serve(app)
    resp = caddy.request()
    try:
        assert resp.logs == [(LEVEL_ERROR, 'no newline at the end')]
        assert resp.kinds == ['LOG', 'HEAD', 'BODY', 'END']
    finally:
        # Whatever came after RESPONSE_END would be read as the start of
        # the next exchange.
        assert caddy.close() == []


def test_unterminated_log_line_comes_before_end_generator(serve):
    # The generator path (not list) flushes before RESPONSE_END.
    def app(environ, start_response):
        environ['wsgi.errors'].write('no newline at the end')
        start_response('200 OK', [])
        return iter([b'x'])

    resp = serve(app).request()
    assert resp.logs == [(LEVEL_ERROR, 'no newline at the end')]
    assert resp.kinds[-2:] == ['LOG', 'END']


def test_wsgi_errors_rejects_bytes(serve):
    outcome = {}

    def app(environ, start_response):
        try:
            environ['wsgi.errors'].write(b'bytes\n')
        except TypeError:
            outcome['TypeError'] = True
        start_response('200 OK', [])
        return []

    serve(app).request()
    assert outcome['TypeError']


def test_wsgi_errors_with_logging_module(serve):
    def app(environ, start_response):
        logger = logging.getLogger('caddy_wsgi.tests.app')
        handler = logging.StreamHandler(environ['wsgi.errors'])
        handler.setFormatter(logging.Formatter('%(levelname)s %(message)s'))
        logger.addHandler(handler)
        logger.propagate = False
        try:
            logger.warning('via logging: %s', 'caf\u00e9')
        finally:
            logger.removeHandler(handler)
        start_response('200 OK', [])
        return iter([b'x'])

    resp = serve(app).request()
    assert resp.records == [(LEVEL_WARN, 'caddy_wsgi.tests.app', 'WARNING via logging: caf\u00e9')]
    assert resp.logs == [(LEVEL_WARN, 'WARNING via logging: caf\u00e9')]


def test_log_text_is_utf8_with_surrogates_escaped(serve):
    def app(environ, start_response):
        environ['wsgi.errors'].write('caf\u00e9 \u4e2d \udcff\n')
        start_response('200 OK', [])
        return iter([])

    resp = serve(app).request()
    assert resp.logs == [(LEVEL_ERROR, 'caf\u00e9 \u4e2d \\udcff')]


def test_print_in_request_thread_becomes_log(serve):
    def app(environ, start_response):
        print('to stdout')
        print('to stderr', file=sys.stderr)
        sys.stdout.write('partial')
        start_response('200 OK', [])
        return iter([b'x'])

    resp = serve(app).request()
    assert (LEVEL_INFO, 'to stdout') in resp.logs
    assert (LEVEL_ERROR, 'to stderr') in resp.logs
    assert (LEVEL_INFO, 'partial') in resp.logs


@contextlib.contextmanager
def stream_logger(name, stream, handler_level=logging.NOTSET):
    """A logger at DEBUG with a StreamHandler on stream, as basicConfig() or a
    Django LOGGING dict make one."""
    logger = logging.getLogger(name)
    handler = logging.StreamHandler(stream)
    handler.setLevel(handler_level)
    handler.setFormatter(logging.Formatter('%(levelname)s:%(name)s:%(message)s'))
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        yield logger
    finally:
        logger.removeHandler(handler)


def log_each_level(logger):
    logger.debug('to debug')
    logger.info('to info')
    logger.warning('to warn')
    logger.error('to error')
    logger.critical('to critical')
    try:
        1 / 0
    except ZeroDivisionError:
        logger.exception('it failed')


def check_each_level(records, name):
    assert records[:5] == [(LEVEL_DEBUG, name, 'DEBUG:%s:to debug' % name),
                           (LEVEL_INFO, name, 'INFO:%s:to info' % name),
                           (LEVEL_WARN, name, 'WARNING:%s:to warn' % name),
                           (LEVEL_ERROR, name, 'ERROR:%s:to error' % name),
                           (LEVEL_ERROR, name, 'CRITICAL:%s:to critical' % name)]
    level, logger, text = records[5]
    assert (level, logger) == (LEVEL_ERROR, name)
    assert text.startswith('ERROR:%s:it failed\nTraceback (most recent call last):\n' % name)
    assert text.endswith('\nZeroDivisionError: division by zero')
    assert len(records) == 6


@pytest.mark.parametrize('stream', ['stdout', 'stderr'])
def test_logging_records_in_request_thread_keep_their_level(serve, stream):
    name = 'caddy_wsgi.tests.' + stream

    def app(environ, start_response):
        # The handler holds the stream of its creation, as basicConfig()'s
        # made at import time does: the router.
        with stream_logger(name, getattr(sys, stream)) as logger:
            print('partial line', end='', file=getattr(sys, stream))
            log_each_level(logger)
        print('printed')
        environ['wsgi.errors'].write('to wsgi.errors\n')
        start_response('200 OK', [])
        return iter([b'x'])

    resp = serve(app).request()
    check_each_level(resp.records, name)
    # Output before a record keeps its place and its level.
    assert resp.logs[0] == (LEVEL_INFO if stream == 'stdout' else LEVEL_ERROR, 'partial line')
    assert resp.logs[-2:] == [(LEVEL_INFO, 'printed'), (LEVEL_ERROR, 'to wsgi.errors')]


def test_output_after_a_record_keeps_its_stream_level(serve):
    """A record a handler filtered out, or one a handler holds on to, does not
    lend its level to the output that follows."""
    def app(environ, start_response):
        with stream_logger('caddy_wsgi.tests.filtered', sys.stderr, logging.WARNING) as logger:
            logger.debug('same text')
            sys.stderr.write('same text\n')
            memory = logging.handlers.MemoryHandler(100)
            logger.addHandler(memory)
            logger.info('held')
            print('printed')
            sys.stderr.write('written\n')
            logger.removeHandler(memory)
        start_response('200 OK', [])
        return iter([b'x'])

    resp = serve(app).request()
    assert resp.records == []
    assert resp.logs == [(LEVEL_ERROR, 'same text'), (LEVEL_INFO, 'printed'), (LEVEL_ERROR, 'written')]


def test_logging_records_outside_requests_become_log_record_lines(monkeypatch):
    """Caddy logs the worker's own stdout and stderr; a record there is one
    line that gives Caddy its level and logger (PROTOCOL.md section 3)."""
    original = io.StringIO()
    monkeypatch.setattr(sys, 'stderr', original)
    with routed_output():
        with stream_logger('caddy_wsgi.tests.background', sys.stderr) as logger:
            sys.stderr.write('plain\n')
            logger.warning('two\nlines with a \\ backslash')
            thread = threading.Thread(target=log_each_level, args=(logger,))
            thread.start()
            thread.join()
    lines = original.getvalue().split('\n')
    name = 'caddy_wsgi.tests.background'
    assert lines[:3] == ['plain', '\x1e1%s\x1fWARNING:%s:two\\nlines with a \\\\ backslash' % (name, name),
                         '\x1e3%s\x1fDEBUG:%s:to debug' % (name, name)]
    assert lines[-2].startswith('\x1e2%s\x1fERROR:%s:it failed\\nTraceback (most recent call last):\\n' % (name, name))
    assert lines[-2].endswith('\\nZeroDivisionError: division by zero')
    assert len(lines) == 9 and lines[-1] == ''


def test_record_factory_chains_to_the_one_before(monkeypatch):
    made = []
    previous = logging.getLogRecordFactory()

    def app_factory(*args, **kwargs):
        record = previous(*args, **kwargs)
        made.append(record)
        return record

    logging.setLogRecordFactory(app_factory)
    try:
        with routed_output():
            logging.getLogger('caddy_wsgi.tests.chained').warning('made by both')
    finally:
        logging.setLogRecordFactory(previous)
    assert [r.getMessage() for r in made] == ['made by both']


def test_print_in_other_thread_is_not_logged(serve):
    def app(environ, start_response):
        t = threading.Thread(target=print, args=('from another thread',))
        t.start()
        t.join()
        start_response('200 OK', [])
        return iter([b'x'])

    resp = serve(app).request()
    assert 'from another thread' not in resp.log_text()


# ---------------------------------------------------------------- wsgiref.validate

def validated_get(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'hello ', environ['PATH_INFO'].encode('latin-1')]


def validated_post(environ, start_response):
    size = int(environ.get('CONTENT_LENGTH') or 0)
    data = environ['wsgi.input'].read(size)
    line = environ['wsgi.input'].readline()
    environ['wsgi.errors'].write('read %d bytes\n' % len(data))
    environ['wsgi.errors'].flush()
    start_response('200 OK', [('Content-Type', 'application/octet-stream'), ('Content-Length', str(len(data)))])
    return [data + line]


def validated_generator(environ, start_response):
    write = start_response('200 OK', [('Content-Type', 'text/plain')])
    write(b'written ')

    def gen():
        yield b'one '
        yield b''
        yield b'two'
    return gen()


def validated_file(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return environ['wsgi.file_wrapper'](io.BytesIO(b'file-like body'))


@pytest.mark.filterwarnings('error')
@pytest.mark.parametrize('app, method, body, expected', [
    (validated_get, 'GET', None, b'hello /path'),
    (validated_get, 'HEAD', None, b''),
    (validated_post, 'POST', b'posted data', b'posted data'),
    (validated_generator, 'GET', None, b'written one two'),
    (validated_file, 'GET', None, b'file-like body'),
], ids=['get', 'head', 'post', 'generator', 'file-like'])
def test_wsgiref_validator(serve, app, method, body, expected):
    # The filter is process-wide, so it covers the worker thread: a warning
    # there fails the application, and so the request.
    assert warnings.filters[0][0] == 'error'
    caddy = serve(validator(app))
    resp = caddy.request({'REQUEST_METHOD': method, 'PATH_INFO': '/path'}, body=body)
    assert resp.app_error is None, resp.log_text()
    assert not resp.aborted, resp.log_text()
    assert resp.status == '200 OK'
    assert resp.body == expected
    assert 'Traceback' not in resp.log_text()
    # A second request: nothing left over from the first.
    resp = caddy.request({'REQUEST_METHOD': method, 'PATH_INFO': '/path'}, body=body)
    assert resp.status == '200 OK' and resp.body == expected


# ---------------------------------------------------------------- connection

def test_worker_ends_when_caddy_closes(serve):
    caddy = serve(ok())
    caddy.request()
    assert caddy.close() == []
    assert not caddy.thread.is_alive()
    assert caddy.exit_code is None


def test_worker_exits_on_protocol_error(serve):
    caddy = serve(ok())
    caddy.sock.sendall(frame(BODY, b'not a request'))
    caddy.thread.join(TIMEOUT)
    assert caddy.exit_code == 70


def test_worker_exits_on_unknown_app_index(make_caddy, capfd):
    caddy = make_caddy(ok(), extra_apps=[(ok(b'second'), make_base_environ())])
    assert caddy.request(app=1).body == b'second'
    caddy.sock.sendall(frame(REQUEST, encode_request(DEFAULT_ENVIRON), FLAG_NO_BODY, app=2))
    caddy.thread.join(TIMEOUT)
    assert caddy.exit_code == 70
    assert 'REQUEST for application 2; applications in this worker: 2' in capfd.readouterr().err


VECTORS = json.loads((Path(__file__).resolve().parents[2] / 'protocol' / 'testdata' / 'vectors.json').read_text())


def environ_of_request(serve, payload):
    """The environ the application gets for a REQUEST payload."""
    seen = {}

    def app(environ, start_response):
        seen.update(environ)
        return ok()(environ, start_response)

    caddy = serve(app)
    caddy.sock.sendall(frame(REQUEST, payload, FLAG_NO_BODY))
    assert caddy.reader.read().payload.startswith(b'200 OK')
    return seen


@pytest.mark.parametrize('vector', [v for v in VECTORS['vectors'] if v['frames'][0]['type'] == 'REQUEST'],
                         ids=lambda v: v['name'])
def test_request_vectors(serve, vector):
    """The worker decodes the REQUEST of each golden vector (its body left
    out) into the environ it describes."""
    f = vector['frames'][0]
    want = dict(zip(VECTORS['request_keys'], f['fixed']))
    want.update(f['pairs'])
    environ = environ_of_request(serve, bytes.fromhex(f['hex'])[wire.HEADER_SIZE:])
    assert {key: environ.get(key) for key in want} == want
    assert not {key for key in environ if key.isupper()} - set(want) - set(make_base_environ())


def test_request_latin1(serve):
    """Environ values are bytes shown as latin-1 (PEP 3333)."""
    f = next(v for v in VECTORS['vectors'] if v['name'] == 'request_latin1_path')['frames'][0]
    environ = environ_of_request(serve, bytes.fromhex(f['hex'])[wire.HEADER_SIZE:])
    assert environ['PATH_INFO'] == '/caf\u00c3\u00a9'
    assert environ['PATH_INFO'].encode('latin-1').decode('utf-8') == '/caf\u00e9'
    assert environ['HTTP_X_NAME'] == 'J\u00fcrgen'


@pytest.mark.parametrize('payload', [
    b'', b'GET\0', b'GET\0' * 10,
    b'GET\0' * 10 + b'http',  # the last value without its NUL
])
def test_worker_exits_on_request_without_all_fixed_values(serve, capfd, payload):
    caddy = serve(ok())
    caddy.sock.sendall(frame(REQUEST, payload, FLAG_NO_BODY))
    caddy.thread.join(TIMEOUT)
    assert caddy.exit_code == 70
    assert 'REQUEST without all of its 11 fixed values' in capfd.readouterr().err


def test_request_of_fixed_values_only(serve):
    """The fixed values go to their keys by position; a REQUEST needs no
    pairs after them."""
    values = ['GET', '/s', '/p', 'q=1', '/s/p?q=1', 'example.com', '8443', 'HTTP/2.0', '192.0.2.1', '1234', 'https']
    environ = environ_of_request(serve, b''.join(v.encode() + b'\0' for v in values))
    assert {key: environ[key] for key in wire.REQUEST_KEYS} == dict(zip(wire.REQUEST_KEYS, values))
    assert 'HTTP_HOST' not in environ


def test_worker_exits_on_reserved_bytes_in_body_frame(serve, capfd):
    # Only a REQUEST carries an application index: in the body frames that
    # follow it, bytes 2-3 stay reserved.
    caddy = serve(ok())
    caddy.sock.sendall(frame(REQUEST, encode_request(dict(DEFAULT_ENVIRON, CONTENT_LENGTH='1')))
                       + frame(BODY, b'x', app=1) + frame(BODY_END))
    caddy.thread.join(TIMEOUT)
    assert caddy.exit_code == 70
    assert 'frame 0x41: reserved header bytes are 0x0001, not zero' in capfd.readouterr().err


# ---------------------------------------------------------------- cancel

class Endless:
    """A streamed response that would go on and on (server-sent events, a
    log tail): counts the chunks it produced and its close() calls."""

    def __init__(self, limit=100000):
        self.limit = limit
        self.produced = 0
        self.closed = 0

    def __iter__(self):
        while self.produced < self.limit:
            self.produced += 1
            yield b'data: tick\n\n'

    def close(self):
        self.closed += 1


def streams(body):
    def app(environ, start_response):
        start_response('200 OK', [('Content-Type', 'text/event-stream')])
        return body
    return app


@pytest.fixture
def check_every_chunk(monkeypatch):
    """Look for a CANCEL before every chunk, not every 0.1 s: a fast stream
    stops at the chunk after it arrived."""
    monkeypatch.setattr(worker, 'CANCEL_CHECK_INTERVAL', 0)


def cancel_after_first_chunk(caddy):
    def on_frame(f):
        if f.name == 'BODY' and not caddy.cancelling:
            caddy.cancel()
    return on_frame


def test_cancel_closes_a_streamed_iterable(serve, check_every_chunk):
    body = Endless()
    caddy = serve(streams(body))
    resp = caddy.request(on_frame=cancel_after_first_chunk(caddy))
    assert resp.status == '200 OK' and resp.aborted
    assert body.closed == 1
    assert body.produced < body.limit
    assert_serves(caddy)


def test_cancel_makes_write_raise(serve, check_every_chunk):
    store = {}

    def app(environ, start_response):
        write = start_response('200 OK', [('Content-Type', 'text/event-stream')])
        try:
            for _ in range(100000):
                write(b'data: tick\n\n')
        except OSError as exc:
            store['error'] = exc
        return []

    caddy = serve(app)
    resp = caddy.request(on_frame=cancel_after_first_chunk(caddy))
    assert resp.aborted
    assert str(store['error']) == 'failed to write the response: the client disconnected'
    assert_serves(caddy)


def test_cancel_before_the_first_chunk(serve, monkeypatch):
    # A long poll: the client went away before there was anything to send.
    # The application learns it at its first chunk, which goes nowhere. (A
    # long poll's first chunk comes after the first look for a CANCEL is
    # due; here it comes at once, so the look is due at once.)
    monkeypatch.setattr(worker, 'CANCEL_CHECK_INTERVAL', 0)
    body = Endless()
    caddy = serve(streams(body))
    resp = caddy.request(cancel=True)
    assert resp.kinds == ['END'] and resp.aborted
    assert (body.produced, body.closed) == (1, 1)
    assert_serves(caddy)


def test_cancel_behind_an_unread_body(serve, monkeypatch):
    # The application has not read the body: the rest of the first window
    # is read for it, to find the CANCEL behind it, and stays readable.
    monkeypatch.setattr(worker, 'CANCEL_CHECK_INTERVAL', 0)
    body = Endless()
    store = {}

    def app(environ, start_response):
        body.close = lambda: store.setdefault('read', environ['wsgi.input'].read(5))
        return streams(body)(environ, start_response)

    caddy = serve(app)
    resp = caddy.request(body=b'x' * (BODY_CHUNK + 1), chunked_window=BODY_CHUNK, cancel=True)
    assert resp.kinds == ['END'] and resp.aborted
    assert body.produced == 1
    assert store['read'] == b'xxxxx'
    assert_serves(caddy)


def test_cancel_while_reading_the_body(serve):
    # CANCEL comes in place of the grant asked for: the read fails as for a
    # truncated body, and every later read too.
    errors = []

    def app(environ, start_response):
        for _ in range(2):
            try:
                environ['wsgi.input'].read()
            except OSError as exc:
                errors.append(str(exc))
        start_response('200 OK', [])
        return [b'for no one']

    caddy = serve(app)

    def on_frame(f):
        if f.name == 'BODY_MORE':
            caddy.cancel()
    resp = caddy.request(body=b'x' * 3 * BODY_CHUNK, chunked_window=BODY_CHUNK, on_frame=on_frame)
    assert resp.body_more and not resp.aborted
    assert errors == ['request body incomplete: the client disconnected'] * 2
    assert_serves(caddy)


def test_stale_cancel_is_skipped(serve):
    # Caddy sent CANCEL as the worker sent RESPONSE_END: it arrives where
    # the next REQUEST is expected, and belongs to no exchange.
    caddy = serve(ok())
    assert caddy.request().body == b'ok'
    caddy.sock.sendall(frame(CANCEL))
    assert_serves(caddy)
    assert caddy.exit_code is None


def test_only_streams_that_run_on_look_for_cancel(serve, monkeypatch):
    # The look costs a system call: a list response makes none, nor does an
    # iterable done within CANCEL_CHECK_INTERVAL of the request's start (as
    # most of Flask's and Django's responses are); a longer stream makes one
    # at most every CANCEL_CHECK_INTERVAL.
    looks = []
    real = wire.Connection.cancelled
    monkeypatch.setattr(wire.Connection, 'cancelled', lambda conn: looks.append(1) or real(conn))
    monkeypatch.setattr(worker, 'CANCEL_CHECK_INTERVAL', 60)
    caddy = serve(ok())
    caddy.request()
    caddy = serve(streams(Endless(limit=3)))
    assert caddy.request().body == b'data: tick\n\n' * 3
    assert looks == []
    monkeypatch.setattr(worker, 'CANCEL_CHECK_INTERVAL', 0)
    caddy = serve(streams(Endless(limit=3)))
    assert caddy.request().body == b'data: tick\n\n' * 3
    assert looks == [1, 1, 1]


# ---------------------------------------------------------------- stack reports

def test_worker_records_the_request_it_serves(serve):
    """For stack reports: while the application runs, the Worker holds its
    thread and the request's environ and start; between requests, None."""
    seen = {}

    def app(environ, start_response):
        seen['thread'] = threading.get_ident()
        seen['serving'] = caddy.worker.serving
        start_response('200 OK', [])
        return [b'']

    caddy = serve(app)
    assert caddy.request({'REQUEST_METHOD': 'PUT', 'REQUEST_URI': '/a?b'}).status == '200 OK'
    environ, started = seen['serving']
    assert (environ['REQUEST_METHOD'], environ['REQUEST_URI']) == ('PUT', '/a?b')
    assert started <= worker.monotonic()
    assert caddy.worker.thread == seen['thread']
    caddy.close()  # the worker's thread has ended: the request is over
    assert not caddy.thread.is_alive() and caddy.worker.serving is None
