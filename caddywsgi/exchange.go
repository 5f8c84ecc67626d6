package caddywsgi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"golang.org/x/net/http/httpguts"

	"github.com/caddy-wsgi/caddy-wsgi/pool"
	"github.com/caddy-wsgi/caddy-wsgi/protocol"
)

// Pooled buffers: REQUEST frames, and the first window of request bodies.
var (
	framePool = sync.Pool{New: func() any { b := make([]byte, 0, 8<<10); return &b }}
	// One byte over a chunk, to tell a chunked body of exactly one chunk
	// from a longer one.
	bodyPool = sync.Pool{New: func() any { b := make([]byte, protocol.BodyChunk+1); return &b }}
)

// ServeHTTP sends the request to an idle worker thread and relays its
// response. A request not under the mount point goes on to the routes after
// the handler, as Apache passes a URL that no WSGIScriptAlias maps on.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	scriptName, pathInfo, ok := h.splitPath(r.URL.Path)
	if !ok {
		return next.ServeHTTP(w, r)
	}
	return h.serve(w, r, scriptName, pathInfo, h.acquire)
}

// acquireFunc writes a request's frames to a worker thread and returns the
// connection, with the group run it belongs to and what takes it back.
type acquireFunc func(ctx context.Context, frames []byte) (*groupRun, releaser, *pool.Conn, error)

// releaser takes a connection back when its exchange ends: its pool, or a
// test's fake worker.
type releaser interface {
	Release(c *pool.Conn, outcome pool.Outcome)
}

// serve is ServeHTTP for a request under the mount point, with the worker
// thread from acquire.
func (h *Handler) serve(w http.ResponseWriter, r *http.Request, scriptName, pathInfo string, acquire acquireFunc) error {
	// Read the first window of the body before taking a worker thread, so a
	// slow client uploading a form does not hold one.
	var body []byte
	rest := false
	contentLength := int64(-1)
	if r.Header.Get("Content-Length") != "" {
		contentLength = r.ContentLength
	}
	if hasBody(r) {
		bp := bodyPool.Get().(*[]byte)
		defer bodyPool.Put(bp)
		var err error
		if body, rest, err = readFirstWindow(r, *bp); err != nil {
			return err
		}
		if contentLength < 0 && !rest {
			// A chunked body that fit in the window gets its length, which
			// frameworks such as Django need to read it at all.
			contentLength = int64(len(body))
		}
	}

	fp := framePool.Get().(*[]byte)
	defer framePool.Put(fp)
	var enc protocol.RequestEncoder
	h.encodeEnviron(&enc, *fp, r, scriptName, pathInfo, contentLength)
	var flags uint8
	if body == nil {
		flags = protocol.FlagNoBody
	}
	if err := enc.End(flags); err != nil {
		if errors.Is(err, protocol.ErrRequestTooLarge) {
			return caddyhttp.Error(http.StatusRequestHeaderFieldsTooLarge, err)
		}
		return caddyhttp.Error(http.StatusBadRequest, err)
	}
	if body != nil {
		enc.Body(body, rest)
	}
	frames := enc.Bytes()
	*fp = frames

	asked := time.Now()
	run, rel, c, err := acquire(r.Context(), frames)
	handed := time.Now()
	if err != nil {
		if errors.Is(err, pool.ErrGaveUp) {
			return h.gaveUp(r)
		}
		if errors.Is(err, context.Canceled) {
			h.logger.Debug("the client went away while its request waited for a worker thread; nothing is sent",
				zap.String("method", r.Method), zap.String("uri", r.RequestURI))
			clientGone(w)
		}
		// Overloaded, or restarting: worth trying again shortly.
		w.Header().Set("Retry-After", "1")
		return caddyhttp.Error(http.StatusServiceUnavailable, err)
	}
	ex := &exchange{h: h, pool: rel, w: w, r: r, c: c, declared: -1, bodyRest: rest}
	// Deferred, to account for a response broken off by a panic too, and
	// before release so that it runs after it: the worker's thread goes back
	// to the pool first.
	defer func() { ex.served(run, handed.Sub(asked), handed, err) }()
	defer ex.release()
	if h.requestTimeout > 0 {
		ex.deadline = handed.Add(h.requestTimeout)
		c.SetDeadline(ex.deadline)
	}
	ex.watch(handed)
	err = ex.relay()
	return err
}

