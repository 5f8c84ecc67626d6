"""A fake Caddy for the worker's unit tests.

It plays the server's side of the wire protocol the way caddywsgi/exchange.go
and caddywsgi/body.go do, against a real caddy_wsgi.worker.Worker serving one
end of a socketpair on a thread:

    with FakeCaddy(app) as caddy:
        resp = caddy.request({'PATH_INFO': '/x'}, body=b'...')
        assert resp.status == '200 OK'

The frame constants are copied from protocol/frame.go on purpose instead of
being imported from caddy_wsgi.wire, so that a mistake there shows up here.
"""

from __future__ import annotations

import array
import contextlib
import logging
import os
import socket
import stat
import struct
import sys
import threading
import types
from dataclasses import dataclass, field

import pytest

from caddy_wsgi import main as wsgi_main
from caddy_wsgi import wire as wsgi_wire
from caddy_wsgi import worker as wsgi_worker

# Copied from protocol/frame.go rather than taken from wire.py, on purpose:
# a test peer sharing the worker's constants could not catch a wrong one.
HELLO = 0x01
STARTUP_ERROR = 0x02
RESPONSE_HEAD = 0x10
RESPONSE_BODY = 0x11
RESPONSE_FILE = 0x12
RESPONSE_END = 0x13
APP_ERROR = 0x14
BODY_MORE = 0x20
LOG = 0x30
REQUEST = 0x40
BODY = 0x41
BODY_END = 0x42
BODY_PAUSE = 0x43
CANCEL = 0x44

FLAG_NO_BODY = 0x01
FLAG_TRUNCATED = 0x01
FLAG_ABORTED = 0x01

# RequestKeys in protocol/request.go: the values that start a REQUEST.
REQUEST_KEYS = ('REQUEST_METHOD', 'SCRIPT_NAME', 'PATH_INFO', 'QUERY_STRING', 'REQUEST_URI', 'SERVER_NAME',
                'SERVER_PORT', 'SERVER_PROTOCOL', 'REMOTE_ADDR', 'REMOTE_PORT', 'wsgi.url_scheme')

LEVEL_INFO = 0
LEVEL_WARN = 1
LEVEL_ERROR = 2
LEVEL_DEBUG = 3
FLAG_LOGGER = 0x80

NAMES = {
    HELLO: 'HELLO', STARTUP_ERROR: 'STARTUP_ERROR', RESPONSE_HEAD: 'HEAD',
    RESPONSE_BODY: 'BODY', RESPONSE_FILE: 'FILE', RESPONSE_END: 'END',
    APP_ERROR: 'APP_ERROR', BODY_MORE: 'BODY_MORE', LOG: 'LOG',
}

HEADER = struct.Struct('>BBHI')
FILE_RANGE = struct.Struct('>QQ')
UINT32 = struct.Struct('>I')
BODY_CHUNK = 64 << 10
MAX_PAYLOAD = 16 << 20

# No test should ever wait this long: it only turns a hang into a failure.
TIMEOUT = 10.0

DEFAULT_ENVIRON = {
    'REQUEST_METHOD': 'GET',
    'SCRIPT_NAME': '',
    'PATH_INFO': '/',
    'QUERY_STRING': '',
    'REQUEST_URI': '/',
    'SERVER_NAME': 'localhost',
    'SERVER_PORT': '80',
    'SERVER_PROTOCOL': 'HTTP/1.1',
    'REMOTE_ADDR': '127.0.0.1',
    'REMOTE_PORT': '54321',
    'wsgi.url_scheme': 'http',
    'HTTP_HOST': 'localhost',
}


class ProtocolViolation(AssertionError):
    """The worker sent something Caddy would refuse."""


class WorkerDied(AssertionError):
    """The worker thread called os._exit (the connection was out of step)."""


def frame(kind, payload=b'', flags=0, app=0):
    """app goes in header bytes 2-3: the application index of a REQUEST,
    reserved (zero) in every other frame."""
    return HEADER.pack(kind, flags, app, len(payload)) + payload


