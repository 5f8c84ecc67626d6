package pool

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/caddy-wsgi/caddy-wsgi/protocol"
)

func lifecycleConfig(t *testing.T, processes, threads int) Config {
	app, err := filepath.Abs("testdata/lifecycle.py")
	if err != nil {
		t.Fatal(err)
	}
	return Config{Apps: []App{{Target: app}}, Python: os.Getenv("CADDY_WSGI_TEST_PYTHON"), Processes: processes, Threads: threads, User: workerUser()}
}

// testLogs are a pool's logs, which a test can wait on.
type testLogs struct {
	*observer.ObservedLogs
	logged chan struct{} // signalled after each entry
}

func startWatchedPool(t *testing.T, cfg Config) (*Pool, *testLogs) {
	t.Helper()
	core, obs := observer.New(zap.DebugLevel)
	logs := &testLogs{obs, make(chan struct{}, 1)}
	// Hooks run after the observer has recorded the entry.
	hooked := zapcore.RegisterHooks(core, func(zapcore.Entry) error {
		select {
		case logs.logged <- struct{}{}:
		default:
		}
		return nil
	})
	p, err := New(cfg, zap.New(hooked))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p, logs
}

// waitFor returns the first entry with message msg about process pid (any,
// if 0), waiting for it if need be.
func (l *testLogs) waitFor(t *testing.T, msg string, pid int) observer.LoggedEntry {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		found := l.FilterMessage(msg)
		if pid != 0 {
			found = found.FilterField(zap.Int("pid", pid))
		}
		if all := found.All(); len(all) > 0 {
			return all[0]
		}
		select {
		case <-l.logged:
		case <-timeout:
			t.Fatalf("no log entry %q for pid %d", msg, pid)
		}
	}
}

func (l *testLogs) reason(pid int) string {
	for _, e := range l.FilterMessage("recycling worker process").FilterField(zap.Int("pid", pid)).All() {
		return e.ContextMap()["reason"].(string)
	}
	return ""
}

// noCrashes fails the test if a process exited other than by recycling.
func (l *testLogs) noCrashes(t *testing.T) {
	t.Helper()
	for _, e := range l.FilterMessage("worker process exited; starting a new one").All() {
		t.Errorf("unexpected exit: %v", e.ContextMap())
	}
}

// get makes a request for path and returns the pid that served it.
func get(p *Pool, path string) (int, error) {
	c, err := p.Acquire(context.Background(), requestFrame(0, path, "", false))
	if err != nil {
		return 0, err
	}
	body, err := response(c)
	p.Release(c, outcome(err))
	if err == nil && body != "ok" {
		err = fmt.Errorf("body %q", body)
	}
	return c.PID(), err
}