// clientGone ends a request whose client went away before its response
// started, as far as Caddy can tell: it closed, or half-closed, its
// connection. It then aborts the handler, so that nothing is written to it:
// a status, even the 499 of Caddy's reverse_proxy, would still reach a client
// that only half-closed. The 499 is for the access log, which records the
// status without it being sent: net/http writes the head only with the
// first body bytes or when the handler returns, and it does neither.
func clientGone(w http.ResponseWriter) {
	clear(w.Header())
	w.WriteHeader(499)
	panic(http.ErrAbortHandler)
}

func hasBody(r *http.Request) bool {
	return r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0
}

// readFirstWindow reads the first window of the body into buf: all of it if
// it fits. rest reports that the body goes on beyond what was read. A body
// without a length ends only where the body reader says io.EOF, which for a
// chunked body means its last chunk arrived: a client that stops sending
// before it gives io.ErrUnexpectedEOF, which io.ReadFull also returns for a
// short body that ended properly, so it cannot tell the two apart.
func readFirstWindow(r *http.Request, buf []byte) (body []byte, rest bool, err error) {
	want := len(buf)
	if r.ContentLength > 0 {
		want = int(min(r.ContentLength, protocol.BodyChunk))
	}
	n := 0
	for n < want && err == nil {
		var m int
		m, err = r.Body.Read(buf[n:want])
		n += m
	}
	switch {
	case r.ContentLength < 0 && err == io.EOF:
		return buf[:n], false, nil
	case n == want:
		return buf[:n], r.ContentLength < 0 || r.ContentLength > int64(want), nil
	}
	var maxErr *http.MaxBytesError
	if errors.As(err, &maxErr) {
		return nil, false, caddyhttp.Error(http.StatusRequestEntityTooLarge, err)
	}
	return nil, false, caddyhttp.Error(http.StatusBadRequest, fmt.Errorf("reading the request body: %w", err))
}

// exchange relays one response from a worker to the client.
type exchange struct {
	h    *Handler
	pool releaser
	w    http.ResponseWriter
	r    *http.Request
	c    *pool.Conn

	head      headState
	sink      sinkState
	unflushed bool // body bytes written since the last flush
	released  bool // the connection is back in the pool, or drain's
	status    int
	headErr   error // why the head is headInvalid
	written   int64
	declared  int64 // Content-Length the application set, or -1
	rc        *http.ResponseController
	outcome   pool.Outcome // how the exchange ended, for pool.Release
	deadline  time.Time    // request_timeout's, or zero
	cut       atomic.Bool  // the server's shutdown broke the exchange off

	bodyRest bool          // the body goes on past the first window
	streamer *bodyStreamer // sends the rest, once the worker asks for it

	// The request context's end wakes relay by moving c's read deadline
	// to the past; watchMu keeps it from doing so once unwatch has run.
	stopWatch func() bool
	watchMu   sync.Mutex
	unwatched bool
}

// headState is where the response's head is.
type headState uint8

const (
	headAwaited headState = iota // no RESPONSE_HEAD yet
	headHeld                     // stored, to go with the first body bytes: a file response may still get a Content-Length
	headInvalid                  // the application's head was invalid (headErr): the answer is a 500
	headSent                     // written to the client
)

// sinkState is whether the worker's body bytes still go to the client.
type sinkState uint8

const (
	sinkOpen       sinkState = iota
	sinkOverLength           // the application wrote past its Content-Length: the rest is dropped
	sinkShortFile            // a file ended before its length: the rest is dropped and the response broken off
	sinkClientGone           // the client is gone: nothing more is written, and the worker is told (cancel)
)

// release returns the connection to the pool, once the body streamer is done
// with it.
func (e *exchange) release() {
	if e.released {
		return
	}
	e.released = true
	e.h.flight.remove(e)
	woken := e.unwatch()
	e.stopStreamer()
	e.returnConn(woken)
}