def encode_request(environ):
    """A REQUEST payload for an environ dict, which must have every one of
    REQUEST_KEYS: their values, then the other keys as pairs. Values may be
    str (sent as latin-1) or raw bytes."""
    environ = dict(environ)
    fields = [environ.pop(key) for key in REQUEST_KEYS]
    for key, value in environ.items():
        fields += (key, value)
    return b''.join((item if isinstance(item, bytes) else item.encode('latin-1')) + b'\0' for item in fields)


def decode_pairs(payload):
    """A HELLO payload (NUL-terminated key/value list) as a dict."""
    assert payload.endswith(b'\0'), payload
    fields = payload[:-1].decode('latin-1').split('\0')
    assert len(fields) % 2 == 0, fields
    return dict(zip(fields[::2], fields[1::2]))


@dataclass
class Frame:
    kind: int
    flags: int
    payload: bytes
    recv: int                   # number of the recvmsg() call that completed the frame
    file_data: bytes = None     # RESPONSE_FILE: the bytes read from the passed fd
    fd_was_regular: bool = None

    @property
    def name(self):
        return NAMES.get(self.kind, '0x%02x' % self.kind)

    def __repr__(self):
        return '<%s flags=%d %r>' % (self.name, self.flags, self.payload[:60])


@dataclass
class Response:
    status: str = None
    headers: list = field(default_factory=list)
    body: bytes = b''
    frames: list = field(default_factory=list)
    logs: list = field(default_factory=list)       # (level, text)
    records: list = field(default_factory=list)    # (level, logger, text) of FLAG_LOGGER frames, also in logs
    aborted: bool = False
    app_error: str = None
    body_more: list = field(default_factory=list)  # sizes the worker asked for
    sends: list = field(default_factory=list)      # what each worker send call carried

    @property
    def kinds(self):
        """Frame names in arrival order, e.g. ['HEAD', 'BODY', 'END']."""
        return [f.name for f in self.frames]

    def log_text(self, level=None):
        return '\n'.join(text for lvl, text in self.logs if level is None or lvl == level)

    def header(self, name):
        values = [v for n, v in self.headers if n.lower() == name.lower()]
        return values[0] if values else None


