"""PEP 3333 request handling: one Worker per connection, one request at a time.

Like wsgiref.handlers, but speaking the caddy-wsgi wire format instead of
HTTP. The hot path is Worker.serve -> Worker.handle -> Request.send.
"""

import logging
import os
import stat
import sys
import threading
import traceback
import weakref
from itertools import chain
from time import monotonic

from . import wire

# mod_wsgi's environ keys that do not change from request to request are added
# by the caller; these are the PEP 3333 ones.
WSGI_VERSION = (1, 0)

# A list response up to this size is copied into the one buffer that ends
# the response, which costs less than sending it as a buffer of its own.
SMALL_BODY = 4096

# Seconds between two looks for a CANCEL while a response streams.
CANCEL_CHECK_INTERVAL = 0.1

# The fields of the shortest REQUEST payload split at NUL: the fixed values,
# and the empty string after the NUL that ends the last one.
REQUEST_MIN_FIELDS = len(wire.REQUEST_KEYS) + 1


class Input:
    """wsgi.input: streams the request body, pulling it from Caddy on demand.

    The body arrives in grants: frames of data ended by BODY_END (no more) or
    BODY_PAUSE (more on request). Only one grant is outstanding at a time, so
    neither side ever holds a large body in memory. A CANCEL (the client is
    gone) ends the body wherever it is.
    """

    __slots__ = ('conn', 'buf', 'state', 'asked')

    DONE, GRANT, PAUSED, TRUNCATED, CANCELLED = range(5)

    def __init__(self, conn, has_body):
        self.conn = conn
        self.buf = b''
        self.state = self.GRANT if has_body else self.DONE
        self.asked = False  # a grant was asked for: past the first window

    def _next_frame(self):
        """Read one frame of the grant in progress."""
        kind, flags, payload = self.conn.read_frame()
        if kind == wire.BODY:
            self.buf = self.buf + payload if self.buf else payload
        elif kind == wire.BODY_PAUSE:
            self.state = self.PAUSED
        elif kind == wire.BODY_END:
            self.state = self.TRUNCATED if flags & wire.FLAG_TRUNCATED else self.DONE
        elif kind == wire.CANCEL:
            self.state = self.CANCELLED
        else:
            raise wire.ProtocolError('unexpected frame 0x%02x inside the request body' % kind)

    def _fill(self, want):
        """Add more body to the buffer. False at the end of the body."""
        if self.state == self.GRANT:
            self._next_frame()
            if self.state == self.GRANT or self.state == self.PAUSED:
                return True
        if self.state == self.PAUSED:
            want = max(wire.BODY_CHUNK, min(want, 16 * wire.BODY_CHUNK))
            self.conn.send(wire.frame(wire.BODY_MORE, wire.BODY_MORE_SIZE.pack(want)))
            self.state = self.GRANT
            self.asked = True
            return True
        # Every read after a failure says so, so that a retry cannot take
        # part of the body for all of it.
        if self.state == self.TRUNCATED:
            raise OSError('request body truncated: the client closed the connection or sent a bad body')
        if self.state == self.CANCELLED:
            raise OSError('request body incomplete: the client disconnected')
        return False

    def read(self, size=-1):
        if size is None or size < 0:
            size = sys.maxsize
        if len(self.buf) >= size:
            data, self.buf = self.buf[:size], self.buf[size:]
            return data
        # Frame by frame into a list, joined once: adding each frame to the
        # buffer would copy all of it again for every frame of a large body.
        parts = [self.buf]
        have = len(self.buf)
        self.buf = b''
        while have < size and self._fill(size - have):
            if self.buf:
                parts.append(self.buf)
                have += len(self.buf)
                self.buf = b''
        data = b''.join(parts)
        if have > size:
            data, self.buf = data[:size], data[size:]
        return data

    def readline(self, size=-1):
        while True:
            end = self.buf.find(b'\n') + 1
            if end or (0 <= size <= len(self.buf)) or not self._fill(wire.BODY_CHUNK):
                break
        if not end:
            end = len(self.buf)
        if 0 <= size < end:
            end = size
        data, self.buf = self.buf[:end], self.buf[end:]
        return data

    def readlines(self, hint=-1):
        lines = []
        total = 0
        for line in self:
            lines.append(line)
            total += len(line)
            if 0 < hint <= total:
                break
        return lines

    def __iter__(self):
        return self

    def __next__(self):
        line = self.readline()
        if not line:
            raise StopIteration
        return line

    def discard(self):
        """Consume what Caddy already sent of a body the application left unread."""
        while self.state == self.GRANT:
            self.buf = b''
            self._next_frame()
        self.buf = b''

    def cancelled(self):
        """Whether Caddy cancelled the exchange (the client is gone), looking
        for a CANCEL without waiting where it can be the next frame: not
        while a grant the worker asked for is on its way, which may wait on
        the client. The rest of the first window, which Caddy sent whole
        with the REQUEST, is read into the buffer first."""
        while self.state == self.GRANT and not self.asked:
            self._next_frame()
        if self.state == self.CANCELLED:
            return True
        if self.state != self.GRANT and self.conn.cancelled():
            if self.state == self.PAUSED:
                self.state = self.CANCELLED
            return True
        return False


