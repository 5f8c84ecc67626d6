package caddywsgi

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	dto "github.com/prometheus/client_model/go"

	"github.com/caddy-wsgi/caddy-wsgi/pool"
	"github.com/caddy-wsgi/caddy-wsgi/protocol"
)

// helloResponse is what the worker sends for bench/apps/hello.py
// (PROTOCOL.md §11): one write of three frames.
var helloResponse = func() []byte {
	b := protocol.AppendFrame(nil, protocol.ResponseHead, 0,
		[]byte("200 OK\x00Content-Type\x00text/plain\x00Content-Length\x0013"))
	b = protocol.AppendFrame(b, protocol.ResponseBody, 0, []byte("Hello, world!"))
	return protocol.AppendFrame(b, protocol.ResponseEnd, 0, nil)
}()

func TestFakeWorkerHello(t *testing.T) {
	// From the worker's goroutine, which the race detector does not know
	// the socket orders.
	environs := make(chan map[string]string, 1)
	w := newFakeWorker(t, func(x *fakeExchange) {
		environs <- x.environ()
		x.out = append(x.out, helloResponse...)
	})
	r := httptest.NewRequest("GET", "http://localhost:8080/a%20b?q=1", nil)
	r.Header.Set("X-Forwarded-For", "a")
	r.Header.Add("X-Forwarded-For", "b")
	rec, err, aborted := w.do(r)
	if err != nil || aborted || rec.status != 200 || string(rec.body) != "Hello, world!" {
		t.Fatalf("got %d %q, %v, aborted %v", rec.status, rec.body, err, aborted)
	}
	if got := rec.header.Get("Content-Type"); got != "text/plain" {
		t.Errorf("Content-Type %q", got)
	}
	environ := <-environs
	// Every fixed value (a REQUEST carries them by position), and pairs.
	for k, v := range map[string]string{"REQUEST_METHOD": "GET", "SCRIPT_NAME": "", "PATH_INFO": "/a b",
		"QUERY_STRING": "q=1", "REQUEST_URI": "http://localhost:8080/a%20b?q=1", "SERVER_NAME": "localhost",
		"SERVER_PORT": "8080", "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "192.0.2.1", "REMOTE_PORT": "1234",
		"wsgi.url_scheme": "http", "HTTP_HOST": "localhost:8080", "HTTP_X_FORWARDED_FOR": "a, b"} {
		if environ[k] != v {
			t.Errorf("%s = %q, want %q", k, environ[k], v)
		}
	}
	if o := w.outcome(); o != pool.Reusable {
		t.Fatalf("outcome %d, want Reusable", o)
	}
}