func mustGet(t *testing.T, p *Pool, path string) int {
	t.Helper()
	pid, err := get(p, path)
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

func response(c *Conn) (string, error) {
	var body strings.Builder
	for {
		f, err := c.R.Next()
		if err != nil {
			return "", err
		}
		switch f.Type {
		case protocol.ResponseBody:
			body.Write(f.Payload)
		case protocol.ResponseEnd:
			return body.String(), nil
		case protocol.AppError:
			return "", fmt.Errorf("application error: %s", f.Payload)
		}
	}
}

// outcome is how an exchange that response read ended.
func outcome(err error) Outcome {
	if err != nil {
		return OutOfStep
	}
	return Reusable
}

// gated starts a request that stays in progress until openGate.
func gated(t *testing.T, p *Pool) *Conn {
	t.Helper()
	c, err := p.Acquire(context.Background(), requestFrame(0, "/gate", "", true))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func openGate(t *testing.T, c *Conn) {
	t.Helper()
	if _, err := c.Write(protocol.AppendHeader(nil, protocol.BodyEnd, 0, 0)); err != nil {
		t.Fatal(err)
	}
}

func TestMaximumRequests(t *testing.T) {
	cfg := lifecycleConfig(t, 1, 2)
	cfg.MaximumRequests = 3
	p, logs := startWatchedPool(t, cfg)
	var pids []int
	for range 5 {
		pids = append(pids, mustGet(t, p, "/"))
	}
	first, second := pids[0], pids[3]
	if want := []int{first, first, first, second, second}; !slices.Equal(pids, want) || second == first {
		t.Errorf("requests served by %v", pids)
	}
	if r := logs.reason(first); r != "maximum_requests reached (3)" {
		t.Errorf("recycle reason %q", r)
	}
	logs.waitFor(t, "recycled worker process exited", first)
	logs.noCrashes(t)
}

func TestRestartInterval(t *testing.T) {
	cfg := lifecycleConfig(t, 1, 1)
	cfg.RestartInterval = 200 * time.Millisecond
	p, logs := startWatchedPool(t, cfg)
	first := mustGet(t, p, "/")
	logs.waitFor(t, "recycling worker process", first)
	if pid := mustGet(t, p, "/"); pid == first {
		t.Errorf("still served by %d after restart_interval", first)
	}
	if r := logs.reason(first); r != "restart_interval (200ms) passed" {
		t.Errorf("recycle reason %q", r)
	}
	logs.waitFor(t, "recycled worker process exited", first)
	logs.noCrashes(t)
}

// TestInactivityTimeout: the timeout counts from the end of the last
// request, however long that request took.
func TestInactivityTimeout(t *testing.T) {
	const timeout = 200 * time.Millisecond
	cfg := lifecycleConfig(t, 1, 1)
	cfg.InactivityTimeout = timeout
	p, logs := startWatchedPool(t, cfg)
	c := gated(t, p)
	first := c.PID()
	time.Sleep(2 * timeout) // a request longer than the timeout
	openGate(t, c)
	if _, err := response(c); err != nil {
		t.Fatal(err)
	}
	ended := time.Now()
	p.Release(c, Reusable)
	e := logs.waitFor(t, "recycling worker process", first)
	if idle := e.Time.Sub(ended); idle < timeout {
		t.Errorf("recycled %s after its last request ended", idle)
	}
	if r := logs.reason(first); r != "inactivity_timeout" {
		t.Errorf("recycle reason %q", r)
	}
	if pid := mustGet(t, p, "/"); pid == first {
		t.Errorf("still served by %d", first)
	}
	logs.noCrashes(t)
}

func TestMemoryLimit(t *testing.T) {
	cfg := lifecycleConfig(t, 1, 1)
	cfg.MemoryLimit = 64 << 20
	p, logs := startWatchedPool(t, cfg)
	first := mustGet(t, p, "/grow")
	mustGet(t, p, "/grow")
	mustGet(t, p, "/grow") // 96 MiB held, and the interpreter
	logs.waitFor(t, "recycling worker process", first)
	if r := logs.reason(first); !strings.HasPrefix(r, "memory_limit: rss ") || !strings.HasSuffix(r, " MiB over 64 MiB") {
		t.Errorf("recycle reason %q", r)
	}
	if pid := mustGet(t, p, "/"); pid == first {
		t.Errorf("still served by %d", first)
	}
	logs.noCrashes(t)
}

func TestCPUTimeLimit(t *testing.T) {
	cfg := lifecycleConfig(t, 1, 1)
	cfg.CPUTimeLimit = 900 * time.Millisecond
	p, logs := startWatchedPool(t, cfg)
	first := mustGet(t, p, "/burn")
	logs.waitFor(t, "recycling worker process", first)
	if r := logs.reason(first); !strings.HasPrefix(r, "cpu_time_limit: ") || !strings.HasSuffix(r, "s of CPU time over 900ms") {
		t.Errorf("recycle reason %q", r)
	}
	if pid := mustGet(t, p, "/"); pid == first {
		t.Errorf("still served by %d", first)
	}
	logs.noCrashes(t)
}

func TestMaxQueue(t *testing.T) {
	cfg := lifecycleConfig(t, 1, 1)
	cfg.MaxQueue = 1
	cfg.QueueTimeout = time.Minute
	p, _ := startWatchedPool(t, cfg)
	busy, _ := p.Acquire(context.Background(), nil)
	waiting := acquireQueued(p, requestFrame(0, "/", "", false))
	if _, err := p.Acquire(context.Background(), nil); !errors.Is(err, ErrQueueFull) {
		t.Errorf("Acquire with a full queue: %v, want ErrQueueFull", err)
	}
	p.Release(busy, Reusable)
	a := <-waiting
	if a.err != nil {
		t.Fatal(a.err)
	}
	if _, err := response(a.c); err != nil {
		t.Error(err)
	}
	p.Release(a.c, Reusable)
}

// TestGracefulRecycle: a recycled process takes no new request, but
// finishes the one it has.
func TestGracefulRecycle(t *testing.T) {
	p, logs := startWatchedPool(t, lifecycleConfig(t, 1, 2))
	c := gated(t, p)
	old := c.PID()
	p.recycle(c.proc, "test", "test")
	if pid := mustGet(t, p, "/"); pid == old {
		t.Errorf("a new request went to the recycled process %d", old)
	}
	openGate(t, c)
	if body, err := response(c); body != "ok" || err != nil {
		t.Errorf("the in-flight request: %q, %v", body, err)
	}
	p.Release(c, Reusable)
	logs.waitFor(t, "recycled worker process exited", old)
	if e := logs.FilterMessageSnippet("killing it").All(); len(e) > 0 {
		t.Errorf("killed: %v", e[0].Message)
	}
	logs.noCrashes(t)
}

func TestGracefulTimeout(t *testing.T) {
	cfg := lifecycleConfig(t, 1, 1)
	cfg.GracefulTimeout = 200 * time.Millisecond
	p, logs := startWatchedPool(t, cfg)
	c := gated(t, p)
	old := c.PID()
	p.recycle(c.proc, "test", "test")
	logs.waitFor(t, "recycled worker process still has requests after the graceful timeout; killing it", old)
	if _, err := response(c); err == nil {
		t.Error("the request outliving graceful_timeout completed")
	}
	p.Release(c, OutOfStep)
	if e := logs.waitFor(t, "recycled worker process exited", old); e.ContextMap()["status"] != "killed by SIGKILL" {
		t.Errorf("exit status %v", e.ContextMap()["status"])
	}
	if pid := mustGet(t, p, "/"); pid == old {
		t.Errorf("still served by %d", old)
	}
	logs.noCrashes(t)
}

// TestShutdownTimeout: a recycled process that does not exit once its
// connections are closed is killed.
func TestShutdownTimeout(t *testing.T) {
	cfg := lifecycleConfig(t, 1, 1)
	cfg.ShutdownTimeout = 200 * time.Millisecond
	p, logs := startWatchedPool(t, cfg)
	old := mustGet(t, p, "/linger")
	p.mu.Lock()
	proc := p.procs[0]
	p.mu.Unlock()
	p.recycle(proc, "test", "test")
	logs.waitFor(t, "recycled worker process did not exit after its connections closed; killing it", old)
	logs.waitFor(t, "recycled worker process exited", old)
	if pid := mustGet(t, p, "/"); pid == old {
		t.Errorf("still served by %d", old)
	}
	logs.noCrashes(t)
}

// TestOutOfStepRecyclesGracefully: a connection released out of step, or
// timed out, costs its process, but not the process's other requests, and
// the log says which it was.
func TestOutOfStepRecyclesGracefully(t *testing.T) {
	for outcome, reason := range map[Outcome]string{OutOfStep: "connection out of step", TimedOut: "request_timeout"} {
		t.Run(reason, func(t *testing.T) {
			p, logs := startWatchedPool(t, lifecycleConfig(t, 1, 2))
			c := gated(t, p)
			old := c.PID()
			broken, _ := p.Acquire(context.Background(), nil)
			p.Release(broken, outcome)
			if r := logs.reason(old); r != reason {
				t.Errorf("recycle reason %q, want %q", r, reason)
			}
			openGate(t, c)
			if body, err := response(c); body != "ok" || err != nil {
				t.Errorf("the other request: %q, %v", body, err)
			}
			p.Release(c, Reusable)
			if pid := mustGet(t, p, "/"); pid == old {
				t.Errorf("still served by %d", old)
			}
			logs.waitFor(t, "recycled worker process exited", old)
			logs.noCrashes(t)
		})
	}
}

func TestReloadableScripts(t *testing.T) {
	// Types as New defaults them.
	cfg := Config{Dir: "/srv/site", ScriptReloading: true, Apps: []App{{Target: "/srv/a.wsgi", Type: "script"},
		{Target: "pkg.mod:app", Type: "module"}, {Target: "b.wsgi", Type: "script"}, {Target: "pkg.mod", Type: "module"},
		{Target: "/srv/a.wsgi", Callable: "other", Type: "script"}, {Target: "/srv/site.ini", Type: "paste"}}}
	if got, want := reloadableScripts(cfg), []string{"/srv/a.wsgi", "/srv/site/b.wsgi", "/srv/site.ini"}; !slices.Equal(got, want) {
		t.Errorf("watched %q, want %q", got, want)
	}
	// The workers watch the scripts with their other sources: two watchers
	// would reload twice for one change.
	cfg.ReloadOnChanges = true
	if got := reloadableScripts(cfg); got != nil {
		t.Errorf("watched %q with ReloadOnChanges on", got)
	}
	cfg.ScriptReloading, cfg.ReloadOnChanges = false, false
	if got := reloadableScripts(cfg); got != nil {
		t.Errorf("watched %q with ScriptReloading off", got)
	}
}

// TestScriptReloading: touching the script replaces every process without
// failing a request of a continuous load.
func TestScriptReloading(t *testing.T) {
	script := filepath.Join(t.TempDir(), "app.wsgi")
	src, err := os.ReadFile("testdata/lifecycle.py")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(script, src, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := lifecycleConfig(t, 2, 2)
	cfg.Apps = []App{{Target: script}}
	cfg.ScriptReloading = true
	p, logs := startWatchedPool(t, cfg)
	p.mu.Lock()
	old := []int{p.procs[0].pid, p.procs[1].pid}
	p.mu.Unlock()

	var failed atomic.Int64
	stop := make(chan struct{})
	sawNew := make(chan struct{})
	var once sync.Once
	var load sync.WaitGroup
	for range 4 {
		load.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				pid, err := get(p, "/")
				if err != nil {
					failed.Add(1)
					t.Error(err)
				} else if !slices.Contains(old, pid) {
					once.Do(func() { close(sawNew) })
				}
			}
		})
	}
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(script, later, later); err != nil {
		t.Fatal(err)
	}
	for _, pid := range old {
		logs.waitFor(t, "recycled worker process exited", pid)
	}
	select {
	case <-sawNew:
	case <-time.After(10 * time.Second):
		t.Error("no request of the load went to a new process")
	}
	close(stop)
	load.Wait()
	if n := failed.Load(); n > 0 {
		t.Errorf("%d requests failed during the reload", n)
	}
	for _, pid := range old {
		if r := logs.reason(pid); r != "script changed: "+script {
			t.Errorf("pid %d recycle reason %q", pid, r)
		}
	}
	logs.noCrashes(t)
}

