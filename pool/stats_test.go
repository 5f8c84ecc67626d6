package pool

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"
)

// worker is the snapshot of process pid in s, or fails the test.
func worker(t *testing.T, s Stats, pid int) ProcessStats {
	t.Helper()
	for _, w := range s.Workers {
		if w.PID == pid {
			return w
		}
	}
	t.Fatalf("no process %d in the snapshot: %+v", pid, s.Workers)
	return ProcessStats{}
}

// serving are the snapshots of the serving processes in s.
func serving(s Stats) []ProcessStats {
	var found []ProcessStats
	for _, w := range s.Workers {
		if w.State == Serving {
			found = append(found, w)
		}
	}
	return found
}

// TestStatsRequest: a request in progress shows as a busy thread of its
// process and is counted; a recycled process shows as draining until its
// request ends, beside its serving replacement.
func TestStatsRequest(t *testing.T) {
	cfg := lifecycleConfig(t, 1, 2)
	cfg.Name = "stats"
	p, logs := startWatchedPool(t, cfg)
	s := p.Stats()
	if s.Name != "stats" || s.Processes != 1 || s.Threads != 2 || s.User == "" || s.QueueDepth != 0 || s.Restarting {
		t.Errorf("group: %+v", s)
	}
	if len(s.Workers) != 1 {
		t.Fatalf("workers: %+v", s.Workers)
	}
	w := s.Workers[0]
	if w.State != Serving || w.Requests != 0 || w.BusyThreads != 0 || w.LastRestartReason != "" || w.RSS <= 0 ||
		time.Since(w.Started) > time.Minute {
		t.Errorf("worker before any request: %+v", w)
	}

	c := gated(t, p)
	s = p.Stats()
	if w := worker(t, s, c.PID()); w.Requests != 1 || w.BusyThreads != 1 || s.Requests != 1 {
		t.Errorf("during a request: %+v, %d requests", w, s.Requests)
	}
	p.recycle(c.proc, ReasonReload, "test")
	s = p.Stats()
	if w := worker(t, s, c.PID()); w.State != Draining || w.BusyThreads != 1 {
		t.Errorf("recycled with a request in progress: %+v", w)
	}
	if s.Restarts[ReasonReload] != 1 {
		t.Errorf("restarts %v", s.Restarts)
	}
	openGate(t, c)
	if _, err := response(c); err != nil {
		t.Fatal(err)
	}
	p.Release(c, Reusable)
	// Reaped, it is gone from the snapshot.
	for _, w := range p.Stats().Workers {
		if w.PID == c.PID() && w.State != Stopping && w.State != Dead {
			t.Errorf("recycled, its request done: %s", w.State)
		}
	}
	next := mustGet(t, p, "/")
	if w := worker(t, p.Stats(), next); w.State != Serving || w.LastRestartReason != ReasonReload || w.BusyThreads != 0 {
		t.Errorf("the replacement: %+v", w)
	}
	logs.waitFor(t, "recycled worker process exited", c.PID())
}

// TestStatsRestartReasons: a crash and maximum_requests are counted by the
// reason the log gives, and the replacement says why it replaced the
// process before it.
func TestStatsRestartReasons(t *testing.T) {
	cfg := lifecycleConfig(t, 1, 1)
	cfg.MaximumRequests = 2
	p, logs := startWatchedPool(t, cfg)
	first := mustGet(t, p, "/") // served, so restarted at once on a crash
	syscall.Kill(first, syscall.SIGKILL)
	exit := logs.waitFor(t, "worker process exited; starting a new one", first)
	if r := exit.ContextMap()["restart_reason"]; r != string(ReasonCrash) {
		t.Errorf("exit logged with restart_reason %v", r)
	}
	second := mustGet(t, p, "/") // waits for the replacement to serve
	s := p.Stats()
	if w := worker(t, s, second); w.LastRestartReason != ReasonCrash || w.Requests != 1 {
		t.Errorf("after a kill -9: %+v", w)
	}
	if s.Restarts[ReasonCrash] != 1 || len(s.Restarts) != 1 {
		t.Errorf("restarts after a kill -9: %v", s.Restarts)
	}

	mustGet(t, p, "/") // the second's second request
	recycled := logs.waitFor(t, "recycling worker process", second)
	if r := recycled.ContextMap()["restart_reason"]; r != string(ReasonMaximumRequests) {
		t.Errorf("recycle logged with restart_reason %v", r)
	}
	third := mustGet(t, p, "/")
	s = p.Stats()
	if w := worker(t, s, third); w.LastRestartReason != ReasonMaximumRequests || w.Requests != 1 {
		t.Errorf("after maximum_requests: %+v", w)
	}
	if s.Restarts[ReasonCrash] != 1 || s.Restarts[ReasonMaximumRequests] != 1 || len(s.Restarts) != 2 {
		t.Errorf("restarts after maximum_requests: %v", s.Restarts)
	}
	if s.Requests != 4 {
		t.Errorf("%d requests counted, want 4", s.Requests)
	}
	logs.waitFor(t, "recycled worker process exited", second)
}