// TestFakeWorkerViolations: a worker that breaks the protocol gets its
// connection closed (its process recycled, OutOfStep), or, dead, is left to
// the pool (WorkerGone); the client gets a 502, or a response broken off if
// it had started.
func TestFakeWorkerViolations(t *testing.T) {
	head := func(x *fakeExchange) { x.head("200 OK", "Content-Type", "text/plain") }
	for _, c := range []struct {
		name    string
		app     func(x *fakeExchange)
		status  int // 0: broken off
		outcome pool.Outcome
		log     string
	}{
		{"body before head", func(x *fakeExchange) {
			x.frame(protocol.ResponseBody, 0, []byte("x"))
		}, 502, pool.OutOfStep, "RESPONSE_BODY before RESPONSE_HEAD"},
		{"second head", func(x *fakeExchange) {
			head(x)
			head(x)
		}, 502, pool.OutOfStep, "a second RESPONSE_HEAD"},
		{"end before head", func(x *fakeExchange) {
			x.frame(protocol.ResponseEnd, 0, nil)
		}, 502, pool.OutOfStep, "RESPONSE_END before RESPONSE_HEAD"},
		{"app error after head", func(x *fakeExchange) {
			head(x)
			x.frame(protocol.AppError, 0, []byte("boom"))
		}, 502, pool.OutOfStep, "APP_ERROR after RESPONSE_HEAD"},
		{"body more without a body", func(x *fakeExchange) {
			x.frame(protocol.BodyMore, 0, protocol.AppendUint32(nil, 10))
		}, 502, pool.OutOfStep, "BODY_MORE while no request body is paused"},
		{"body more malformed", func(x *fakeExchange) {
			x.frame(protocol.BodyMore, 0, []byte{1, 2, 3})
		}, 502, pool.OutOfStep, "BODY_MORE payload is 3 bytes"},
		{"file without descriptor", func(x *fakeExchange) {
			head(x)
			x.frame(protocol.ResponseFile, 0, make([]byte, 16))
		}, 502, pool.OutOfStep, "RESPONSE_FILE frame arrived without a file descriptor"},
		{"server frame", func(x *fakeExchange) {
			x.frame(protocol.Cancel, 0, nil)
		}, 502, pool.OutOfStep, "unexpected CANCEL frame"},
		{"unknown frame type", func(x *fakeExchange) {
			x.out = append(x.out, 0x15, 0, 0, 0, 0, 0, 0, 0)
		}, 502, pool.OutOfStep, "unknown frame type 0x15"},
		{"violation after the head was sent", func(x *fakeExchange) {
			head(x)
			x.frame(protocol.ResponseBody, 0, []byte("partial"))
			x.frame(protocol.AppError, 0, []byte("boom"))
		}, 0, pool.OutOfStep, "APP_ERROR after RESPONSE_HEAD"},
		{"worker dies", func(x *fakeExchange) {
			head(x)
			x.send()
			x.w.peer.CloseWrite()
		}, 502, pool.WorkerGone, "EOF"},
		{"worker dies inside a frame", func(x *fakeExchange) {
			x.out = append(x.out, byte(protocol.ResponseHead), 0, 0, 0, 0, 0, 0, 9, '2')
			x.send()
			x.w.peer.CloseWrite()
		}, 502, pool.WorkerGone, "unexpected EOF"},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := newFakeWorker(t, c.app)
			// A violation that goes unnoticed fails the test at once, not
			// when it times out.
			w.h.requestTimeout = 5 * time.Second
			rec, err, aborted := w.do(httptest.NewRequest("GET", "/", nil))
			if c.status == 0 {
				if !aborted || rec.status != 200 {
					t.Fatalf("got %d, %v, aborted %v; want a response broken off", rec.status, err, aborted)
				}
			} else if aborted || status(err) != c.status || rec.status != 0 || len(rec.header) != 0 {
				t.Fatalf("got %d %v, %v, aborted %v; want %d", rec.status, rec.header, err, aborted, c.status)
			}
			if o := w.outcome(); o != c.outcome {
				t.Fatalf("outcome %d, want %d", o, c.outcome)
			}
			if w.logs.FilterMessage("worker failed while handling the request").FilterFieldKey("error").Len() != 1 ||
				!strings.Contains(w.logs.All()[len(w.logs.All())-1].ContextMap()["error"].(string), c.log) {
				t.Fatalf("logs %v, want the failure with %q", w.logs.All(), c.log)
			}
		})
	}
}

// TestFakeWorkerBody: a body over the first window is paused, and streamed
// on the worker's BODY_MORE; asking for more once it has ended breaks the
// protocol.
func TestFakeWorkerBody(t *testing.T) {
	body := strings.Repeat("b", protocol.BodyChunk+1000)
	w := newFakeWorker(t, func(x *fakeExchange) {
		if string(x.body) == "a=1" {
			return // the second request: it never gets here
		}
		got := string(x.body)
		if len(got) != protocol.BodyChunk || !x.paused {
			t.Errorf("first window of %d bytes, paused %v", len(got), x.paused)
		}
		x.frame(protocol.BodyMore, 0, protocol.AppendUint32(nil, 1<<20))
		for f := x.next(); f.Type != protocol.BodyEnd; f = x.next() {
			if f.Type != protocol.Body {
				t.Errorf("%s in the body", f.Type)
				return
			}
			got += string(f.Payload)
		}
		x.head("200 OK")
		x.frame(protocol.ResponseBody, 0, []byte(strconv.Itoa(len(got))))
		x.frame(protocol.ResponseEnd, 0, nil)
		// The body has ended: asking for more is a violation.
		x.frame(protocol.BodyMore, 0, protocol.AppendUint32(nil, 10))
	})
	w.h.requestTimeout = 5 * time.Second
	rec, err, _ := w.do(httptest.NewRequest("POST", "/", strings.NewReader(body)))
	if err != nil || string(rec.body) != strconv.Itoa(len(body)) {
		t.Fatalf("got %q, %v; want the body's length", rec.body, err)
	}
	if o := w.outcome(); o != pool.Reusable {
		t.Fatalf("outcome %d, want Reusable", o)
	}
	// The stray BODY_MORE is now what the next exchange reads first.
	_, err, _ = w.do(httptest.NewRequest("POST", "/", strings.NewReader("a=1")))
	if status(err) != http.StatusBadGateway || !strings.Contains(err.Error(), "BODY_MORE while no request body is paused") {
		t.Fatalf("got %v, want a 502 for BODY_MORE after the body", err)
	}
	if o := w.outcome(); o != pool.OutOfStep {
		t.Fatalf("outcome %d, want OutOfStep", o)
	}
}