class FrameReader:
    """Reads frames from the server's end with recvmsg(), keeping any file
    descriptors (SCM_RIGHTS) for the RESPONSE_FILE frames they belong to.
    A plain recv() would make the kernel close them."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()
        self.fds = []
        self.recvs = 0

    def _recv(self):
        data, ancdata, flags, _ = self.sock.recvmsg(1 << 17, socket.CMSG_SPACE(16 * 4))
        self.recvs += 1
        for level, kind, cdata in ancdata:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds = array.array('i')
                fds.frombytes(cdata[:len(cdata) - len(cdata) % fds.itemsize])
                self.fds.extend(fds)
        if flags & socket.MSG_CTRUNC:
            raise ProtocolViolation('too many file descriptors in one message')
        return data

    def _fill(self, need):
        while len(self.buf) < need:
            data = self._recv()
            if not data:
                return False
            self.buf += data
        return True

    def read(self):
        """The next frame, or None if the worker closed its end between frames."""
        if not self._fill(HEADER.size):
            if self.buf:
                raise ProtocolViolation('connection closed inside a frame header')
            return None
        kind, flags, reserved, size = HEADER.unpack(self.buf[:HEADER.size])
        if reserved or size > MAX_PAYLOAD:
            raise ProtocolViolation('bad frame header %r' % bytes(self.buf[:HEADER.size]))
        if not self._fill(HEADER.size + size):
            raise ProtocolViolation('connection closed inside a frame of type 0x%02x' % kind)
        payload = bytes(self.buf[HEADER.size:HEADER.size + size])
        del self.buf[:HEADER.size + size]
        f = Frame(kind, flags, payload, self.recvs)
        if kind == RESPONSE_FILE:
            if not self.fds:
                raise ProtocolViolation('RESPONSE_FILE without a file descriptor')
            if len(payload) != FILE_RANGE.size:
                raise ProtocolViolation('RESPONSE_FILE payload of %d bytes' % len(payload))
            fd = self.fds.pop(0)
            try:
                offset, length = FILE_RANGE.unpack(payload)
                f.fd_was_regular = stat.S_ISREG(os.fstat(fd).st_mode)
                f.file_data = os.pread(fd, length, offset)
            finally:
                os.close(fd)
        return f

    def close_fds(self):
        for fd in self.fds:
            os.close(fd)
        self.fds = []


class SpySocket(socket.socket):
    """The worker's end of the socketpair. Records what every send call
    carries, to tell one write from several."""

    def _record(self, data):
        sends = getattr(self, 'sends', None)
        if sends is not None:
            sends.append(data)

    def send(self, data, *args):
        self._record(bytes(data))
        return super().send(data, *args)

    def sendall(self, data, *args):
        self._record(bytes(data))
        return super().sendall(data, *args)

    def sendmsg(self, buffers, *args):
        self._record(b''.join(bytes(b) for b in buffers))
        return super().sendmsg(buffers, *args)


class _WorkerExit(BaseException):
    pass


def _trapped_exit(code):
    raise _WorkerExit(code)


# Worker.serve calls os._exit() when the connection is out of step; inside
# pytest that would end the whole run. The os_trap fixture swaps the worker
# module's os for this copy, whose _exit only ends the worker thread.
TRAPPED_OS = types.SimpleNamespace(**{name: getattr(os, name) for name in dir(os) if not name.startswith('__')})
TRAPPED_OS._exit = _trapped_exit


def make_base_environ(fds=1, processes=1, app='tests:application', group=''):
    """main.base_environ for a worker started with these arguments."""
    argv = ['--app', app, '--fds', ','.join(str(3 + i) for i in range(fds)),
            '--processes', str(processes), '--group', group]
    args = wsgi_main.parse_args(argv)
    return wsgi_main.base_environ(args, args.apps[0][3])


class Client:
    """Caddy's side of one connection: sends requests, reads responses."""

    def __init__(self, sock):
        self.sock = sock
        self.sock.settimeout(TIMEOUT)
        self.reader = FrameReader(sock)
        self.exit_code = None
        self.sends = []     # filled by a SpySocket on the worker's end, if any
        self.cancelling = False

    def read_hello(self):
        """The HELLO (or STARTUP_ERROR) frame a worker process starts with."""
        f = self.reader.read()
        if f is None:
            raise ProtocolViolation('the worker closed the connection before HELLO')
        return f

    def _read(self):
        f = self.reader.read()
        if f is None:
            if self.exit_code is not None:
                raise WorkerDied('the worker exited with status %s' % self.exit_code)
            raise ProtocolViolation('the worker closed the connection mid-response')
        return f

    def cancel(self):
        """Send CANCEL, as exchange.go does when the client is gone (from
        on_frame, say): the rest of the exchange is read, not checked, and
        a BODY_MORE gets no grant."""
        self.cancelling = True
        self.sock.sendall(frame(CANCEL))

    def request(self, environ=None, body=None, chunked_window=None, truncated=False,
                on_frame=None, empty_last_grant=False, app=0, cancel=False):
        """Send one request and collect the response.

        environ: CGI keys to add to or override DEFAULT_ENVIRON; values are
            str (sent as latin-1) or bytes (sent as they are).
        body: None sends the REQUEST with FlagNoBody.
        chunked_window: send only this many bytes first, then BODY_PAUSE, and
            the rest on BODY_MORE grants, as body.go does. None sends the
            whole body at once, ended by BODY_END (keep it small: the fake
            writes it before it reads anything).
        truncated: end the body with BODY_END|FlagTruncated.
        empty_last_grant: when a grant uses up the body exactly, answer
            BODY_PAUSE, so that the worker's next BODY_MORE gets a bare
            BODY_END (what body.go does when the client's last read returns
            no EOF).
        on_frame: called with each frame as it arrives, before the next one
            is read: for testing streaming.
        app: the application index the REQUEST names (header bytes 2-3).
        cancel: send CANCEL right after the request's first write, as if the
            client went away at once.
        """
        env = dict(DEFAULT_ENVIRON)
        env.update(environ or {})
        if body is not None and 'CONTENT_LENGTH' not in env:
            env['CONTENT_LENGTH'] = str(len(body))
        out = [frame(REQUEST, encode_request(env), FLAG_NO_BODY if body is None else 0, app)]
        rest = b''
        paused = False
        if body is not None:
            window = body if chunked_window is None else body[:chunked_window]
            rest = body[len(window):]
            out += self._body_frames(window)
            paused = bool(rest) or (empty_last_grant and chunked_window is not None and len(body) == chunked_window)
            out.append(frame(BODY_PAUSE) if paused else frame(BODY_END, flags=FLAG_TRUNCATED if truncated else 0))
        if cancel:
            out.append(frame(CANCEL))
        self.cancelling = cancel
        sends = self.sends
        del sends[:]
        self.sock.sendall(b''.join(out))

        resp = Response(sends=sends)
        while True:
            f = self._read()
            resp.frames.append(f)
            if on_frame is not None:
                on_frame(f)
            if f.kind == RESPONSE_HEAD:
                if resp.status is not None:
                    raise ProtocolViolation('a second RESPONSE_HEAD')
                fields = f.payload.decode('latin-1').split('\0')
                resp.status = fields[0]
                if len(fields) % 2 != 1:
                    raise ProtocolViolation('response header without a value: %r' % f.payload)
                resp.headers = list(zip(fields[1::2], fields[2::2]))
            elif f.kind == RESPONSE_BODY:
                if resp.status is None:
                    raise ProtocolViolation('RESPONSE_BODY before RESPONSE_HEAD')
                resp.body += f.payload
            elif f.kind == RESPONSE_FILE:
                if resp.status is None:
                    raise ProtocolViolation('RESPONSE_FILE before RESPONSE_HEAD')
                resp.body += f.file_data
            elif f.kind == RESPONSE_END:
                if resp.status is None and not self.cancelling:
                    raise ProtocolViolation('RESPONSE_END before RESPONSE_HEAD')
                resp.aborted = bool(f.flags & FLAG_ABORTED)
                break
            elif f.kind == APP_ERROR:
                if resp.status is not None:
                    raise ProtocolViolation('APP_ERROR after RESPONSE_HEAD')
                resp.app_error = f.payload.decode('utf-8')
                break
            elif f.kind == LOG:
                level, text = f.flags & ~FLAG_LOGGER, f.payload.decode('utf-8')
                if f.flags & FLAG_LOGGER:
                    if '\0' not in text:
                        raise ProtocolViolation('LOG with FLAG_LOGGER and no NUL: %r' % text)
                    logger, text = text.split('\0', 1)
                    resp.records.append((level, logger, text))
                resp.logs.append((level, text))
            elif f.kind == BODY_MORE:
                if len(f.payload) != UINT32.size:
                    raise ProtocolViolation('BODY_MORE payload of %d bytes' % len(f.payload))
                want, = UINT32.unpack(f.payload)
                resp.body_more.append(want)
                # body.go refuses a BODY_MORE unless a grant has been used up
                # (BODY_PAUSE sent and not yet answered): one grant at a time.
                if not paused:
                    raise ProtocolViolation('BODY_MORE while no request body is paused')
                if self.cancelling:
                    continue
                grant, rest = rest[:max(want, 1)], rest[max(want, 1):]
                out = self._body_frames(grant)
                paused = bool(rest) or (empty_last_grant and bool(grant))
                out.append(frame(BODY_PAUSE) if paused else frame(BODY_END, flags=FLAG_TRUNCATED if truncated else 0))
                self.sock.sendall(b''.join(out))
            else:
                raise ProtocolViolation('unexpected frame %r' % f)
        resp.sends = list(sends)
        return resp

    @staticmethod
    def _body_frames(data):
        return [frame(BODY, data[i:i + BODY_CHUNK]) for i in range(0, len(data), BODY_CHUNK)]

    def close(self):
        """Close the connection as Caddy does and return any frames the
        worker sent after its last response (there should be none)."""
        if self.sock.fileno() < 0:
            return []
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        stray = []
        try:
            # Until the worker closes its end (for a FakeCaddy, when serve()
            # returns); reading also unblocks a worker stuck sending.
            while True:
                f = self.reader.read()
                if f is None:
                    break
                stray.append(f)
        except (OSError, ProtocolViolation):
            pass
        self.reader.close_fds()
        self.sock.close()   # a worker still sending gets EPIPE
        self._worker_closed()
        return stray

    def _worker_closed(self):
        pass


