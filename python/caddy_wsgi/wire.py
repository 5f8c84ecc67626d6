"""The caddy-wsgi wire format (protocol/PROTOCOL.md), worker side."""

import json
import socket
import struct

VERSION = 6

# type, flags, application index (REQUEST) or reserved (zero), payload length
HEADER = struct.Struct('>BBHI')
HEADER_SIZE = HEADER.size
MAX_PAYLOAD = 16 << 20
BODY_CHUNK = 64 << 10
# What one recv asks for: a whole REQUEST and its first body window, and
# under glibc's threshold for serving an allocation with mmap.
RECV_SIZE = 64 << 10

# Sent by the worker.
HELLO = 0x01
STARTUP_ERROR = 0x02
RESPONSE_HEAD = 0x10
RESPONSE_BODY = 0x11
RESPONSE_FILE = 0x12
RESPONSE_END = 0x13
APP_ERROR = 0x14
BODY_MORE = 0x20
LOG = 0x30

# The environ keys every REQUEST has: its payload starts with their values,
# in this order, each followed by NUL, before its key/value pairs.
REQUEST_KEYS = ('REQUEST_METHOD', 'SCRIPT_NAME', 'PATH_INFO', 'QUERY_STRING', 'REQUEST_URI', 'SERVER_NAME',
                'SERVER_PORT', 'SERVER_PROTOCOL', 'REMOTE_ADDR', 'REMOTE_PORT', 'wsgi.url_scheme')

# Sent by the server.
REQUEST = 0x40
BODY = 0x41
BODY_END = 0x42
BODY_PAUSE = 0x43
CANCEL = 0x44

FLAG_NO_BODY = 0x01     # REQUEST
FLAG_TRUNCATED = 0x01   # BODY_END
FLAG_ABORTED = 0x01     # RESPONSE_END

LEVEL_INFO = 0
LEVEL_WARN = 1
LEVEL_ERROR = 2
LEVEL_DEBUG = 3
FLAG_LOGGER = 0x80      # LOG: the payload starts with the logger's name and a NUL

# Linux's IOV_MAX is 1024 buffers per sendmsg.
IOV_MAX_SAFE = 512

FILE_RANGE = struct.Struct('>QQ')
BODY_MORE_SIZE = struct.Struct('>I')

# Frames that carry no payload are built once.
END_COMPLETE = HEADER.pack(RESPONSE_END, 0, 0, 0)
END_ABORTED = HEADER.pack(RESPONSE_END, FLAG_ABORTED, 0, 0)


# The control connection carries bytes, not frames: a heartbeat is '.', a
# change notice 'C', a modification time, a space, a path and a newline, a
# stack report 'S', JSON and a newline. Caddy asks for a stack report with
# 'S'; on STACK_SIGNAL, faulthandler writes every thread's stack there.
HEARTBEAT = b'.'
CHANGE_NOTICE = b'C'
STACK_REPORT = b'S'
STACK_REQUEST = b'S'
STACK_SIGNAL = 40


def stack_report(threads):
    """The report of the threads serving a request: a list of dicts with
    the keys thread, method, uri, seconds and stack. JSON escapes newlines,
    so the newline after it ends it."""
    return STACK_REPORT + json.dumps(threads, ensure_ascii=True).encode('ascii') + b'\n'


def change_notice(path, mtime_ns):
    """The notice that the file at path changed, and its modification time
    is now mtime_ns: the two tell one change from another. A newline in the
    path, which would end the notice, is escaped."""
    return CHANGE_NOTICE + b'%d ' % mtime_ns + path.replace('\n', '\\n').encode('utf-8', 'surrogateescape') + b'\n'


def log_record_line(level, logger, text):
    """A record of Python's logging as one line of stdout or stderr, which
    Caddy logs at the record's level with its logger's name."""
    return '\x1e%d%s\x1f%s\n' % (level, logger, text.replace('\\', '\\\\').replace('\n', '\\n'))


class ProtocolError(Exception):
    """The server sent bytes that break the protocol."""


class ConnectionLost(Exception):
    """The server closed the connection: this thread has nothing left to do."""


def frame(kind, payload=b'', flags=0):
    return HEADER.pack(kind, flags, 0, len(payload)) + payload


def body_frames(data):
    """Split a response chunk into RESPONSE_BODY frames without copying it."""
    size = len(data)
    if size <= BODY_CHUNK:
        return [HEADER.pack(RESPONSE_BODY, 0, 0, size), data]
    view = memoryview(data)
    parts = []
    for start in range(0, size, BODY_CHUNK):
        piece = view[start:start + BODY_CHUNK]
        parts.append(HEADER.pack(RESPONSE_BODY, 0, 0, len(piece)))
        parts.append(piece)
    return parts


def encode_pairs(pairs):
    """A HELLO payload: every key and value followed by NUL."""
    return b''.join(k.encode('latin-1') + b'\0' + v.encode('latin-1') + b'\0' for k, v in pairs)