// TestStatsQueueRejections: requests refused a thread are counted by why;
// one whose caller gave up is not.
func TestStatsQueueRejections(t *testing.T) {
	cfg := lifecycleConfig(t, 1, 1)
	cfg.QueueTimeout = 20 * time.Millisecond
	p, _ := startWatchedPool(t, cfg)
	busy, _ := p.Acquire(context.Background(), nil)
	if _, err := p.Acquire(context.Background(), nil); !errors.Is(err, ErrQueueTimeout) {
		t.Fatalf("Acquire with every thread busy: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := p.Acquire(ctx, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("Acquire with a cancelled context: %v", err)
	}
	if s := p.Stats(); s.QueueTimeouts != 1 || s.QueueFull != 0 || s.QueueDepth != 0 {
		t.Errorf("%d timeouts, %d full, queue depth %d; want 1, 0, 0", s.QueueTimeouts, s.QueueFull, s.QueueDepth)
	}
	p.Release(busy, Reusable)

	cfg.MaxQueue = 1
	cfg.QueueTimeout = time.Minute
	p, _ = startWatchedPool(t, cfg)
	busy, _ = p.Acquire(context.Background(), nil)
	waiting := acquireQueued(p, requestFrame(0, "/", "", false))
	if _, err := p.Acquire(context.Background(), nil); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("Acquire with a full queue: %v", err)
	}
	s := p.Stats()
	if s.QueueDepth != 1 || s.QueueFull != 1 || s.QueueTimeouts != 0 {
		t.Errorf("queue depth %d, %d full, %d timeouts; want 1, 1, 0", s.QueueDepth, s.QueueFull, s.QueueTimeouts)
	}
	p.Release(busy, Reusable)
	a := <-waiting
	if a.err != nil {
		t.Fatal(a.err)
	}
	response(a.c)
	p.Release(a.c, Reusable)
	if s := p.Stats(); s.QueueDepth != 0 || s.Requests != 2 {
		t.Errorf("queue depth %d, %d requests; want 0, 2", s.QueueDepth, s.Requests)
	}
}