class FakeCaddy(Client):
    """A Client connected to a caddy_wsgi.worker.Worker serving on a thread
    of this process, built the way main.main builds it. The worker serves
    app as application 0 and extra_apps, (application, base environ)
    pairs, as applications 1, 2, ..."""

    def __init__(self, app, base_environ=None, local=None, extra_apps=()):
        server_end, worker_end = socket.socketpair()
        super().__init__(server_end)
        self.worker_sock = SpySocket(fileno=worker_end.detach())
        self.worker_sock.sends = self.sends
        self.conn = wsgi_wire.Connection(self.worker_sock)
        if base_environ is None:
            base_environ = make_base_environ()
        if local is None:
            local = wsgi_worker.ThreadOutput()
        # As in main.main: the Worker is built on the calling thread and
        # serves on a thread of its own.
        self.worker = wsgi_worker.Worker(self.conn, [(app, base_environ), *extra_apps], local)
        self.thread = threading.Thread(target=self._serve, name='fake-caddy-worker', daemon=True)
        self.thread.start()

    def _serve(self):
        try:
            self.worker.serve()
        except _WorkerExit as exc:
            self.exit_code = exc.args[0]
        finally:
            # Worker.serve returns when it reads EOF without closing its
            # socket (in main.py, process exit does that): end our reads.
            try:
                self.worker_sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _worker_closed(self):
        self.thread.join(TIMEOUT)

    def close(self):
        stray = super().close()
        # The Connection's makefile() keeps the socket open after close();
        # detach and close the descriptor so that nothing leaks.
        if self.worker_sock.fileno() >= 0:
            os.close(self.worker_sock.detach())
        return stray