// TestReloadOnChanges: a change to a module that the application imported
// reloads it, once, however many processes notice, and the new processes
// run the new code.
func TestReloadOnChanges(t *testing.T) {
	dir := t.TempDir()
	helper := write(t, filepath.Join(dir, "reloadhelper.py"), "BODY = b'old'\n")
	script := write(t, filepath.Join(dir, "app.wsgi"), "import reloadhelper\n\n"+
		"def application(environ, start_response):\n"+
		"    start_response('200 OK', [('Content-Type', 'text/plain')])\n"+
		"    return [reloadhelper.BODY]\n")
	cfg := lifecycleConfig(t, 2, 1)
	cfg.Apps = []App{{Target: script}}
	cfg.Dir = dir // on the path, as mod_wsgi's home
	cfg.ReloadOnChanges = true
	p, logs := startWatchedPool(t, cfg)
	old := inService(p)
	if len(old) != 2 {
		t.Fatalf("processes in service: %v", old)
	}
	if body, _ := fetch(t, p); body != "old" {
		t.Fatalf("body %q", body)
	}

	// The new code loads once the test says so: until then the old
	// processes serve, and each of them notices the change.
	gate := filepath.Join(dir, "gate")
	write(t, helper, fmt.Sprintf("import os, time\nwhile not os.path.exists(%q):\n    time.sleep(0.01)\nBODY = b'new'\n", gate))
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(helper, later, later); err != nil {
		t.Fatal(err)
	}
	reason := "source changed: " + helper
	if r := logs.waitFor(t, "reloading the application", 0).ContextMap()["reason"]; r != reason {
		t.Errorf("reload reason %q", r)
	}
	logs.waitFor(t, "source change already being reloaded", 0)
	write(t, gate, "")
	for _, pid := range old {
		logs.waitFor(t, "recycled worker process exited", pid)
		if r := logs.reason(pid); r != reason {
			t.Errorf("pid %d recycle reason %q", pid, r)
		}
	}
	for range 2 {
		if body, pid := fetch(t, p); body != "new" || slices.Contains(old, pid) {
			t.Errorf("after the reload: %q from pid %d", body, pid)
		}
	}
	if n := logs.FilterMessage("reloading the application").Len(); n != 1 {
		t.Errorf("%d reloads", n)
	}
	if n := logs.FilterMessage("source change already being reloaded").Len(); n != 1 {
		t.Errorf("%d notices ignored, want the second process's", n)
	}
	logs.noCrashes(t)
}