// returnConn hands the connection back to the pool, with its deadlines
// cleared if relay, drain or the server's shutdown moved them.
func (e *exchange) returnConn(deadlineMoved bool) {
	if deadlineMoved || !e.deadline.IsZero() || e.cut.Load() {
		e.c.SetDeadline(time.Time{})
	}
	e.pool.Release(e.c, e.outcome)
}

// stopStreamer waits for the body streamer, if any, to finish the grant in
// progress: it writes to the worker connection too.
func (e *exchange) stopStreamer() {
	if e.streamer != nil {
		e.streamer.stop()
		if e.streamer.connFailed && e.outcome == pool.Reusable {
			e.outcome = pool.OutOfStep
		}
	}
}

// watch makes the end of the request's context (the client went away:
// HTTP/1.1's background read saw the connection close, HTTP/2 or HTTP/3
// reset the stream) wake relay even while it waits for a worker that sends
// nothing, such as a long poll: the read deadline moves to the past. No
// goroutine runs until then. The server's shutdown wakes it too (inflight).
// The connection records what it serves from began, for the status page and
// stack dumps.
func (e *exchange) watch(began time.Time) {
	e.h.flight.add(e)
	e.c.Serving(pool.Request{Method: e.r.Method, URI: e.r.RequestURI, Began: began})
	e.stopWatch = context.AfterFunc(e.r.Context(), func() {
		e.watchMu.Lock()
		defer e.watchMu.Unlock()
		if !e.unwatched {
			e.c.SetReadDeadline(time.Unix(1, 0))
		}
	})
}

// unwatch stops watch's wake-up, and reports whether it moved the read
// deadline.
func (e *exchange) unwatch() (woken bool) {
	if e.stopWatch == nil || e.stopWatch() {
		return false
	}
	e.watchMu.Lock()
	defer e.watchMu.Unlock()
	e.unwatched = true
	return true
}

// relay reads the worker's frames until the response ends.
func (e *exchange) relay() error {
	for {
		if e.c.R.Buffered() == 0 {
			// About to wait for the worker: what it sent so far goes to the
			// client now, so streamed chunks are not held back. A client
			// gone is the worker's to know now, not while frames it sent
			// are still to read: they may end the response.
			if e.unflushed {
				e.flush()
			}
			if e.sink == sinkClientGone {
				return e.cancel()
			}
		}
		f, err := e.c.R.Next()
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) && e.r.Context().Err() != nil {
				return e.cancel()
			}
			if e.cut.Load() {
				return e.shutdownCut()
			}
			e.readFailed(err)
			if e.outcome == pool.TimedOut {
				return e.timedOut()
			}
			return e.workerFailed(err)
		}
		switch f.Type {
		case protocol.ResponseHead:
			if e.head != headAwaited {
				return e.workerFailed(fmt.Errorf("%w: a second RESPONSE_HEAD", protocol.ErrProtocol))
			}
			e.head = headHeld
			if e.headErr = e.setHead(f.Payload); e.headErr != nil {
				e.head = headInvalid
				e.log(zapcore.ErrorLevel, "invalid response head from the WSGI application", zap.Error(e.headErr))
			}
		case protocol.ResponseBody:
			if e.head == headAwaited {
				return e.workerFailed(fmt.Errorf("%w: RESPONSE_BODY before RESPONSE_HEAD", protocol.ErrProtocol))
			}
			e.write(f.Payload)
		case protocol.ResponseFile:
			if err := e.sendFile(f.Payload); err != nil {
				if errors.Is(err, errNotRegularFile) {
					return e.failed(http.StatusInternalServerError, err)
				}
				return e.workerFailed(err)
			}
		case protocol.ResponseEnd:
			if e.head == headAwaited {
				return e.workerFailed(fmt.Errorf("%w: RESPONSE_END before RESPONSE_HEAD", protocol.ErrProtocol))
			}
			return e.end(f.Flags&protocol.FlagAborted != 0)
		case protocol.AppError:
			if e.head != headAwaited {
				return e.workerFailed(fmt.Errorf("%w: APP_ERROR after RESPONSE_HEAD", protocol.ErrProtocol))
			}
			if err := e.bodyError(); err != nil {
				return err
			}
			return caddyhttp.Error(http.StatusInternalServerError, fmt.Errorf("WSGI application error: %s", f.Payload))
		case protocol.BodyMore:
			want, err := protocol.ParseBodyMore(f.Payload)
			if err == nil && !e.requestBody(want) {
				err = fmt.Errorf("%w: BODY_MORE while no request body is paused", protocol.ErrProtocol)
			}
			if err != nil {
				return e.workerFailed(err)
			}
		case protocol.Log:
			e.logFrame(f)
		default:
			return e.workerFailed(fmt.Errorf("%w: unexpected %s frame", protocol.ErrProtocol, f.Type))
		}
	}
}