def record_level(levelno):
    """The protocol's log level for a level of Python's logging."""
    if levelno >= logging.ERROR:
        return wire.LEVEL_ERROR
    if levelno >= logging.WARNING:
        return wire.LEVEL_WARN
    if levelno >= logging.INFO:
        return wire.LEVEL_INFO
    return wire.LEVEL_DEBUG


def emitted_record(ref, text):
    """The record of Python's logging that a handler is writing as text, if
    it is one: the last record this thread made (ref, its weak reference in
    ThreadOutput.record), while it is being handled, once formatted, if text
    holds its message."""
    record = ref()
    if record is None or type(text) is not str:
        return None
    message = getattr(record, 'message', None)
    if message is None or message not in text:
        return None
    return record


class LogStream:
    """A text stream whose complete lines become LOG frames on one connection.

    Used for wsgi.errors and, in request threads, for sys.stdout and sys.stderr.
    A record of Python's logging written to it is one frame at its own level.
    """

    def __init__(self, conn, level, local):
        self.conn = conn
        self.level = level
        self.local = local
        self.pending = ''

    def write(self, text):
        ref = self.local.record
        if ref is not None:
            record = emitted_record(ref, text)
            if record is not None:
                self.send_record(record, text)
                return len(text)
        if type(text) is not str:
            raise TypeError('write() argument must be str, not %s' % type(text).__name__)
        self.pending += text
        if '\n' in text:
            lines, sep, self.pending = self.pending.rpartition('\n')
            self._send(lines)
        return len(text)

    def writelines(self, lines):
        for line in lines:
            self.write(line)

    def flush(self):
        if self.pending:
            text, self.pending = self.pending, ''
            self._send(text)

    def _send(self, text):
        data = text.encode('utf-8', 'backslashreplace')[:wire.MAX_PAYLOAD]
        self.conn.send(wire.frame(wire.LOG, data, self.level))

    def send_record(self, record, text):
        """Send what a handler wrote for record as one frame, after the
        output before it."""
        self.flush()
        data = (record.name + '\0' + text.removesuffix('\n')).encode('utf-8', 'backslashreplace')
        self.conn.send(wire.frame(wire.LOG, data[:wire.MAX_PAYLOAD], record_level(record.levelno) | wire.FLAG_LOGGER))

    # Enough of the io.TextIOBase interface for logging and print().
    encoding = 'utf-8'
    errors = 'backslashreplace'

    def isatty(self):
        return False

    def writable(self):
        return True


class ThreadRouter:
    """sys.stdout/sys.stderr replacement: a request thread's output goes to its
    request's log, every other thread's to the original stream (which Caddy
    also logs, without a request to tie it to; a record of Python's logging
    as a log record line, which gives it its level)."""

    def __init__(self, original, local, name):
        self.original = original
        self.local = local
        self.name = name

    def _target(self):
        return getattr(self.local, self.name, None) or self.original

    def write(self, text):
        target = self._target()
        if target is not self.original:
            return target.write(text)
        ref = self.local.record
        record = emitted_record(ref, text) if ref is not None else None
        if record is None:
            return self.original.write(text)
        self.original.write(wire.log_record_line(record_level(record.levelno), record.name,
                                                 text.removesuffix('\n')))
        return len(text)

    def writelines(self, lines):
        return self._target().writelines(lines)

    def flush(self):
        return self._target().flush()

    def __getattr__(self, attr):
        return getattr(self.original, attr)