// TestReloadWhileReloading: a reload replaces every process, counted as
// its reason says; asked for while one is still replacing processes,
// Reload says so instead of starting another.
func TestReloadWhileReloading(t *testing.T) {
	dir := t.TempDir()
	src, err := os.ReadFile("testdata/lifecycle.py")
	if err != nil {
		t.Fatal(err)
	}
	script := write(t, filepath.Join(dir, "app.wsgi"), string(src))
	cfg := lifecycleConfig(t, 2, 1)
	cfg.Apps = []App{{Target: script}}
	p, logs := startWatchedPool(t, cfg)
	old := inService(p)

	// The new processes load until the test opens the gate, and say when
	// they wait for it.
	gate := filepath.Join(dir, "gate")
	write(t, script, fmt.Sprintf("import os, time\nprint('at the gate', flush=True)\n"+
		"while not os.path.exists(%q):\n    time.sleep(0.01)\n%s", gate, src))
	if err := p.Reload(ReasonAdmin); err != nil {
		t.Fatal(err)
	}
	if err := p.Reload(ReasonAdmin); !errors.Is(err, ErrRestarting) {
		t.Errorf("Reload during a reload: %v, want ErrRestarting", err)
	}
	logs.waitForCount(t, "at the gate", 2)
	s := p.Stats()
	if !s.Restarting {
		t.Error("Stats does not say that a reload is running")
	}
	var states []State
	for _, w := range s.Workers {
		states = append(states, w.State)
	}
	if !slices.Equal(states, []State{Serving, Serving, Starting, Starting}) {
		t.Errorf("states during the reload, oldest first: %v", states)
	}
	write(t, gate, "")
	done := logs.waitFor(t, "reload finished", 0)
	if f := done.ContextMap()["failed"]; f != int64(0) {
		t.Errorf("%v replacements failed", f)
	}
	s = p.Stats()
	if s.Restarting || s.Restarts[ReasonAdmin] != 2 || len(s.Restarts) != 1 {
		t.Errorf("after the reload: restarting %t, restarts %v", s.Restarting, s.Restarts)
	}
	now := serving(s)
	if len(now) != 2 {
		t.Fatalf("serving after the reload: %+v", s.Workers)
	}
	for _, w := range now {
		if w.LastRestartReason != ReasonAdmin {
			t.Errorf("replacement %+v", w)
		}
		for _, pid := range old {
			if w.PID == pid {
				t.Errorf("process %d still serving after the reload", pid)
			}
		}
	}
	for _, pid := range old {
		logs.waitFor(t, "recycled worker process exited", pid)
	}
	if r := logs.waitFor(t, "reloading the application", 0).ContextMap()["restart_reason"]; r != string(ReasonAdmin) {
		t.Errorf("reload logged with restart_reason %v", r)
	}
	if err := p.Reload(ReasonAdmin); err != nil {
		t.Errorf("Reload once the first is done: %v", err)
	}
	p.Close()
	if err := p.Reload(ReasonAdmin); !errors.Is(err, ErrClosed) {
		t.Errorf("Reload after Close: %v, want ErrClosed", err)
	}
}

// waitForCount waits for n entries with message msg.
func (l *testLogs) waitForCount(t *testing.T, msg string, n int) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for l.FilterMessage(msg).Len() < n {
		select {
		case <-l.logged:
		case <-timeout:
			t.Fatalf("%d log entries %q, want %d", l.FilterMessage(msg).Len(), msg, n)
		}
	}
}

// TestStatsJSON: the snapshot reads as operators expect in JSON.
func TestStatsJSON(t *testing.T) {
	started := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	s := Stats{Name: "site", Processes: 1, Threads: 2, User: "www-data", Restarts: map[Reason]uint64{ReasonCrash: 1},
		Workers: []ProcessStats{{PID: 7, State: Draining, Started: started, Requests: 3, BusyThreads: 1,
			LastRestartReason: ReasonMemoryLimit, RSS: 1 << 20}}}
	got, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"name":"site","processes":1,"threads":2,"user":"www-data","queue_depth":0,"restarting":false,` +
		`"workers":[{"pid":7,"state":"draining","started":"2026-01-02T03:04:05Z","requests":3,"busy_threads":1,` +
		`"last_restart_reason":"memory_limit","rss_bytes":1048576}],` +
		`"requests":0,"restarts":{"crash":1},"queue_full":0,"queue_timeouts":0}`
	if string(got) != want {
		t.Errorf("JSON\n%s\nwant\n%s", got, want)
	}
}

// TestStateMoves: the moves a process may make, and only those.
func TestStateMoves(t *testing.T) {
	allowed := map[[2]State]bool{
		{Starting, Serving}: true, {Starting, Stopping}: true, {Starting, Dead}: true,
		{Serving, Draining}: true, {Serving, Stopping}: true, {Serving, Dead}: true,
		{Draining, Stopping}: true, {Draining, Dead}: true,
		{Stopping, Dead}: true,
	}
	for from := Starting; from <= Dead; from++ {
		for to := Starting; to <= Dead; to++ {
			if got := from.canBecome(to); got != allowed[[2]State{from, to}] {
				t.Errorf("%s may become %s: %t", from, to, got)
			}
		}
	}
	p := &Pool{log: zap.NewNop()}
	proc := &process{drained: make(chan struct{}), state: Draining}
	if p.moveLocked(proc, Serving) || proc.state != Draining {
		t.Errorf("a draining process went back in service: %s", proc.state)
	}
	if !p.moveLocked(proc, Stopping) {
		t.Fatal("a drained process did not stop")
	}
	select {
	case <-proc.drained:
	default:
		t.Error("stopping, drained is still open")
	}
}
