"""The worker side of the wire format against the golden vectors shared with
the Go tests (protocol/testdata/vectors.json, described in protocol/PROTOCOL.md)."""

import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest

import fakecaddy
from caddy_wsgi import main, wire, worker

ROOT = Path(__file__).resolve().parents[2]
VECTORS = json.loads((ROOT / 'protocol' / 'testdata' / 'vectors.json').read_text())
BY_NAME = {v['name']: v for v in VECTORS['vectors']}
CODES = {name: getattr(wire, name) for name in (
    'HELLO', 'STARTUP_ERROR', 'RESPONSE_HEAD', 'RESPONSE_BODY', 'RESPONSE_FILE', 'RESPONSE_END', 'APP_ERROR',
    'BODY_MORE', 'LOG', 'REQUEST', 'BODY', 'BODY_END', 'BODY_PAUSE', 'CANCEL')}


def vector_bytes(name):
    return bytes.fromhex(BY_NAME[name]['hex'])


def all_frames(sender=None):
    return [(v['name'], i, f) for v in VECTORS['vectors'] if sender in (None, v['sender'])
            for i, f in enumerate(v['frames'])]


def frame_id(param):
    name, i, f = param
    return '%s-%d-%s' % (name, i, f['type'])


def payload_of(f):
    """The payload a vector frame describes, built independently of wire.py."""
    if 'pairs' in f:
        fixed = b''.join(v.encode('latin-1') + b'\0' for v in f.get('fixed', ()))
        return fixed + b''.join(k.encode('latin-1') + b'\0' + v.encode('latin-1') + b'\0' for k, v in f['pairs'])
    if 'status' in f:
        return b'\0'.join([f['status'].encode('latin-1')] + [x.encode('latin-1') for h in f['headers'] for x in h])
    if 'data_hex' in f:
        return bytes.fromhex(f['data_hex'])
    if 'logger' in f:
        return (f['logger'] + '\0' + f['text']).encode('utf-8')
    if 'text' in f:
        return f['text'].encode('utf-8')
    if 'file_range' in f:
        return f['file_range']['offset'].to_bytes(8, 'big') + f['file_range']['length'].to_bytes(8, 'big')
    if 'want' in f:
        return f['want'].to_bytes(4, 'big')
    return b''


def test_constants():
    assert wire.VERSION == VECTORS['protocol_version'] == 6
    assert wire.HEADER_SIZE == 8
    assert wire.MAX_PAYLOAD == 16 * 1024 * 1024
    assert wire.BODY_CHUNK == 64 * 1024
    for name, code in CODES.items():
        assert all(f['code'] == code for _, _, f in all_frames() if f['type'] == name)
    assert wire.REQUEST_KEYS == fakecaddy.REQUEST_KEYS == tuple(VECTORS['request_keys'])
    assert all(('fixed' in f) == (f['type'] == 'REQUEST') for _, _, f in all_frames())


@pytest.mark.parametrize('param', all_frames(), ids=frame_id)
def test_vector_is_consistent(param):
    _, _, f = param
    payload = payload_of(f)
    expected = bytes.fromhex(f['hex'])
    assert expected == wire.HEADER.pack(f['code'], f['flags'], f.get('app', 0), len(payload)) + payload
    assert 'app' not in f or f['type'] == 'REQUEST'


@pytest.mark.parametrize('param', all_frames('worker'), ids=frame_id)
def test_encode_worker_frames(param):
    """Each worker frame as the runtime builds it."""
    _, _, f = param
    kind, flags = CODES[f['type']], f['flags']
    if kind == wire.HELLO:
        got = wire.frame(kind, wire.encode_pairs(f['pairs']))
    elif kind == wire.RESPONSE_HEAD:
        got = wire.frame(kind, worker.encode_head(f['status'], [tuple(h) for h in f['headers']]))
    elif kind == wire.RESPONSE_BODY:
        got = b''.join(wire.body_frames(bytes.fromhex(f['data_hex'])))
    elif kind == wire.RESPONSE_FILE:
        got = wire.frame(kind, wire.FILE_RANGE.pack(f['file_range']['offset'], f['file_range']['length']))
    elif kind == wire.RESPONSE_END:
        got = wire.END_ABORTED if flags & wire.FLAG_ABORTED else wire.END_COMPLETE
    elif kind == wire.BODY_MORE:
        got = wire.frame(kind, wire.BODY_MORE_SIZE.pack(f['want']))
    elif kind == wire.LOG and flags & wire.FLAG_LOGGER:
        got = wire.frame(kind, (f['logger'] + '\0' + f['text']).encode('utf-8'), flags)
    elif kind in (wire.LOG, wire.APP_ERROR, wire.STARTUP_ERROR):
        got = wire.frame(kind, f['text'].encode('utf-8', 'backslashreplace'), flags)
    else:
        pytest.fail('unexpected worker frame %s' % f['type'])
    assert got.hex() == f['hex']