class FileWrapper:
    """wsgi.file_wrapper. Caddy sends a regular file itself (sendfile); other
    file-like objects are iterated in blocks."""

    def __init__(self, filelike, blksize=8192):
        self.filelike = filelike
        self.blksize = blksize
        if hasattr(filelike, 'close'):
            self.close = filelike.close

    def __iter__(self):
        return self

    def __next__(self):
        data = self.filelike.read(self.blksize)
        if data:
            return data
        raise StopIteration

    def file_range(self):
        """(fd, offset, length) if Caddy can send the file itself, else None."""
        try:
            fd = self.filelike.fileno()
            st = os.fstat(fd)
        except (AttributeError, OSError, ValueError):
            return None
        if not stat.S_ISREG(st.st_mode):
            return None
        tell = getattr(self.filelike, 'tell', None)
        offset = tell() if tell is not None else os.lseek(fd, 0, os.SEEK_CUR)
        return fd, offset, max(0, st.st_size - offset)


def encode_head(status, headers):
    """The RESPONSE_HEAD payload, validated the way PEP 3333 asks: strings
    only, latin-1 only, no control characters that could split a response."""
    fields = [status]
    try:
        for name, value in headers:
            fields.append(name)
            fields.append(value)
        text = '\0'.join(fields)
        blob = text.encode('latin-1')
    except (TypeError, ValueError):
        raise bad_head(status, headers) from None
    # Looked for in the str: `b'\r' in blob` would first try b'\r' as an
    # integer, and raise and clear a TypeError every time.
    if text.count('\0') != 2 * len(headers) or '\r' in text or '\n' in text:
        raise bad_head(status, headers)
    if len(blob) > wire.MAX_PAYLOAD:
        raise ValueError('the response head is %d bytes, over the limit of %d' % (len(blob), wire.MAX_PAYLOAD))
    return blob


def bad_head(status, headers):
    """Name precisely what is wrong with a response head (slow path)."""
    if type(status) is not str:
        return TypeError('status must be str, not %s: %r' % (type(status).__name__, status))
    for value, what in [(status, 'status')] + [(h, 'header') for h in headers]:
        if what == 'header':
            if type(value) is not tuple or len(value) != 2:
                return TypeError('response header must be a (name, value) tuple: %r' % (value,))
            for item in value:
                if type(item) is not str:
                    return TypeError('response header %r: names and values must be str, not %s'
                                     % (value, type(item).__name__))
            text = value[0] + value[1]
        else:
            text = value
        try:
            text.encode('latin-1')
        except UnicodeEncodeError:
            return ValueError('%s %r: not encodable as latin-1' % (what, value))
        if '\r' in text or '\n' in text or '\0' in text:
            return ValueError('%s %r contains CR, LF or NUL' % (what, value))
    return ValueError('invalid response head')