@pytest.fixture
def os_trap(monkeypatch):
    """Make Worker.serve's os._exit end the worker thread, not pytest."""
    monkeypatch.setattr(wsgi_worker, 'os', TRAPPED_OS)


@contextlib.contextmanager
def routed_output():
    """install_output_routing(), undone afterwards: it replaces sys.stdout
    and sys.stderr and the log record factory for the whole process. Enter it inside the test itself,
    not in a fixture: pytest's output capture puts its own sys.stdout back
    between a test's setup and call."""
    saved = sys.stdout, sys.stderr, logging.getLogRecordFactory()
    try:
        yield wsgi_worker.install_output_routing()
    finally:
        sys.stdout, sys.stderr = saved[:2]
        logging.setLogRecordFactory(saved[2])


@pytest.fixture
def make_caddy(os_trap):
    """Returns FakeCaddy(app, **kwargs). The first call routes the output
    of request threads (routed_output) and every FakeCaddy shares that
    thread-local, as in main.main; all are closed and the routing undone
    at teardown."""
    made = []
    with contextlib.ExitStack() as stack:
        def make(app, **kwargs):
            if not made:
                make.local = stack.enter_context(routed_output())
            kwargs.setdefault('local', make.local)
            caddy = FakeCaddy(app, **kwargs)
            made.append(caddy)
            return caddy

        yield make
        for caddy in made:
            caddy.close()