// inService are the pids of the processes in service.
func inService(p *Pool) []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	var pids []int
	for _, proc := range p.procs {
		if proc != nil {
			pids = append(pids, proc.pid)
		}
	}
	return pids
}

// fetch makes a request and returns the body and the pid that served it.
func fetch(t *testing.T, p *Pool) (string, int) {
	t.Helper()
	c, err := p.Acquire(context.Background(), requestFrame(0, "/", "", false))
	if err != nil {
		t.Fatal(err)
	}
	body, err := response(c)
	p.Release(c, outcome(err))
	if err != nil {
		t.Fatal(err)
	}
	return body, c.PID()
}

// TestControlParser: notices, stack reports and heartbeats, however the
// reads split them.
func TestControlParser(t *testing.T) {
	long := strings.Repeat("x", maxNotice+10)
	report := `[{"thread": 1, "stack": "  File \"a.py\", line 1, in f\n"}]`
	stream := "..C17 /srv/a.py\n..C1764000000123456789 /srv/b c.py\n.S" + report + "\n.C5 " + long + "\n." +
		"C-3 /srv/c.py\nS[]\nC/srv/d.py\nC"
	want := []sourceChange{{"/srv/a.py", 17}, {"/srv/b c.py", 1764000000123456789}, {long[:maxNotice-2], 5},
		{"/srv/c.py", -3}, {"/srv/d.py", 0}}
	for _, size := range []int{1, 2, 3, 7, len(stream)} {
		var c controlParser
		var got []sourceChange
		var reports []string
		for chunk := range slices.Chunk([]byte(stream), size) {
			changes, stacks := c.parse(chunk)
			got = append(got, changes...)
			for _, s := range stacks {
				reports = append(reports, string(s))
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("reads of %d bytes: %.60v", size, got)
		}
		if !slices.Equal(reports, []string{report, "[]"}) {
			t.Errorf("reads of %d bytes: stack reports %q", size, reports)
		}
	}
}

// TestReloadFailureKeepsProcess: a script that no longer loads leaves the
// running processes serving.
func TestReloadFailureKeepsProcess(t *testing.T) {
	script := filepath.Join(t.TempDir(), "app.wsgi")
	src, err := os.ReadFile("testdata/lifecycle.py")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(script, src, 0o644)
	cfg := lifecycleConfig(t, 1, 1)
	cfg.Apps = []App{{Target: script}}
	p, logs := startWatchedPool(t, cfg)
	first := mustGet(t, p, "/")
	os.WriteFile(script, []byte("raise RuntimeError('broken')\n"), 0o644)
	p.Reload("test")
	logs.waitFor(t, "could not reload the application; the old worker process keeps serving", 0)
	if pid := mustGet(t, p, "/"); pid != first {
		t.Errorf("served by %d, not the running process %d", pid, first)
	}
}

// TestCloseWhileRecycling: Close stops a process still draining and its
// replacement still starting, and leaves no goroutine behind.
func TestCloseWhileRecycling(t *testing.T) {
	cfg := lifecycleConfig(t, 1, 1)
	core, _ := observer.New(zap.InfoLevel)
	p, err := New(cfg, zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	c := gated(t, p)
	old := c.PID()
	p.recycle(c.proc, "test", "test")
	closed := make(chan error)
	go func() { closed <- p.Close() }()
	p.Release(c, OutOfStep)
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(old, 0); err == nil {
		t.Errorf("recycled process %d still running", old)
	}
	p.mu.Lock()
	left := len(p.all)
	p.mu.Unlock()
	if left > 0 {
		t.Errorf("%d processes not reaped", left)
	}
	for _, g := range poolGoroutines() {
		t.Errorf("goroutine left after Close:\n%s", g)
	}
}

// poolGoroutines are the stacks of the goroutines running the pool's code,
// tests and the forking thread (which lives as long as the program) apart.
func poolGoroutines() []string {
	buf := make([]byte, 1<<20)
	var found []string
	for _, g := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
		if strings.Contains(g, "caddy-wsgi/pool.") && !strings.Contains(g, "caddy-wsgi/pool.Test") &&
			!strings.Contains(g, "caddy-wsgi/pool.forkLoop") {
			found = append(found, g)
		}
	}
	return found
}

// TestRestartBackOff: a process that dies before it has served a request is
// restarted after a back-off, so that an application that dies as soon as
// it has loaded is not restarted in a busy loop; one that crashes serving
// is replaced at once, so that a group whose requests sometimes crash their
// process keeps its processes.
func TestRestartBackOff(t *testing.T) {
	p, logs := startWatchedPool(t, lifecycleConfig(t, 1, 1))
	first := onlyProcess(t, p)

	syscall.Kill(first.pid, syscall.SIGKILL)
	exit := logs.waitFor(t, "worker process exited; starting a new one", first.pid)
	second := restartedAfter(t, p, logs, first.pid)
	if wait := second.started.Sub(exit.Time); wait < time.Second {
		t.Errorf("a process that served nothing was restarted %s after its exit, want the 1s back-off", wait)
	}

	mustGet(t, p, "/")
	c, err := p.Acquire(context.Background(), requestFrame(0, "/crash", "", false))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := response(c); err == nil {
		t.Fatal("/crash answered")
	}
	p.Release(c, WorkerGone)
	exit = logs.waitFor(t, "worker process exited; starting a new one", second.pid)
	third := restartedAfter(t, p, logs, second.pid)
	ready := logs.waitFor(t, "worker process restarted", third.pid)
	t.Logf("replaced %s after the crash, serving %s after", third.started.Sub(exit.Time), ready.Time.Sub(exit.Time))
	if wait := third.started.Sub(exit.Time); wait > 250*time.Millisecond {
		t.Errorf("a process that crashed serving was replaced %s after its exit, want at once", wait)
	}
	if pid := mustGet(t, p, "/"); pid != third.pid {
		t.Errorf("served by %d, want the replacement %d", pid, third.pid)
	}
}

// onlyProcess is the process in service of a pool of one.
func onlyProcess(t *testing.T, p *Pool) *process {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.procs[0] == nil {
		t.Fatal("no process in service")
	}
	return p.procs[0]
}

// restartedAfter waits for the process that replaces pid.
func restartedAfter(t *testing.T, p *Pool, logs *testLogs, pid int) *process {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		for _, e := range logs.FilterMessage("worker process restarted").FilterField(zap.Int("replaces", pid)).All() {
			next := int(e.ContextMap()["pid"].(int64))
			p.mu.Lock()
			defer p.mu.Unlock()
			for proc := range p.all {
				if proc.pid == next {
					return proc
				}
			}
			t.Fatalf("the replacement %d of %d has exited", next, pid)
		}
		select {
		case <-logs.logged:
		case <-timeout:
			t.Fatalf("%d was not replaced", pid)
		}
	}
}