class Request:
    """One request/response exchange; start_response and write are bound
    methods of it."""

    __slots__ = ('conn', 'head', 'head_sent', 'pending', 'send_body', 'body', 'cancelled', 'next_check')

    def __init__(self, conn, send_body, body, started):
        self.conn = conn
        self.head = None
        self.head_sent = False
        self.pending = ()  # body frames of a list response, sent by end()
        self.send_body = send_body
        self.body = body
        self.cancelled = False  # Caddy sent CANCEL: the client is gone
        self.next_check = started + CANCEL_CHECK_INTERVAL  # when client_gone looks for a CANCEL

    def start_response(self, status, headers, exc_info=None):
        if exc_info is not None:
            try:
                if self.head_sent:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None
        elif self.head is not None:
            raise AssertionError('start_response() called a second time without exc_info')
        self.head = encode_head(status, headers)
        return self.write

    def _head_frame(self):
        if self.head is None:
            raise AssertionError('the application sent a body without calling start_response()')
        self.head_sent = True
        return wire.frame(wire.RESPONSE_HEAD, self.head)

    def write(self, data):
        """The write() callable returned by start_response: sent at once.
        Once the client is gone it raises OSError, as mod_wsgi's does when
        writing to the client fails."""
        if self.client_gone():
            raise OSError('failed to write the response: the client disconnected')
        self.send_chunk(data)

    def client_gone(self):
        """Whether the client went away: then Caddy cancels the exchange.
        Asked before each chunk of a streamed response, so that an endless
        one stops soon after; it looks on the socket at most every
        CANCEL_CHECK_INTERVAL from the start of the request, which keeps the
        system call off the many responses that frameworks return as
        iterables (Flask's, Django's) and are done sooner, and off a stream
        of many small chunks."""
        if not self.cancelled:
            now = monotonic()
            if now >= self.next_check:
                self.next_check = now + CANCEL_CHECK_INTERVAL
                self.cancelled = self.body.cancelled()
        return self.cancelled

    def send_chunk(self, data):
        if type(data) is not bytes:
            data = as_bytes(data)
        if not self.send_body:
            data = b''
        if len(data) <= SMALL_BODY:
            # One buffer costs less than sendmsg's handling of a list: a
            # stream of small chunks pays it for each one.
            out = wire.frame(wire.RESPONSE_BODY, data) if data else b''
            if not self.head_sent:
                out = self._head_frame() + out
            if out:
                self.conn.send(out)
            return
        parts = [] if self.head_sent else [self._head_frame()]
        parts += wire.body_frames(data)
        self.conn.send_parts(parts)

    def send(self, result, file_wrapper):
        """Send the body the application returned. The caller calls close()
        on it and then end(), so that nothing follows RESPONSE_END."""
        if type(result) is list:
            # Every chunk already exists: the whole response waits for end(),
            # to go out with RESPONSE_END in one write.
            if self.send_body:
                if len(result) == 1 and type(result[0]) is bytes:
                    data = result[0]
                else:
                    data = b''.join(map(as_bytes, result))
                if len(data) <= SMALL_BODY:
                    if data:
                        self.pending = [wire.frame(wire.RESPONSE_BODY, data)]
                else:
                    self.pending = wire.body_frames(data)
            return
        if type(result) is file_wrapper:
            file_range = result.file_range() if self.send_body else None
            if file_range is not None:
                fd, offset, length = file_range
                if not self.head_sent:
                    self.conn.send(self._head_frame())
                # The descriptor goes out with its frame alone: Caddy takes
                # one only with the frame its message starts with.
                self.conn.send_with_fd(wire.frame(wire.RESPONSE_FILE, wire.FILE_RANGE.pack(offset, length)), fd)
                return
            if not self.send_body:
                return
        for data in result:
            # PEP 3333: no head before the first non-empty chunk.
            if data:
                if self.client_gone():
                    return  # the caller closes the iterable
                self.send_chunk(data)
            elif type(data) is not bytes:
                as_bytes(data)

    def end(self):
        if self.cancelled:
            # What the application still had goes to no one; Caddy only
            # reads to the end of the exchange.
            self.conn.send(wire.END_ABORTED)
            return
        parts = [] if self.head_sent else [self._head_frame()]
        parts += self.pending
        parts.append(wire.END_COMPLETE)
        if len(self.pending) <= 1:
            # At most one small body frame: one buffer costs less than
            # sendmsg's handling of a list of them.
            self.conn.send(b''.join(parts))
        else:
            self.conn.send_parts(parts)


def as_bytes(data):
    if type(data) is bytes:
        return data
    raise TypeError('the response body must be bytes, not %s: %.60r' % (type(data).__name__, data))


