package pool

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/caddy-wsgi/caddy-wsgi/protocol"
)

// BenchmarkHelloRoundTrip measures one request/response exchange with a
// hello-world application on one worker thread, without HTTP: the cost of
// the protocol and the Python runtime ("held", which also reports the
// worker's CPU time per request), and with the pool's dispatch
// ("dispatched": Acquire and Release around each exchange).
func BenchmarkHelloRoundTrip(b *testing.B) {
	app, _ := filepath.Abs("testdata/hello.py")
	py := os.Getenv("CADDY_WSGI_TEST_PYTHON")
	p, err := New(Config{Apps: []App{{Target: app}}, Python: py, Processes: 1, Threads: 1, User: workerUser()}, zap.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	var e protocol.RequestEncoder
	e.Begin(nil, 0, &protocol.RequestLine{Method: "GET", PathInfo: "/", RequestURI: "/", ServerName: "127.0.0.1",
		ServerPort: "8080", ServerProtocol: "HTTP/1.1", RemoteAddr: "127.0.0.1", RemotePort: "40000", URLScheme: "http"})
	e.Pair("HTTP_HOST", "127.0.0.1:8080")
	if err := e.End(protocol.FlagNoBody); err != nil {
		b.Fatal(err)
	}
	req := e.Bytes()

	b.Run("held", func(b *testing.B) { helloHeld(b, p, req) })
	b.Run("dispatched", func(b *testing.B) { helloDispatched(b, p, req) })
}

// helloHeld sends every request on one connection, held throughout.
func helloHeld(b *testing.B, p *Pool, req []byte) {
	c, _ := p.Acquire(context.Background(), nil)
	before := cpuTicks(b, c.PID())
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := c.Write(req); err != nil {
			b.Fatal(err)
		}
		readResponse(b, c)
	}
	b.StopTimer()
	ticks := cpuTicks(b, c.PID()) - before
	// Linux reports CPU time in clock ticks of 10 ms.
	b.ReportMetric(float64(ticks)*1e7/float64(b.N), "worker-cpu-ns/op")
	p.Release(c, Reusable)
}

// helloDispatched acquires a connection for every request and releases it
// after the response, as the handler does: the pool's own share of the
// hot path.
func helloDispatched(b *testing.B, p *Pool, req []byte) {
	for i := 0; i < b.N; i++ {
		c, err := p.Acquire(context.Background(), req)
		if err != nil {
			b.Fatal(err)
		}
		readResponse(b, c)
		p.Release(c, Reusable)
	}
}

// cpuTicks is a process's user+system CPU time in clock ticks.
func cpuTicks(b *testing.B, pid int) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	fields := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+2:]))
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	return utime + stime
}

// BenchmarkAcquireRelease measures the pool's dispatch alone: Acquire and
// Release of an idle thread of one of several processes, with no request
// written (the worker sees nothing), so that the pool's bookkeeping is not
// lost in the noise of a round trip to Python.
func BenchmarkAcquireRelease(b *testing.B) {
	app, _ := filepath.Abs("testdata/hello.py")
	py := os.Getenv("CADDY_WSGI_TEST_PYTHON")
	p, err := New(Config{Apps: []App{{Target: app}}, Python: py, Processes: 4, Threads: 4, User: workerUser()}, zap.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	for b.Loop() {
		c, err := p.Acquire(context.Background(), nil)
		if err != nil {
			b.Fatal(err)
		}
		p.Release(c, Reusable)
	}
}
