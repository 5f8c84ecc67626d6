package caddywsgi

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/caddy-wsgi/caddy-wsgi/pool"
	"github.com/caddy-wsgi/caddy-wsgi/protocol"
)

// fakeWorker is one worker thread played by a goroutine on the other end of
// a socket pair: it reads each request as python/caddy_wsgi's worker does
// and answers with whatever frames its app writes, so that the exchange can
// be tested and benchmarked without Python, with frames no real worker
// sends. (python/tests/fakecaddy.py is the same for the other direction.)
// It takes back the connection for the exchange, in place of a pool, and
// tells what outcome the exchange released it with.
type fakeWorker struct {
	tb       testing.TB
	h        *Handler
	run      *groupRun
	conn     *pool.Conn // Caddy's end
	peer     *net.UnixConn
	app      func(x *fakeExchange)
	outcomes chan pool.Outcome
	done     chan struct{}
	logs     *observer.ObservedLogs
}

// fakeExchange is a request as the fake worker's app sees it, and the
// frames it answers with.
type fakeExchange struct {
	w       *fakeWorker
	r       *protocol.Reader
	flags   uint8
	payload []byte // the REQUEST's environ
	body    []byte // the first window
	paused  bool   // the first window ended with BODY_PAUSE
	out     []byte
}

// newFakeWorker starts a fake worker thread running app, and a handler
// whose exchanges go to it.
func newFakeWorker(tb testing.TB, app func(x *fakeExchange)) *fakeWorker {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		tb.Fatal(err)
	}
	ends := [2]*net.UnixConn{}
	for i, fd := range fds {
		f := os.NewFile(uintptr(fd), "fake-worker")
		c, err := net.FileConn(f)
		f.Close()
		if err != nil {
			tb.Fatal(err)
		}
		ends[i] = c.(*net.UnixConn)
	}
	core, logs := observer.New(zapcore.DebugLevel)
	w := &fakeWorker{
		tb:       tb,
		h:        &Handler{logger: zap.New(core), flight: newInflight(time.Second)},
		run:      &groupRun{cfg: pool.Config{Name: "fake"}, metrics: newPoolMetrics("fake")},
		conn:     pool.NewConn(ends[0]),
		peer:     ends[1],
		app:      app,
		outcomes: make(chan pool.Outcome, 1),
		done:     make(chan struct{}),
		logs:     logs,
	}
	go w.serve()
	tb.Cleanup(func() {
		ends[0].Close()
		<-w.done
		ends[1].Close()
	})
	return w
}

// serve reads requests and runs the app for each, until Caddy's end closes.
func (w *fakeWorker) serve() {
	defer close(w.done)
	x := &fakeExchange{w: w, r: protocol.NewReader(w.peer)}
	for {
		f, err := x.r.Next()
		if err != nil {
			return
		}
		if f.Type == protocol.Cancel {
			continue // for an exchange that has ended (PROTOCOL.md §7.8)
		}
		if f.Type != protocol.Request {
			w.tb.Errorf("fake worker: %s where a REQUEST was expected", f.Type)
			return
		}
		x.flags, x.payload = f.Flags, append(x.payload[:0], f.Payload...)
		x.body, x.paused = x.body[:0], false
		for body := f.Flags&protocol.FlagNoBody == 0; body; {
			f := x.next()
			switch f.Type {
			case protocol.Body:
				x.body = append(x.body, f.Payload...)
			case protocol.BodyPause:
				x.paused, body = true, false
			case protocol.BodyEnd:
				body = false
			default:
				w.tb.Errorf("fake worker: %s in the request body", f.Type)
				return
			}
		}
		w.app(x)
		x.send()
	}
}

// Release is the pool's: it records how the exchange ended.
func (w *fakeWorker) Release(c *pool.Conn, outcome pool.Outcome) {
	if c != w.conn {
		w.tb.Errorf("released a connection that is not the fake worker's")
	}
	w.outcomes <- outcome
}

func (w *fakeWorker) acquire(_ context.Context, frames []byte) (*groupRun, releaser, *pool.Conn, error) {
	_, err := w.conn.Write(frames)
	return w.run, w, w.conn, err
}

// outcome waits for the exchange to release the connection.
func (w *fakeWorker) outcome() pool.Outcome {
	select {
	case o := <-w.outcomes:
		return o
	case <-time.After(10 * time.Second):
		w.tb.Fatal("the exchange never released its connection")
		return 0
	}
}

// do sends r through the handler, and returns what the client got, the
// handler's error, and whether it broke the response off (panicked with
// http.ErrAbortHandler).
func (w *fakeWorker) do(r *http.Request) (rec *recorder, err error, aborted bool) {
	rec = newRecorder()
	defer func() {
		if p := recover(); p != nil {
			if p != http.ErrAbortHandler {
				panic(p)
			}
			aborted = true
		}
	}()
	scriptName, pathInfo, _ := w.h.splitPath(r.URL.Path)
	return rec, w.h.serve(rec, r, scriptName, pathInfo, w.acquire), false
}

// status is the status a handler error answers with.
func status(err error) int {
	var he caddyhttp.HandlerError
	if errors.As(err, &he) {
		return he.StatusCode
	}
	return 0
}

// head adds RESPONSE_HEAD: status line, then header names and values.
func (x *fakeExchange) head(status string, headers ...string) {
	p := []byte(status)
	for _, h := range headers {
		p = append(append(p, 0), h...)
	}
	x.frame(protocol.ResponseHead, 0, p)
}

func (x *fakeExchange) frame(t protocol.Type, flags uint8, payload []byte) {
	x.out = protocol.AppendFrame(x.out, t, flags, payload)
}

// send writes the frames added so far.
func (x *fakeExchange) send() {
	if len(x.out) > 0 {
		if _, err := x.w.peer.Write(x.out); err != nil {
			x.w.tb.Errorf("fake worker: %v", err)
		}
		x.out = x.out[:0]
	}
}

// next sends the frames added so far and reads the server's next frame.
func (x *fakeExchange) next() protocol.Frame {
	x.send()
	f, err := x.r.Next()
	if err != nil {
		x.w.tb.Errorf("fake worker: %v", err)
	}
	return f
}

// environ decodes the request's environ.
func (x *fakeExchange) environ() map[string]string {
	m, err := protocol.ParseRequest(x.payload)
	if err != nil {
		x.w.tb.Errorf("fake worker: %v", err)
	}
	return m
}

// recorder is a ResponseWriter that keeps what it is sent, and can be reset
// for the next request without allocating.
type recorder struct {
	header  http.Header
	status  int
	body    []byte
	flushes int
}

func newRecorder() *recorder { return &recorder{header: http.Header{}} }

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
}

func (r *recorder) Write(p []byte) (int, error) {
	r.WriteHeader(http.StatusOK)
	r.body = append(r.body, p...)
	return len(p), nil
}

func (r *recorder) Flush() { r.flushes++ }

func (r *recorder) reset() {
	clear(r.header)
	r.status, r.body, r.flushes = 0, r.body[:0], 0
}