// TestFakeWorkerRequestTimeout: a worker that does not answer within
// request_timeout gets a 504, and its process is recycled.
func TestFakeWorkerRequestTimeout(t *testing.T) {
	unblock := make(chan struct{})
	w := newFakeWorker(t, func(x *fakeExchange) { <-unblock })
	defer close(unblock)
	w.h.requestTimeout = 20 * time.Millisecond
	_, err, _ := w.do(httptest.NewRequest("GET", "/", nil))
	if status(err) != http.StatusGatewayTimeout {
		t.Fatalf("got %v, want a 504", err)
	}
	if o := w.outcome(); o != pool.TimedOut {
		t.Fatalf("outcome %d, want TimedOut", o)
	}
}

// TestFakeWorkerCancel: a client that goes away while the application
// works gets nothing; the worker is sent CANCEL, the rest of the exchange is
// drained in the background, and the request counts as a 499 in the
// metrics. What the worker sends while draining decides whether the
// connection is reused.
func TestFakeWorkerCancel(t *testing.T) {
	for _, c := range []struct {
		name    string
		after   func(x *fakeExchange) // what the worker sends after CANCEL
		outcome pool.Outcome
	}{
		{"ended", func(x *fakeExchange) {
			x.frame(protocol.Log, protocol.LevelInfo, []byte("closing"))
			x.frame(protocol.ResponseEnd, protocol.FlagAborted, nil)
		}, pool.Reusable},
		{"app error", func(x *fakeExchange) {
			x.frame(protocol.AppError, 0, []byte("boom"))
		}, pool.Reusable},
		{"violation while draining", func(x *fakeExchange) {
			x.frame(protocol.Cancel, 0, nil)
		}, pool.OutOfStep},
		{"dies while draining", func(x *fakeExchange) {
			x.send()
			x.w.peer.CloseWrite()
		}, pool.WorkerGone},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			w := newFakeWorker(t, func(x *fakeExchange) {
				cancel() // the client goes away while the application works
				if f := x.next(); f.Type != protocol.Cancel {
					t.Errorf("the worker got %s, want CANCEL", f.Type)
				}
				c.after(x)
			})
			rec, err, aborted := w.do(httptest.NewRequest("GET", "/", nil).WithContext(ctx))
			if !aborted || err != nil || rec.status != 499 || len(rec.body) != 0 {
				t.Fatalf("got %d %q, %v, aborted %v; want nothing sent, 499 for the log", rec.status, rec.body, err, aborted)
			}
			if o := w.outcome(); o != c.outcome {
				t.Fatalf("outcome %d, want %d", o, c.outcome)
			}
			if n := counterValue(t, w.run.metrics, "499"); n != 1 {
				t.Fatalf("requests_total{code=499} = %v, want 1", n)
			}
			if c.name == "ended" && w.logs.FilterMessage("closing").Len() != 1 {
				t.Fatalf("the LOG sent while draining was not logged: %v", w.logs.All())
			}
		})
	}
}

// counterValue reads requests_total for code.
func counterValue(t *testing.T, m *poolMetrics, code string) float64 {
	var d dto.Metric
	if err := m.requests.WithLabelValues(code).Write(&d); err != nil {
		t.Fatal(err)
	}
	return d.GetCounter().GetValue()
}