// setHead stores the status and headers; they are sent with the first body
// bytes, so that a file response can still get a Content-Length.
func (e *exchange) setHead(p []byte) error {
	header := e.w.Header()
	// Two allocations whatever the number of headers: the payload as one
	// string, whose parts are the names and values, and the values' slices,
	// cut from one array with no room to grow into each other.
	head := string(p)
	values := make([]string, 0, strings.Count(head, "\x00")/2)
	status, err := protocol.ParseResponseHead(head, func(name, value string) error {
		if !httpguts.ValidHeaderFieldName(name) {
			return fmt.Errorf("invalid response header name %q", name)
		}
		if !httpguts.ValidHeaderFieldValue(value) {
			return fmt.Errorf("invalid value for response header %q: %q", name, value)
		}
		key := textproto.CanonicalMIMEHeaderKey(name)
		switch key {
		case "Connection", "Keep-Alive", "Proxy-Connection", "Transfer-Encoding", "Upgrade", "Trailer", "Te":
			// Hop-by-hop: PEP 3333 forbids them and they are Caddy's business.
			return nil
		case "Content-Length":
			n, err := strconv.ParseInt(value, 10, 64)
			if err != nil || n < 0 {
				return fmt.Errorf("invalid Content-Length %q", value)
			}
			e.declared = n
		}
		if vs, ok := header[key]; ok {
			header[key] = append(vs, value)
			return nil
		}
		values = append(values, value)
		header[key] = values[len(values)-1 : len(values) : len(values)]
		return nil
	})
	if err != nil {
		for k := range header {
			delete(header, k)
		}
		return err
	}
	e.status = status
	return nil
}

func (e *exchange) writeHeader() {
	if e.head != headSent {
		e.head = headSent
		e.w.WriteHeader(e.status)
	}
}

func (e *exchange) write(p []byte) {
	if e.head == headInvalid || e.sink != sinkOpen {
		return
	}
	if e.declared >= 0 && e.written+int64(len(p)) > e.declared {
		// Truncate to Content-Length, as mod_wsgi does.
		p = p[:e.declared-e.written]
		e.sink = sinkOverLength
		e.log(zapcore.WarnLevel, "the WSGI application sent more than its Content-Length; the response was truncated",
			zap.Int64("content_length", e.declared))
	}
	e.writeHeader()
	n, err := e.w.Write(p)
	e.written += int64(n)
	e.unflushed = true
	if err != nil && !errors.Is(err, http.ErrBodyNotAllowed) {
		e.sink = sinkClientGone
	}
}

func (e *exchange) flush() {
	e.unflushed = false
	if e.sink == sinkClientGone || e.head != headSent {
		return
	}
	if e.rc == nil {
		e.rc = http.NewResponseController(e.w)
	}
	if err := e.rc.Flush(); err != nil {
		e.sink = sinkClientGone
	}
}

// errNotRegularFile is a RESPONSE_FILE descriptor that is not a regular
// file: reading a pipe, socket, device or eventfd can block for as long as
// the worker likes, so Caddy refuses it.
var errNotRegularFile = fmt.Errorf("%w: the wsgi.file_wrapper descriptor is not a regular file", protocol.ErrProtocol)

