package pool

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/caddy-wsgi/caddy-wsgi/protocol"
)

func testConfig(t *testing.T, processes, threads int) Config {
	app, err := filepath.Abs("testdata/hello.py")
	if err != nil {
		t.Fatal(err)
	}
	return Config{Apps: []App{{Target: app}}, Python: os.Getenv("CADDY_WSGI_TEST_PYTHON"), Processes: processes, Threads: threads, User: workerUser()}
}

// workerUser is the User of the tests' pools: a root test run must name
// root (ErrRoot), and these tests are about the pool, not credentials,
// which process_test.go covers.
func workerUser() string {
	if os.Geteuid() == 0 {
		return "root"
	}
	return ""
}

func TestRootMustBeNamed(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	cfg := testConfig(t, 1, 1)
	cfg.User = ""
	if _, err := New(cfg, zap.NewNop()); !errors.Is(err, ErrRoot) {
		t.Fatalf("New as root without User: %v, want ErrRoot", err)
	}
}

func startPool(t *testing.T, cfg Config) (*Pool, *observer.ObservedLogs) {
	t.Helper()
	core, logs := observer.New(zap.InfoLevel)
	p, err := New(cfg, zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p, logs
}

// acquireQueued starts an Acquire that must wait in line, and returns once it
// is waiting.
func acquireQueued(p *Pool, req []byte) <-chan acquired {
	queued := make(chan struct{})
	p.testHookQueued = func() { close(queued) }
	got := make(chan acquired, 1)
	go func() {
		c, err := p.Acquire(context.Background(), req)
		got <- acquired{c, err}
	}()
	<-queued
	p.testHookQueued = nil
	return got
}

type acquired struct {
	c   *Conn
	err error
}

// helloRequest is a REQUEST frame for GET /.
func helloRequest() []byte { return requestFrame(0, "/", "", false) }

// requestFrame is a REQUEST frame for GET path?query to the pool's
// application app; with body, the request body frames are for the caller to
// send.
func requestFrame(app uint16, path, query string, body bool) []byte {
	flags := protocol.FlagNoBody
	if body {
		flags = 0
	}
	var e protocol.RequestEncoder
	e.Begin(nil, app, &protocol.RequestLine{Method: "GET", PathInfo: path, QueryString: query, ServerName: "localhost",
		ServerPort: "80", ServerProtocol: "HTTP/1.1", URLScheme: "http"})
	if err := e.End(flags); err != nil {
		panic(err)
	}
	return e.Bytes()
}

// readResponse reads an exchange's frames up to RESPONSE_END and returns the
// body.
func readResponse(t testing.TB, c *Conn) string {
	t.Helper()
	var body strings.Builder
	for {
		f, err := c.R.Next()
		if err != nil {
			t.Fatal(err)
		}
		switch f.Type {
		case protocol.ResponseBody:
			body.Write(f.Payload)
		case protocol.ResponseEnd:
			return body.String()
		}
	}
}

func TestExchange(t *testing.T) {
	p, _ := startPool(t, testConfig(t, 1, 2))
	for i := 0; i < 3; i++ {
		c, err := p.Acquire(context.Background(), helloRequest())
		if err != nil {
			t.Fatal(err)
		}
		if body := readResponse(t, c); body != "Hello, world!" {
			t.Fatalf("body %q", body)
		}
		p.Release(c, Reusable)
	}
}

// TestSeveralApps: the workers load every application of the pool, and each
// request reaches the one its REQUEST names.
func TestSeveralApps(t *testing.T) {
	cfg := testConfig(t, 1, 2)
	procenv, _ := filepath.Abs("testdata/procenv.py")
	cfg.Apps = append(cfg.Apps, App{Target: procenv})
	p, _ := startPool(t, cfg)
	for _, app := range []uint16{1, 0, 1} {
		c, err := p.Acquire(context.Background(), requestFrame(app, "/", "", false))
		if err != nil {
			t.Fatal(err)
		}
		body := readResponse(t, c)
		p.Release(c, Reusable)
		if hello := body == "Hello, world!"; hello != (app == 0) {
			t.Errorf("application %d answered %q", app, body)
		}
	}
}

func TestStartupErrors(t *testing.T) {
	dir := t.TempDir()
	broken := filepath.Join(dir, "broken.py")
	os.WriteFile(broken, []byte("raise RuntimeError('cannot start')\n"), 0o644)
	exits := filepath.Join(dir, "exits.py")
	os.WriteFile(exits, []byte("import os\nos._exit(3)\n"), 0o644)
	slow := filepath.Join(dir, "slow.py")
	os.WriteFile(slow, []byte("import time\ntime.sleep(60)\n"), 0o644)
	for name, tc := range map[string]struct {
		cfg  Config
		want string
	}{
		"exception":   {Config{Apps: []App{{Target: broken}}}, "RuntimeError: cannot start"},
		"no module":   {Config{Apps: []App{{Target: "no_such_module_xyz:app"}}}, "No module named 'no_such_module_xyz'"},
		"exit":        {Config{Apps: []App{{Target: exits}}}, "the worker process ended during startup: exited with status 3"},
		"interpreter": {Config{Apps: []App{{Target: broken}}, Python: filepath.Join(dir, "python-missing")}, "starting Python interpreter"},
		"startup timeout": {Config{Apps: []App{{Target: slow}}, StartupTimeout: 100 * time.Millisecond},
			"did not load the application within the startup timeout of 100ms"},
	} {
		t.Run(name, func(t *testing.T) {
			if tc.cfg.Python == "" {
				tc.cfg.Python = os.Getenv("CADDY_WSGI_TEST_PYTHON")
			}
			tc.cfg.User = workerUser()
			p, err := New(tc.cfg, zap.NewNop())
			if err == nil {
				p.Close()
				t.Fatal("New succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}

// TestLeastBusyDispatch: concurrent requests spread over the processes
// before any process gets a second one.
func TestLeastBusyDispatch(t *testing.T) {
	p, _ := startPool(t, testConfig(t, 2, 2))
	a, _ := p.Acquire(context.Background(), nil)
	b, _ := p.Acquire(context.Background(), nil)
	if a.PID() == b.PID() {
		t.Errorf("two requests went to process %d while another was idle", a.PID())
	}
	p.Release(a, Reusable)
	p.Release(b, Reusable)
}

func TestQueueTimeout(t *testing.T) {
	cfg := testConfig(t, 1, 1)
	cfg.QueueTimeout = 20 * time.Millisecond
	p, _ := startPool(t, cfg)
	c, _ := p.Acquire(context.Background(), nil)
	if _, err := p.Acquire(context.Background(), nil); !errors.Is(err, ErrQueueTimeout) {
		t.Errorf("Acquire with every thread busy: %v, want ErrQueueTimeout", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := p.Acquire(ctx, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("Acquire with a cancelled context: %v", err)
	}
	p.Release(c, Reusable)
	// The thread went back to the pool, not to a waiter that gave up.
	c, err := p.Acquire(context.Background(), helloRequest())
	if err != nil {
		t.Fatal(err)
	}
	readResponse(t, c)
	p.Release(c, Reusable)
}

// TestAcquireOrGivesUp: once giveUp is closed, a request waiting in line
// leaves it with ErrGaveUp, and a new one does not even take an idle
// thread; the thread goes to neither, and serves the next request.
func TestAcquireOrGivesUp(t *testing.T) {
	p, _ := startPool(t, testConfig(t, 1, 1))
	c, err := p.Acquire(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	giveUp := make(chan struct{})
	queued := make(chan struct{})
	p.testHookQueued = func() { close(queued) }
	got := make(chan error, 1)
	go func() {
		_, err := p.AcquireOr(context.Background(), helloRequest(), giveUp)
		got <- err
	}()
	<-queued
	p.testHookQueued = nil
	close(giveUp)
	if err := <-got; !errors.Is(err, ErrGaveUp) {
		t.Errorf("AcquireOr waiting in line when giveUp closed: %v, want ErrGaveUp", err)
	}
	p.Release(c, Reusable)
	if _, err := p.AcquireOr(context.Background(), helloRequest(), giveUp); !errors.Is(err, ErrGaveUp) {
		t.Errorf("AcquireOr with an idle thread after giveUp closed: %v, want ErrGaveUp", err)
	}
	c, err = p.Acquire(context.Background(), helloRequest())
	if err != nil {
		t.Fatal(err)
	}
	readResponse(t, c)
	p.Release(c, Reusable)
}

// TestHandOff: a request waiting for a thread is written to the worker by
// whoever frees one, and its caller gets the connection.
func TestHandOff(t *testing.T) {
	p, _ := startPool(t, testConfig(t, 1, 1))
	first, _ := p.Acquire(context.Background(), helloRequest())
	got := acquireQueued(p, helloRequest())
	readResponse(t, first)
	p.Release(first, Reusable)
	a := <-got
	if a.err != nil {
		t.Fatal(a.err)
	}
	second := a.c
	if body := readResponse(t, second); body != "Hello, world!" {
		t.Errorf("handed-over request: %q", body)
	}
	p.Release(second, Reusable)
}

func TestRestartAfterKill(t *testing.T) {
	p, logs := startPool(t, testConfig(t, 1, 1))
	c, _ := p.Acquire(context.Background(), nil)
	pid, exited := c.PID(), c.proc.exited
	p.Release(c, Reusable)
	syscall.Kill(pid, syscall.SIGKILL)
	<-exited

	// A request arriving while the process is down waits for its
	// replacement instead of failing, even before the supervisor has
	// noticed the death.
	c, err := p.Acquire(context.Background(), helloRequest())
	if err != nil {
		t.Fatal(err)
	}
	if c.PID() == pid {
		t.Fatalf("got a connection to the killed process %d", pid)
	}
	if body := readResponse(t, c); body != "Hello, world!" {
		t.Errorf("after the restart: %q", body)
	}
	p.Release(c, Reusable)
	if n := logs.FilterMessage("worker process exited; starting a new one").FilterField(zap.Int("pid", pid)).Len(); n != 1 {
		t.Errorf("%d exit log entries for pid %d", n, pid)
	}
}

// TestBrokenConnectionReplacesProcess: a connection released as out of step
// takes its process with it.
func TestBrokenConnectionReplacesProcess(t *testing.T) {
	p, _ := startPool(t, testConfig(t, 1, 2))
	c, _ := p.Acquire(context.Background(), nil)
	pid := c.PID()
	p.Release(c, OutOfStep)
	c, err := p.Acquire(context.Background(), helloRequest())
	if err != nil {
		t.Fatal(err)
	}
	if c.PID() == pid {
		t.Errorf("still served by process %d after an out-of-step release", pid)
	}
	readResponse(t, c)
	p.Release(c, Reusable)
}

// TestClose: Close fails waiting requests and refuses new ones at once, lets
// requests in flight finish, then stops every process.
func TestClose(t *testing.T) {
	p, _ := startPool(t, testConfig(t, 2, 1))
	busy, _ := p.Acquire(context.Background(), nil)
	other, _ := p.Acquire(context.Background(), nil)
	pids := []int{busy.PID(), other.PID()}
	waiting := acquireQueued(p, nil)
	closed := make(chan error)
	go func() { closed <- p.Close() }()
	if a := <-waiting; !errors.Is(a.err, ErrClosed) {
		t.Errorf("waiting request after Close: %v", a.err)
	}
	if _, err := p.Acquire(context.Background(), nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Acquire after Close: %v", err)
	}
	// A request in flight still completes.
	busy.Write(helloRequest())
	if body := readResponse(t, busy); body != "Hello, world!" {
		t.Errorf("request in flight during Close: %q", body)
	}
	p.Release(busy, Reusable)
	p.Release(other, Reusable)
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); err == nil {
			t.Errorf("process %d still running after Close", pid)
		}
	}
	if _, err := os.Stat(p.runtimeDir); !os.IsNotExist(err) {
		t.Errorf("runtime directory %s left behind", p.runtimeDir)
	}
}

// TestSendFailureRetries: a request whose write fails (the worker died and
// has not been reaped yet) never reached a worker, so it goes to another
// thread instead of failing.
func TestSendFailureRetries(t *testing.T) {
	p, logs := startPool(t, testConfig(t, 1, 1))
	live, _ := p.Acquire(context.Background(), nil)

	// A process whose only connection's far end is closed, as a killed
	// worker's is before the supervisor notices.
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	syscall.Close(fds[1])
	f := os.NewFile(uintptr(fds[0]), "dead")
	fc, _ := net.FileConn(f)
	f.Close()
	dead := &process{pool: p, pid: -1, exited: make(chan struct{})}
	dc := &Conn{proc: dead, uc: fc.(*net.UnixConn), R: protocol.NewReader(fc.(*net.UnixConn))}
	dead.conns, dead.idle = []*Conn{dc}, []*Conn{dc}
	p.mu.Lock()
	p.procs = append(p.procs, dead)
	p.mu.Unlock()
	t.Cleanup(func() { close(dead.exited) })

	got := acquireQueued(p, helloRequest())
	p.Release(live, Reusable)
	a := <-got
	if a.err != nil {
		t.Fatal(a.err)
	}
	if a.c.PID() != live.PID() {
		t.Fatalf("served by pid %d", a.c.PID())
	}
	if body := readResponse(t, a.c); body != "Hello, world!" {
		t.Errorf("body %q", body)
	}
	p.Release(a.c, Reusable)
	if logs.FilterMessageSnippet("gone before it received a request").Len() != 1 {
		t.Error("no log entry for the retry")
	}
}