// TestFakeWorkerUnencodableRequests: a request the protocol cannot carry is
// answered without taking a worker thread.
func TestFakeWorkerUnencodableRequests(t *testing.T) {
	w := newFakeWorker(t, func(x *fakeExchange) {
		t.Errorf("the worker got a request")
	})
	nul := httptest.NewRequest("GET", "/a%00b", nil)
	if _, err, _ := w.do(nul); status(err) != http.StatusBadRequest {
		t.Errorf("a NUL in PATH_INFO: %v, want a 400", err)
	}
	huge := httptest.NewRequest("GET", "/", nil)
	huge.Header.Set("X-Huge", strings.Repeat("x", protocol.MaxPayload))
	if _, err, _ := w.do(huge); status(err) != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("a request head over the maximum payload: %v, want a 431", err)
	}
}

// BenchmarkExchangeHello is one hello-world request through the handler,
// from its request encoding to the end of the response, metrics included,
// with a fake worker that answers with prepared bytes: the handler's own
// cost, without the pool's dispatch (see pool's BenchmarkHelloRoundTrip) or
// net/http. Each request gets what Caddy's server gives it (a context with
// a replacer, variables and extra log fields), which costs 3 of the
// allocations per op; with an access log, the handler adds its wsgi_*
// fields to it.
func BenchmarkExchangeHello(b *testing.B) {
	for _, accessLog := range []bool{false, true} {
		b.Run(fmt.Sprintf("access_log=%v", accessLog), func(b *testing.B) {
			w := newFakeWorker(b, func(x *fakeExchange) { x.out = append(x.out, helloResponse...) })
			w.h.accessLog = accessLog
			r := httptest.NewRequest("GET", "http://localhost:8080/", nil)
			r.Header.Set("User-Agent", "wrk")
			r.Header.Set("Accept", "*/*")
			base, cancel := context.WithCancel(context.Background())
			defer cancel()
			base = context.WithValue(base, caddy.ReplacerCtxKey, caddy.NewReplacer())
			base = context.WithValue(base, caddyhttp.VarsCtxKey, map[string]any{caddyhttp.ClientIPVarKey: "192.0.2.1"})
			rec := newRecorder()
			b.ReportAllocs()
			for b.Loop() {
				rec.reset()
				req := r.WithContext(context.WithValue(base, caddyhttp.ExtraLogFieldsCtxKey, new(caddyhttp.ExtraLogFields)))
				if err := w.h.serve(rec, req, "", "/", w.acquire); err != nil || rec.status != 200 {
					b.Fatal(rec.status, err)
				}
				<-w.outcomes
			}
		})
	}
}

// BenchmarkEncodeEnviron is the REQUEST frame of BenchmarkExchangeHello's
// request alone: the server's share of the environ's cost.
func BenchmarkEncodeEnviron(b *testing.B) {
	h := &Handler{}
	r := httptest.NewRequest("GET", "http://localhost:8080/", nil)
	r.Header.Set("User-Agent", "wrk")
	r.Header.Set("Accept", "*/*")
	ctx := context.WithValue(context.Background(), caddy.ReplacerCtxKey, caddy.NewReplacer())
	r = r.WithContext(context.WithValue(ctx, caddyhttp.VarsCtxKey, map[string]any{caddyhttp.ClientIPVarKey: "192.0.2.1"}))
	buf := make([]byte, 0, 4096)
	var e protocol.RequestEncoder
	b.ReportAllocs()
	for b.Loop() {
		h.encodeEnviron(&e, buf, r, "", "/", -1)
		if err := e.End(protocol.FlagNoBody); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkServed is the metrics' share of a request: what served records
// once a response has been sent (without an access log, whose fields cost
// what Caddy's ExtraLogFields.Add costs).
func BenchmarkServed(b *testing.B) {
	w := newFakeWorker(b, nil)
	r := httptest.NewRequest("GET", "/", nil)
	ex := &exchange{h: w.h, pool: w, w: newRecorder(), r: r, c: w.conn, head: headSent, status: 200}
	handed := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		ex.served(w.run, 100*time.Microsecond, handed, nil)
	}
}