@pytest.mark.parametrize('param', [p for p in all_frames('server') if not p[2].get('app')], ids=frame_id)
def test_encode_server_frames(param):
    """The generic frame encoder, and the fake Caddy's REQUEST encoder, also
    produce the server's frames (but for the application index, which only a
    REQUEST from the server carries)."""
    _, _, f = param
    if f['type'] == 'REQUEST':
        environ = dict(zip(VECTORS['request_keys'], f['fixed']))
        environ.update(f['pairs'])
        payload = fakecaddy.encode_request(environ)
    else:
        payload = payload_of(f)
    assert wire.frame(CODES[f['type']], payload, f['flags']).hex() == f['hex']


def test_hello_as_main_sends_it(monkeypatch):
    sent = []

    class Conn:
        def send(self, data):
            sent.append(data)

    f = BY_NAME['hello']['frames'][0]
    values = dict(f['pairs'])
    monkeypatch.setattr(main.os, 'getpid', lambda: int(values['pid']))
    monkeypatch.setattr(main.platform, 'python_version', lambda: values['python'])
    monkeypatch.setattr(main.sys, 'executable', values['executable'])
    main.hello(Conn(), int(values['thread']))
    assert sent == [bytes.fromhex(f['hex'])]


def pair():
    a, b = socket.socketpair()
    a.settimeout(10)
    b.settimeout(10)
    return a, b


@pytest.mark.parametrize('vector', VECTORS['vectors'], ids=lambda v: v['name'])
def test_read_frame_decodes_vectors(vector):
    a, b = pair()
    with a, b:
        a.sendall(bytes.fromhex(vector['hex']))
        a.shutdown(socket.SHUT_WR)
        conn = wire.Connection(b)
        for f in vector['frames']:
            if f['type'] == 'REQUEST':
                flags, app, payload = conn.read_request()
                kind = wire.REQUEST
                assert app == f.get('app', 0)
            else:
                kind, flags, payload = conn.read_frame()
            assert (kind, flags) == (f['code'], f['flags'])
            assert payload == payload_of(f)
            # test_worker.py decodes the REQUESTs, as the worker does.
            if kind == wire.HELLO:
                assert wire.decode_pairs(payload) == dict(f['pairs'])
            elif kind == wire.RESPONSE_FILE:
                assert wire.FILE_RANGE.unpack(payload) == (f['file_range']['offset'], f['file_range']['length'])
            elif kind == wire.BODY_MORE:
                assert wire.BODY_MORE_SIZE.unpack(payload) == (f['want'],)
        with pytest.raises(wire.ConnectionLost):
            conn.read_frame()


def test_read_frame_one_byte_at_a_time():
    data = b''.join(vector_bytes(n) for n in (
        'request_post_small_body', 'request_body_first_window_paused', 'body_grant_paused', 'body_end_truncated'))
    a, b = pair()

    def send():
        for i in range(len(data)):
            a.send(data[i:i + 1])
        a.shutdown(socket.SHUT_WR)

    sender = threading.Thread(target=send)
    sender.start()
    try:
        conn = wire.Connection(b)
        got = []
        while True:
            try:
                got.append(conn.read_frame())
            except wire.ConnectionLost:
                break
        assert [(k, fl) for k, fl, _ in got] == [
            (wire.REQUEST, 0), (wire.BODY, 0), (wire.BODY_END, 0),
            (wire.REQUEST, 0), (wire.BODY, 0), (wire.BODY_PAUSE, 0),
            (wire.BODY, 0), (wire.BODY, 0), (wire.BODY_PAUSE, 0),
            (wire.BODY_END, wire.FLAG_TRUNCATED)]
        assert got[1][2] == b'a=1&b=hello'
        assert got[0][2] == payload_of(BY_NAME['request_post_small_body']['frames'][0])
    finally:
        sender.join()
        a.close()
        b.close()