def decode_pairs(payload):
    """A key/value list as a dict: one decode, one split, one zip. (The
    worker decodes a REQUEST in Worker.handle.)"""
    fields = iter(payload.decode('latin-1').split('\0'))
    return dict(zip(fields, fields))


class Connection:
    """One socket to Caddy, owned by one request thread."""

    def __init__(self, sock):
        self.sock = sock
        # Received and not yet read: buf from pos on. One recv usually
        # brings a whole REQUEST, and a buffer of our own costs less per
        # frame than a BufferedReader over socket.SocketIO, whose readinto
        # is Python code.
        self.buf = b''
        self.pos = 0

    def read_frame(self):
        """The next frame as (kind, flags, payload), for the frames whose
        header bytes 2-3 are reserved: all but REQUEST (read_request)."""
        kind, flags, reserved, payload = self._read()
        if reserved:
            raise ProtocolError('frame 0x%02x: reserved header bytes are 0x%04x, not zero' % (kind, reserved))
        return kind, flags, payload

    def read_request(self):
        """The REQUEST that starts an exchange, as (flags, application
        index, payload)."""
        kind, flags, app, payload = self._read()
        if kind != REQUEST:
            if kind == CANCEL and not app:
                # For the exchange that just ended: it crossed the last frame.
                return self.read_request()
            raise ProtocolError('expected REQUEST, got frame 0x%02x' % kind)
        return flags, app, payload

    def cancelled(self):
        """Whether Caddy has sent CANCEL, the only frame it can send while
        no request body is on its way; reads it if so. Does not wait, but
        costs a system call, so only streamed responses ask, and not at
        every chunk."""
        if self.pos == len(self.buf):
            try:
                data = self.sock.recv(RECV_SIZE, socket.MSG_DONTWAIT)
            except BlockingIOError:
                return False
            if not data:
                # Closed: the next read says so.
                return False
            self.buf, self.pos = data, 0
        kind, flags, payload = self.read_frame()
        if kind != CANCEL:
            raise ProtocolError('unexpected frame 0x%02x during the response' % kind)
        return True

    def _read(self):
        """The next frame as (kind, flags, bytes 2-3 of the header, payload)."""
        buf, start = self.buf, self.pos
        if start == len(buf):
            # Between frames, as a REQUEST usually finds it.
            buf = self.buf = self.sock.recv(RECV_SIZE)
            start = self.pos = 0
            if not buf:
                raise ConnectionLost()
        if len(buf) - start < HEADER_SIZE:
            if not self._fill(HEADER_SIZE):
                raise ProtocolError('connection closed inside a frame header')
            buf, start = self.buf, 0
        kind, flags, app, size = HEADER.unpack_from(buf, start)
        if size > MAX_PAYLOAD:
            raise ProtocolError('bad frame header %r: payload of %d bytes exceeds %d'
                                % (buf[start:start + HEADER_SIZE], size, MAX_PAYLOAD))
        start += HEADER_SIZE
        end = start + size
        if end <= len(buf):
            self.pos = end
            return kind, flags, app, buf[start:end]
        # The rest of a payload that did not come whole is received
        # straight into a bytes object of its own, and nothing after it:
        # a large body frame is copied once more, not from buffer to buffer.
        self.buf, self.pos = b'', 0
        parts = [memoryview(buf)[start:]]
        missing = size - len(parts[0])
        while missing:
            data = self.sock.recv(missing, socket.MSG_WAITALL)
            if not data:
                raise ProtocolError('connection closed inside a frame of type 0x%02x' % kind)
            parts.append(data)
            missing -= len(data)
        return kind, flags, app, b''.join(parts)

    def _fill(self, need):
        """Receive until the buffer holds need bytes from pos (which becomes
        0). False if Caddy closed the connection first."""
        chunks = [self.buf[self.pos:]]
        have = len(chunks[0])
        while have < need:
            data = self.sock.recv(RECV_SIZE)
            if not data:
                break
            chunks.append(data)
            have += len(data)
        self.buf = b''.join(chunks)
        self.pos = 0
        return have >= need

    def send(self, data):
        try:
            self.sock.sendall(data)
        except OSError as exc:
            raise ConnectionLost() from exc

    def send_parts(self, parts):
        """Send several buffers with as few system calls as possible
        (scatter/gather; at most IOV_MAX_SAFE buffers per call)."""
        try:
            for start in range(0, len(parts), IOV_MAX_SAFE):
                batch = parts[start:start + IOV_MAX_SAFE]
                sent = self.sock.sendmsg(batch)
                if sent < sum(map(len, batch)):
                    # A signal can interrupt a large send part way.
                    self.sock.sendall(b''.join(batch)[sent:])
        except OSError as exc:
            raise ConnectionLost() from exc

    def close(self):
        self.sock.close()

    def send_with_fd(self, data, fd):
        try:
            sent = socket.send_fds(self.sock, [data], [fd])
            if sent < len(data):
                self.sock.sendall(data[sent:])
        except OSError as exc:
            raise ConnectionLost() from exc
