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
// the protocol and the Python runtime. It also reports the worker's CPU time
// per request.
func BenchmarkHelloRoundTrip(b *testing.B) {
	app, _ := filepath.Abs("testdata/hello.py")
	py := os.Getenv("CADDY_WSGI_TEST_PYTHON")
	p, err := New(Config{Apps: []App{{Target: app}}, Python: py, Processes: 1, Threads: 1, User: workerUser()}, zap.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	var req []byte
	req = protocol.AppendRequestHeader(req, protocol.FlagNoBody, 0, 0)
	for _, kv := range [][2]string{{"REQUEST_METHOD", "GET"}, {"SCRIPT_NAME", ""}, {"PATH_INFO", "/"},
		{"QUERY_STRING", ""}, {"REQUEST_URI", "/"}, {"SERVER_NAME", "127.0.0.1"}, {"SERVER_PORT", "8080"},
		{"SERVER_PROTOCOL", "HTTP/1.1"}, {"REMOTE_ADDR", "127.0.0.1"}, {"REMOTE_PORT", "40000"},
		{"wsgi.url_scheme", "http"}, {"HTTP_HOST", "127.0.0.1:8080"}} {
		req = protocol.AppendPair(req, kv[0], kv[1])
	}
	n := len(req) - protocol.HeaderSize
	req[4], req[5], req[6], req[7] = byte(n>>24), byte(n>>16), byte(n>>8), byte(n)

	c, _ := p.Acquire(context.Background(), nil)
	before := cpuTicks(b, c.PID())
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := c.Write(req); err != nil {
			b.Fatal(err)
		}
		for {
			f, err := c.R.Next()
			if err != nil {
				b.Fatal(err)
			}
			if f.Type == protocol.ResponseEnd {
				break
			}
		}
	}
	b.StopTimer()
	ticks := cpuTicks(b, c.PID()) - before
	// Linux reports CPU time in clock ticks of 10 ms.
	b.ReportMetric(float64(ticks)*1e7/float64(b.N), "worker-cpu-ns/op")
	p.Release(c, Reusable)
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