// sendFile sends a file the worker passed by descriptor (wsgi.file_wrapper),
// with sendfile where the connection allows it.
func (e *exchange) sendFile(payload []byte) error {
	fd, err := e.c.R.TakeFD()
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(fd), "wsgi.file_wrapper")
	defer f.Close()
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		return fmt.Errorf("%w: fstat: %v", errNotRegularFile, err)
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFREG {
		return fmt.Errorf("%w (it is a %s)", errNotRegularFile, fileType(st.Mode))
	}
	rng, err := protocol.ParseFileRange(payload)
	if err != nil {
		return err
	}
	switch {
	case e.head == headAwaited:
		return fmt.Errorf("%w: RESPONSE_FILE before RESPONSE_HEAD", protocol.ErrProtocol)
	case e.head == headInvalid || e.sink != sinkOpen:
		return nil
	}
	n := rng.Length
	if e.declared >= 0 {
		n = min(n, e.declared-e.written)
	} else if e.head != headSent {
		e.w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
		e.declared = n
	}
	if _, err := f.Seek(rng.Offset, io.SeekStart); err != nil {
		e.sink = sinkShortFile
		e.log(zapcore.ErrorLevel, "cannot seek in the wsgi.file_wrapper file", zap.Error(err))
		return nil
	}
	e.writeHeader()
	copied, err := io.Copy(e.w, io.LimitReader(f, n))
	e.written += copied
	if copied < n {
		if err == nil {
			e.sink = sinkShortFile
			e.log(zapcore.ErrorLevel, "the wsgi.file_wrapper file ended before the response did",
				zap.Int64("expected", n), zap.Int64("sent", copied))
		} else {
			e.sink = sinkClientGone
		}
	}
	return nil
}

// fileType names the type of file of a mode that is not a regular file's.
func fileType(mode uint32) string {
	switch mode & syscall.S_IFMT {
	case syscall.S_IFIFO:
		return "pipe or FIFO"
	case syscall.S_IFSOCK:
		return "socket"
	case syscall.S_IFCHR:
		return "character device"
	case syscall.S_IFBLK:
		return "block device"
	case syscall.S_IFDIR:
		return "directory"
	}
	return "descriptor of no file type, such as an eventfd"
}

// end finishes the response; an aborted or short one is broken off, so the
// client cannot take it for complete.
func (e *exchange) end(aborted bool) error {
	switch {
	case e.head == headInvalid:
		return caddyhttp.Error(http.StatusInternalServerError, e.headErr)
	case e.sink == sinkClientGone:
		return nil
	case e.sink == sinkShortFile:
		aborted = true
	case !aborted && e.declared >= 0 && e.written < e.declared && e.r.Method != http.MethodHead:
		e.log(zapcore.ErrorLevel, "the WSGI application sent less than its Content-Length; aborting the response",
			zap.Int64("content_length", e.declared), zap.Int64("sent", e.written))
		aborted = true
	}
	if aborted && e.head != headSent {
		// Nothing reached the client yet: a plain 500 says more than a reset.
		clear(e.w.Header())
		return caddyhttp.Error(http.StatusInternalServerError, errors.New("the WSGI application failed after start_response"))
	}
	if aborted {
		e.abort()
	}
	e.writeHeader()
	return nil
}

// abort breaks off a response that has started: HTTP/1.1 closes the
// connection without the final chunk, HTTP/2 and HTTP/3 reset the stream.
func (e *exchange) abort() {
	e.flush()
	e.release()
	panic(http.ErrAbortHandler)
}

// readFailed records why reading the worker's frames failed, and logs it.
func (e *exchange) readFailed(err error) {
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		// The worker's thread is still busy with the request.
		e.outcome = pool.TimedOut
		e.log(zapcore.ErrorLevel, "request_timeout passed; recycling the worker process",
			zap.Duration("request_timeout", e.h.requestTimeout))
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET):
		// The worker died (killed, or crashed): its exit is the pool's to
		// report, not a fault of this connection.
		e.outcome = pool.WorkerGone
	}
}

// workerFailed answers a request whose worker died or broke the protocol.
func (e *exchange) workerFailed(err error) error {
	return e.failed(http.StatusBadGateway, err)
}

// failed answers a request whose worker failed with status, or breaks off
// the response if it has started.
func (e *exchange) failed(status int, err error) error {
	e.fault(err)
	if e.head == headSent {
		e.abort()
	}
	clear(e.w.Header())
	return caddyhttp.Error(status, fmt.Errorf("WSGI worker pid %d: %w", e.c.PID(), err))
}