class Worker:
    """Serves requests from one connection, one at a time, on one thread.

    apps is the process's list of (application, base environ) pairs, in the
    order of the --app arguments: a REQUEST names the one it is for by its
    index in it."""

    def __init__(self, conn, apps, local):
        self.conn = conn
        self.apps = apps
        # For stack reports: the thread that serves, and the environ of
        # the request it serves and when it started, or None between
        # requests.
        self.thread = None
        self.serving = None
        self.errors = LogStream(conn, wire.LEVEL_ERROR, local)
        self.stdout = LogStream(conn, wire.LEVEL_INFO, local)
        self.local = local
        self.no_body = Input(conn, False)

    def serve(self):
        """Handle requests until Caddy closes the connection."""
        # Thread-local: registered from the thread that serves.
        self.local.stdout = self.stdout
        self.local.stderr = self.errors
        self.thread = threading.get_ident()
        read_request = self.conn.read_request
        apps = self.apps
        try:
            while True:
                flags, index, payload = read_request()
                try:
                    app, base_environ = apps[index]
                except IndexError:
                    raise wire.ProtocolError('REQUEST for application %d; applications in this worker: %d'
                                             % (index, len(apps))) from None
                self.handle(app, base_environ, flags, payload)
        except wire.ConnectionLost:
            # Closing our end lets Caddy see that this thread is gone.
            self.conn.close()
        except BaseException:
            # The connection is out of step with Caddy and cannot be trusted:
            # exit, and let Caddy fail the request and start a new process.
            traceback.print_exc(file=sys.__stderr__)
            sys.__stderr__.flush()
            os._exit(70)

    def handle(self, app, base_environ, flags, payload):
        environ = base_environ.copy()
        fields = payload.decode('latin-1').split('\0')
        # Fewer fields would leave fixed keys out of the environ; Caddy never
        # sends such a REQUEST.
        if len(fields) < REQUEST_MIN_FIELDS:
            raise wire.ProtocolError('REQUEST without all of its %d fixed values' % len(wire.REQUEST_KEYS))
        fields = iter(fields)
        # The fixed values, by position. zip takes from REQUEST_KEYS first,
        # so it stops at its end without taking a field more: the pairs
        # start at the next one.
        environ.update(zip(wire.REQUEST_KEYS, fields))
        environ.update(zip(fields, fields))
        # Most requests have no body: they share one exhausted stream.
        body = self.no_body if flags & wire.FLAG_NO_BODY else Input(self.conn, True)
        environ['wsgi.input'] = body
        environ['wsgi.errors'] = self.errors
        started = monotonic()
        self.serving = (environ, started)
        request = Request(self.conn, environ['REQUEST_METHOD'] != 'HEAD', body, started)
        try:
            result = app(environ, request.start_response)
            try:
                request.send(result, FileWrapper)
            finally:
                close = getattr(result, 'close', None)
                if close is not None:
                    close()
            if self.stdout.pending or self.errors.pending:
                self.flush_logs()
            request.end()
        except (wire.ConnectionLost, wire.ProtocolError):
            raise
        except BaseException as exc:
            self.fail(request, exc)
        if body is not self.no_body:
            body.discard()
        self.serving = None

    def flush_logs(self):
        if self.stdout.pending:
            self.stdout.flush()
        if self.errors.pending:
            self.errors.flush()

    def fail(self, request, exc):
        """Report an application error: a 500 if nothing was sent yet, else an
        aborted response. Either way the traceback goes to the log."""
        self.flush_logs()
        text = ''.join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        summary = ''.join(traceback.format_exception_only(type(exc), exc)).strip()
        if request.head_sent:
            message = 'Exception while sending the response (response aborted):\n' + text
            end = wire.END_ABORTED
        else:
            message = 'Exception while handling the request:\n' + text
            end = wire.frame(wire.APP_ERROR, summary.encode('utf-8', 'backslashreplace')[:4096])
        self.conn.send(wire.frame(wire.LOG, message.encode('utf-8', 'backslashreplace')[:wire.MAX_PAYLOAD],
                                  wire.LEVEL_ERROR) + end)


class ThreadOutput(threading.local):
    """Per thread: the streams of the request it serves (Worker.serve sets
    them) and a weak reference to the last record of Python's logging it
    made. The class attributes are the defaults, which are quicker to read
    than a missing attribute."""
    stdout = stderr = record = None


def install_output_routing():
    """Route print() in request threads to the request's log, and let the
    streams tell a record of Python's logging by its level. Returns the
    thread-local that Workers register their streams in."""
    local = ThreadOutput()
    sys.stdout = ThreadRouter(sys.stdout, local, 'stdout')
    sys.stderr = ThreadRouter(sys.stderr, local, 'stderr')
    make_record = logging.getLogRecordFactory()

    def record_factory(*args, **kwargs):
        # A weak reference: the record, and the traceback it may hold, live
        # no longer than the application's logging call (or its handlers)
        # keeps them.
        record = make_record(*args, **kwargs)
        local.record = weakref.ref(record)
        return record

    logging.setLogRecordFactory(record_factory)
    return local