def test_read_frames_larger_than_one_receive():
    # Payloads that do not come whole with their header, each followed by
    # a small frame that must be read intact after them.
    big = bytes(range(256)) * (3 * wire.RECV_SIZE // 256 + 1)
    frames = [(wire.BODY, big), (wire.BODY_PAUSE, b''), (wire.BODY, big[:wire.RECV_SIZE]), (wire.BODY_END, b'')]
    a, b = pair()

    def send():
        a.sendall(b''.join(wire.frame(kind, payload) for kind, payload in frames))
        a.shutdown(socket.SHUT_WR)

    sender = threading.Thread(target=send)
    sender.start()
    try:
        conn = wire.Connection(b)
        assert [conn.read_frame() for _ in frames] == [(kind, 0, payload) for kind, payload in frames]
        with pytest.raises(wire.ConnectionLost):
            conn.read_frame()
    finally:
        sender.join()
        a.close()
        b.close()


def test_read_request_application_index():
    a, b = pair()
    with a, b:
        # Both bytes, big-endian.
        a.sendall(bytes.fromhex('400101020000000441004200'))
        assert wire.Connection(b).read_request() == (wire.FLAG_NO_BODY, 0x0102, b'A\0B\0')


def test_read_frame_refuses_an_application_index():
    # Only read_request accepts bytes 2-3 that are not zero.
    a, b = pair()
    with a, b:
        a.sendall(vector_bytes('request_second_app'))
        with pytest.raises(wire.ProtocolError, match='reserved header bytes are 0x0001'):
            wire.Connection(b).read_frame()


@pytest.mark.parametrize('data', [
    vector_bytes('body_end_truncated'),
    bytes.fromhex('4100000100000000'),      # reserved bytes set too
    bytes.fromhex('7f00000000000000'),
], ids=['BODY_END', 'BODY-reserved', 'unknown'])
def test_read_request_refuses_other_frames(data):
    a, b = pair()
    with a, b:
        a.sendall(data)
        with pytest.raises(wire.ProtocolError, match='expected REQUEST, got frame 0x%02x' % data[0]):
            wire.Connection(b).read_request()


@pytest.mark.parametrize('case', VECTORS['invalid'], ids=lambda c: c['name'])
def test_read_frame_invalid(case):
    a, b = pair()
    with a, b:
        a.sendall(bytes.fromhex(case['hex']))
        a.shutdown(socket.SHUT_WR)
        conn = wire.Connection(b)
        if case['python_error'] is None:
            kind, _, _ = conn.read_frame()
            assert kind not in CODES.values()
        else:
            with pytest.raises(getattr(wire, case['python_error'])):
                conn.read_frame()


@pytest.mark.parametrize('case', [c for c in VECTORS['pairs_cases'] if not c.get('error')],
                         ids=lambda c: c['payload_hex'] or 'empty')
def test_decode_pairs_cases(case):
    payload = bytes.fromhex(case['payload_hex'])
    assert wire.decode_pairs(payload) == case.get('dict', dict(case['pairs']))
    assert wire.encode_pairs(case['pairs']) == payload


def test_control_connection_bytes():
    # PROTOCOL.md §3, written out here rather than taken from wire.py.
    assert wire.HEARTBEAT == b'.'
    assert wire.change_notice('/srv/app/models.py', 1764000000123456789) == b'C1764000000123456789 /srv/app/models.py\n'
    assert wire.change_notice('/srv/caf\u00e9.py', 5) == b'C5 /srv/caf\xc3\xa9.py\n'
    # A file name that is not UTF-8 comes back as its bytes.
    assert wire.change_notice(os.fsdecode(b'/srv/\xff.py'), 5) == b'C5 /srv/\xff.py\n'
    # A newline in the name would end the notice early.
    assert wire.change_notice('/srv/odd\nname.py', 5) == b'C5 /srv/odd\\nname.py\n'


def test_body_frames_splits_at_64k():
    data = bytes(range(256)) * 800  # 200 KiB
    parts = wire.body_frames(data)
    sizes = [65536, 65536, 65536, 8192]
    assert len(parts) == 2 * len(sizes)
    for i, size in enumerate(sizes):
        assert parts[2 * i] == wire.HEADER.pack(wire.RESPONSE_BODY, 0, 0, size)
        assert len(parts[2 * i + 1]) == size
        assert isinstance(parts[2 * i + 1], memoryview)  # no copy
    assert b''.join(parts[1::2]) == data


def test_body_frames_small_and_exact():
    assert wire.body_frames(b'abc') == [wire.HEADER.pack(wire.RESPONSE_BODY, 0, 0, 3), b'abc']
    exact = b'x' * wire.BODY_CHUNK
    parts = wire.body_frames(exact)
    assert len(parts) == 2 and parts[1] is exact


def test_send_parts_list_response():
    f = BY_NAME['response_hello_world']['frames']
    parts = [wire.frame(wire.RESPONSE_HEAD, worker.encode_head(f[0]['status'], [tuple(h) for h in f[0]['headers']])),
             *wire.body_frames(b'Hello, world!'), wire.END_COMPLETE]
    a, b = pair()
    with a, b:
        wire.Connection(a).send_parts(parts)
        expected = vector_bytes('response_hello_world')
        assert recv_exactly(b, len(expected)) == expected


def test_send_with_fd():
    frames = BY_NAME['response_file']['frames']
    data = bytes.fromhex(frames[0]['hex']) + bytes.fromhex(frames[1]['hex'])
    a, b = pair()
    with a, b, tempfile.TemporaryFile() as tmp:
        tmp.write(b'x' * 4096 + b'range')
        tmp.flush()
        wire.Connection(a).send_with_fd(data, tmp.fileno())
        msg, fds, _, _ = socket.recv_fds(b, 4096, 4)
        try:
            assert msg == data
            assert len(fds) == 1
            assert os.path.samestat(os.fstat(fds[0]), os.fstat(tmp.fileno()))
            assert os.pread(fds[0], 5, 4096) == b'range'
        finally:
            for fd in fds:
                os.close(fd)


def recv_exactly(sock, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            break
        buf += chunk
    return bytes(buf)


# The worker's side of an exchange, over a socket pair, against the vectors.

class Server:
    """Plays Caddy on one connection to a Worker running in a thread, which
    serves the applications given, indexes 0, 1, ..."""

    def __init__(self, *apps):
        # The worker's socket must not time out: the worker would exit.
        self.sock, worker_sock = socket.socketpair()
        self.sock.settimeout(20)
        self.worker_sock = worker_sock
        self.conn = wire.Connection(self.sock)
        self.worker = worker.Worker(
            wire.Connection(worker_sock),
            [(app, {'wsgi.version': (1, 0), 'wsgi.file_wrapper': worker.FileWrapper}) for app in apps],
            worker.ThreadOutput())
        self.thread = threading.Thread(target=self.worker.serve, daemon=True)
        self.thread.start()

    def frames_until_end(self):
        frames = []
        while True:
            frames.append(self.conn.read_frame())
            if frames[-1][0] in (wire.RESPONSE_END, wire.APP_ERROR):
                return frames

    def close(self):
        self.sock.shutdown(socket.SHUT_WR)
        self.sock.close()
        self.thread.join(10)
        assert not self.thread.is_alive()
        self.worker_sock.close()


def hello_app(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', '13')])
    return [b'Hello, world!']


def test_worker_hello_world_exchange():
    server = Server(hello_app)
    try:
        expected = vector_bytes('response_hello_world')
        for _ in range(2):  # the connection is reused
            server.sock.sendall(vector_bytes('request_get_no_body'))
            assert recv_exactly(server.sock, len(expected)) == expected
    finally:
        server.close()


def test_worker_routes_by_application_index():
    def admin_app(environ, start_response):
        start_response('200 OK', [])
        return [('admin: %s %s' % (environ['SCRIPT_NAME'], environ['PATH_INFO'])).encode()]

    server = Server(hello_app, admin_app)
    try:
        expected = vector_bytes('response_hello_world')
        for _ in range(2):  # alternately, on one connection
            server.sock.sendall(vector_bytes('request_second_app'))
            assert server.frames_until_end() == [(wire.RESPONSE_HEAD, 0, b'200 OK'),
                                                 (wire.RESPONSE_BODY, 0, b'admin: /admin /users'),
                                                 (wire.RESPONSE_END, 0, b'')]
            server.sock.sendall(vector_bytes('request_get_no_body'))
            assert recv_exactly(server.sock, len(expected)) == expected
    finally:
        server.close()


def test_worker_body_grant():
    seen = {}

    def app(environ, start_response):
        seen['environ'] = environ
        body = environ['wsgi.input'].read()
        start_response('200 OK', [])
        return [body]

    server = Server(app)
    try:
        server.sock.sendall(vector_bytes('request_body_first_window_paused'))
        # read() wants everything: the worker asks for the largest grant.
        assert server.conn.read_frame() == (wire.BODY_MORE, 0, wire.BODY_MORE_SIZE.pack(1 << 20))
        assert vector_bytes('body_more_max') == wire.frame(wire.BODY_MORE, wire.BODY_MORE_SIZE.pack(1 << 20))
        server.sock.sendall(vector_bytes('body_grant_end'))
        frames = server.frames_until_end()
        assert frames[0] == (wire.RESPONSE_HEAD, 0, b'200 OK')
        assert b''.join(p for k, _, p in frames if k == wire.RESPONSE_BODY) == bytes(range(16)) + b'tail'
        assert frames[-1] == (wire.RESPONSE_END, 0, b'')
        assert seen['environ']['REQUEST_URI'] == '/app/upload?name=big.bin'
        assert seen['environ']['wsgi.version'] == (1, 0)  # the worker's constant keys
    finally:
        server.close()


def test_worker_small_read_asks_for_64k():
    def app(environ, start_response):
        environ['wsgi.input'].read(16)  # the first window
        environ['wsgi.input'].read(1)
        start_response('200 OK', [])
        return []

    server = Server(app)
    try:
        server.sock.sendall(vector_bytes('request_body_first_window_paused'))
        assert server.conn.read_frame() == (wire.BODY_MORE, 0, wire.BODY_MORE_SIZE.pack(1 << 16))
        assert vector_bytes('body_more') == wire.frame(wire.BODY_MORE, wire.BODY_MORE_SIZE.pack(1 << 16))
        # A grant larger than what the application reads: the rest is
        # discarded after the response, and the connection stays in step.
        server.sock.sendall(vector_bytes('body_grant_paused'))
        assert server.frames_until_end()[-1] == (wire.RESPONSE_END, 0, b'')
        server.sock.sendall(vector_bytes('request_get_no_body'))
        assert server.frames_until_end()[0] == (wire.RESPONSE_HEAD, 0, b'200 OK')
    finally:
        server.close()


def test_worker_unread_body_is_discarded():
    server = Server(hello_app)
    try:
        for name in ('request_post_small_body', 'request_body_first_window_paused', 'request_empty_chunked_body'):
            server.sock.sendall(vector_bytes(name))
            expected = vector_bytes('response_hello_world')
            # No BODY_MORE: the first frame back is the response.
            assert recv_exactly(server.sock, len(expected)) == expected
        server.sock.sendall(vector_bytes('request_get_no_body'))
        assert recv_exactly(server.sock, len(expected)) == expected
    finally:
        server.close()


def test_worker_truncated_body_is_an_app_error():
    def app(environ, start_response):
        environ['wsgi.input'].read()
        start_response('200 OK', [])
        return [b'unreachable']

    server = Server(app)
    try:
        request = bytes.fromhex(BY_NAME['request_body_first_window_paused']['frames'][0]['hex'])
        server.sock.sendall(request + vector_bytes('body_end_truncated'))
        frames = server.frames_until_end()
        assert [(k, fl) for k, fl, _ in frames] == [(wire.LOG, wire.LEVEL_ERROR), (wire.APP_ERROR, 0)]
        assert frames[-1][2].startswith(b'OSError: request body truncated')
    finally:
        server.close()


def test_worker_error_after_head_aborts():
    def app(environ, start_response):
        start_response('200 OK', [('Content-Type', 'text/plain')])
        yield b'partial'
        raise RuntimeError('boom')

    server = Server(app)
    try:
        server.sock.sendall(vector_bytes('request_get_no_body'))
        frames = server.frames_until_end()
        expected = BY_NAME['response_aborted']['frames']
        assert [(k, fl) for k, fl, _ in frames] == [(f['code'], f['flags']) for f in expected]
        assert frames[:2] == [(f['code'], f['flags'], payload_of(f)) for f in expected[:2]]
        assert frames[2][2].startswith(b'Exception while sending the response (response aborted):\nTraceback')
    finally:
        server.close()


def test_worker_file_wrapper_sends_fd():
    with tempfile.NamedTemporaryFile() as tmp:
        tmp.write(b'0123456789')
        tmp.flush()

        def app(environ, start_response):
            start_response('200 OK', [('Content-Type', 'application/octet-stream')])
            f = open(tmp.name, 'rb')
            f.seek(4)
            return environ['wsgi.file_wrapper'](f)

        server = Server(app)
        try:
            server.sock.sendall(vector_bytes('request_get_no_body'))
            head = bytes.fromhex(BY_NAME['response_file']['frames'][0]['hex'])
            assert server.sock.recv(len(head), socket.MSG_WAITALL) == head
            # The descriptor comes in a message that starts with its frame
            # and holds nothing else: the kernel ends the read after it.
            msg, fds, _, _ = socket.recv_fds(server.sock, 4096, 4)
            try:
                assert msg == wire.frame(wire.RESPONSE_FILE, wire.FILE_RANGE.pack(4, 6))
                assert len(fds) == 1 and os.pread(fds[0], 6, 4) == b'456789'
            finally:
                for fd in fds:
                    os.close(fd)
            assert server.conn.read_frame() == (wire.RESPONSE_END, 0, b'')
        finally:
            server.close()


# The real worker process: handshake, protocol violations, shutdown.

def spawn(tmp_path, app_source, nfds=1):
    (tmp_path / 'app.wsgi').write_text(app_source)
    ours, theirs = [], []
    for _ in range(nfds):
        a, b = socket.socketpair()
        a.settimeout(20)
        ours.append(a)
        theirs.append(b)
    # The pool passes its ends as fds 3, 4, ...; pass_fds keeps the numbers
    # they have here, and --fds names them.
    fds = [b.fileno() for b in theirs]
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / 'python' / 'caddy-wsgi-worker.py'), '--app', 'app.wsgi',
         '--fds', ','.join(map(str, fds))],
        cwd=tmp_path, pass_fds=fds, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    for b in theirs:
        b.close()
    return proc, ours


APP = 'def application(environ, start_response):\n' \
      '    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "13")])\n' \
      '    return [b"Hello, world!"]\n'


def test_process_hello_on_every_connection_and_shutdown(tmp_path):
    proc, socks = spawn(tmp_path, APP, nfds=3)
    try:
        for sock in socks:
            kind, flags, payload = wire.Connection(sock).read_frame()
            assert (kind, flags) == (wire.HELLO, 0)
            hello = wire.decode_pairs(payload)
            assert hello['protocol'] == '6'
            assert hello['pid'] == str(proc.pid)
        socks[1].sendall(vector_bytes('request_get_no_body'))
        expected = vector_bytes('response_hello_world')
        assert recv_exactly(socks[1], len(expected)) == expected
    finally:
        for sock in socks:
            sock.close()
    # Closing every connection is the signal to exit.
    assert proc.wait(20) == 0


def test_process_startup_error(tmp_path):
    proc, socks = spawn(tmp_path, 'raise ImportError("no such thing")\n', nfds=2)
    try:
        kind, _, payload = wire.Connection(socks[0]).read_frame()
        assert kind == wire.STARTUP_ERROR
        assert b'ImportError: no such thing' in payload
        assert proc.wait(20) == 1
        # Nothing on the other connections.
        assert socks[1].recv(1) == b''
    finally:
        for sock in socks:
            sock.close()


POST_REQUEST = bytes.fromhex(BY_NAME['request_post_small_body']['frames'][0]['hex'])


@pytest.mark.parametrize('bad, message', [
    (bytes.fromhex('7f00000000000000'), 'expected REQUEST, got frame 0x7f'),
    (POST_REQUEST + bytes.fromhex('4100000100000000'), 'frame 0x41: reserved header bytes are 0x0001, not zero'),
    (bytes.fromhex('4300000000000000'), 'expected REQUEST, got frame 0x43'),
    (vector_bytes('request_get_no_body')[:20], 'connection closed inside a frame of type 0x40'),
    (vector_bytes('request_second_app'), 'REQUEST for application 1; applications in this worker: 1'),
    (bytes.fromhex('4400000100000000'), 'expected REQUEST, got frame 0x44'),
], ids=['unknown-type', 'reserved-in-body', 'out-of-order', 'truncated', 'no-such-app', 'cancel-reserved'])
def test_process_protocol_violation_exits_70(tmp_path, bad, message):
    proc, socks = spawn(tmp_path, APP, nfds=2)
    try:
        for sock in socks:
            assert wire.Connection(sock).read_frame()[0] == wire.HELLO
        socks[0].sendall(bad)
        socks[0].shutdown(socket.SHUT_WR)
        assert proc.wait(20) == 70
        assert 'ProtocolError: ' + message in proc.stderr.read().decode()
    finally:
        for sock in socks:
            sock.close()


# Known bugs: each test states the correct behaviour and fails today.

def test_send_parts_more_than_iov_max():
    data = b'x' * (32 * 1024 * 1024 + 1)  # 513 frames, 1026 buffers
    parts = wire.body_frames(data)
    a, b = pair()
    received = []
    reader = threading.Thread(target=lambda: received.append(len(drain(b))))
    reader.start()
    try:
        wire.Connection(a).send_parts(parts)
    finally:
        a.shutdown(socket.SHUT_RDWR)
        a.close()
        reader.join(30)
        b.close()
    assert received == [len(data) + 513 * wire.HEADER_SIZE]


def drain(sock):
    buf = bytearray()
    while True:
        chunk = sock.recv(1 << 20)
        if not chunk:
            return buf
        buf += chunk


def test_worker_large_list_response():
    big = b'x' * (32 * 1024 * 1024 + 1)

    def app(environ, start_response):
        start_response('200 OK', [])
        return [big]

    server = Server(app)
    try:
        server.sock.sendall(vector_bytes('request_get_no_body'))
        server.sock.settimeout(5)
        frames = server.frames_until_end()
        assert frames[-1] == (wire.RESPONSE_END, 0, b'')
        assert sum(len(p) for k, _, p in frames if k == wire.RESPONSE_BODY) == len(big)
    finally:
        server.close()


def test_worker_nothing_after_response_end():
    calls = []

    def app(environ, start_response):
        if not calls:
            environ['wsgi.errors'].write('no newline at the end')
        calls.append(1)
        start_response('200 OK', [])
        return [b'ok']

    server = Server(app)
    try:
        server.sock.sendall(vector_bytes('request_get_no_body'))
        frames = server.frames_until_end()
        assert (wire.LOG, wire.LEVEL_ERROR, b'no newline at the end') in frames
        # Today the LOG comes first in the next exchange instead.
        server.sock.sendall(vector_bytes('request_get_no_body'))
        assert server.conn.read_frame()[0] == wire.RESPONSE_HEAD
    finally:
        server.close()


def test_hello_with_non_latin1_executable(monkeypatch):
    sent = []

    class Conn:
        def send(self, data):
            sent.append(data)

    monkeypatch.setattr(main.sys, 'executable', '/home/\u0141ukasz/venv/bin/python3')
    main.hello(Conn(), 1)
    kind, _, _, size = wire.HEADER.unpack(sent[0][:wire.HEADER_SIZE])
    assert kind == wire.HELLO
    assert wire.decode_pairs(sent[0][wire.HEADER_SIZE:])['protocol'] == '6'