// fault records and logs a worker that died or broke the protocol
// mid-request. The connection is out of step from then on, if the worker
// lives.
func (e *exchange) fault(err error) {
	if e.outcome == pool.Reusable {
		e.outcome = pool.OutOfStep
	}
	e.log(zapcore.ErrorLevel, "worker failed while handling the request", zap.Error(err))
}

// timedOut answers a request that ran past request_timeout: 504, or a broken
// response if it had started. Its thread is still busy with it, so the
// process is recycled.
func (e *exchange) timedOut() error {
	if e.head == headSent {
		e.abort()
	}
	clear(e.w.Header())
	return caddyhttp.Error(http.StatusGatewayTimeout, fmt.Errorf("the WSGI application did not answer within request_timeout (%s)", e.h.requestTimeout))
}

// cancel tells the worker that the client is gone, so that the application
// stops (its iterable is closed, its next write raises) instead of running on
// for no one, and hands the rest of the exchange to drain: the handler
// returns at once, and neither Caddy's shutdown nor a reload waits for the
// application.
func (e *exchange) cancel() error {
	e.released = true // drain's from now on
	e.h.flight.remove(e)
	woken := e.unwatch()
	e.stopStreamer()
	if e.outcome == pool.Reusable {
		if _, err := e.c.Write(cancelFrame); err != nil {
			e.outcome = pool.OutOfStep
		}
	}
	if e.outcome != pool.Reusable {
		e.returnConn(woken)
	} else {
		if woken {
			e.c.SetReadDeadline(e.deadline)
		}
		e.c.ClientGone()
		go e.drain()
	}
	e.sink = sinkClientGone
	e.log(zapcore.DebugLevel, "the client went away; cancelling the request")
	if e.head != headSent {
		clientGone(e.w)
	}
	return nil
}

var cancelFrame = protocol.AppendCancel(nil)

// drain reads the worker's frames to the end of a cancelled exchange, so that
// the connection stays in step and serves the next request. It logs what the
// application logs meanwhile (its close(), say), closes the descriptors the
// worker passes, and is bounded by request_timeout, and by the pool's
// graceful_timeout when it closes.
func (e *exchange) drain() {
	defer e.returnConn(false)
	for {
		f, err := e.c.R.Next()
		if err != nil {
			e.readFailed(err)
			if e.outcome != pool.TimedOut {
				e.fault(err)
			}
			return
		}
		switch f.Type {
		case protocol.ResponseEnd, protocol.AppError:
			return
		case protocol.ResponseFile:
			fd, err := e.c.R.TakeFD()
			if err != nil {
				e.fault(err)
				return
			}
			syscall.Close(fd)
		case protocol.Log:
			e.logFrame(f)
		case protocol.ResponseHead, protocol.ResponseBody, protocol.BodyMore:
			// For no one: the client is gone, and CANCEL ended the request
			// body.
		default:
			e.fault(fmt.Errorf("%w: unexpected %s frame", protocol.ErrProtocol, f.Type))
			return
		}
	}
}

// bodyError turns a failure to read an oversized request body into a 413.
func (e *exchange) bodyError() error {
	if e.streamer == nil {
		return nil
	}
	e.streamer.stop()
	var maxErr *http.MaxBytesError
	if errors.As(e.streamer.err, &maxErr) {
		return caddyhttp.Error(http.StatusRequestEntityTooLarge, maxErr)
	}
	return nil
}

func (e *exchange) log(level zapcore.Level, msg string, fields ...zap.Field) {
	if ce := e.h.logger.Check(level, msg); ce != nil {
		ce.Write(append(fields, zap.Int("pid", e.c.PID()), zap.String("method", e.r.Method),
			zap.String("uri", e.r.RequestURI))...)
	}
}

// logFrame logs what the application wrote: a record of Python's logging
// at its level, with its logger's name; other output at its stream's level.
func (e *exchange) logFrame(f protocol.Frame) {
	level, logger, text := protocol.ParseLog(f.Flags, f.Payload)
	if logger == nil {
		e.log(pool.LogLevel(level), string(text))
		return
	}
	e.log(pool.LogLevel(level), string(text), zap.String(pool.PythonLoggerField, string(logger)))
}
