package caddywsgi_test

// End-to-end tests of a daemon group's life cycle under load: script
// reloading, a killed worker, the request queue's limits, and recycling on
// maximum_requests, memory_limit and request_timeout. Each waits on signals
// (log lines, pidfds, responses), never on a guessed delay.

import (
	"errors"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// loadLoop keeps n clients, each with its own connections, requesting one
// URL back to back, and records every outcome.
type loadLoop struct {
	t       *testing.T
	stopped chan struct{}
	wg      sync.WaitGroup
	clients []*http.Client
	once    sync.Once

	mu       sync.Mutex
	changed  *sync.Cond
	ok       int            // 200 responses
	failures []string       // everything else: status or transport error, with when
	pids     map[string]int // 200 responses per body (the answering pid), since the last mark
	begun    time.Time
}

func startLoad(t *testing.T, url string, n int) *loadLoop {
	l := &loadLoop{t: t, stopped: make(chan struct{}), pids: map[string]int{}, begun: time.Now()}
	l.changed = sync.NewCond(&l.mu)
	for range n {
		client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{}}
		l.clients = append(l.clients, client)
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for {
				select {
				case <-l.stopped:
					return
				default:
				}
				res, body, err := fetch(client, "GET", url, nil)
				l.mu.Lock()
				switch {
				case err != nil:
					l.failures = append(l.failures, fmt.Sprintf("at %v: %v", time.Since(l.begun).Round(time.Millisecond), err))
				case res.StatusCode != 200:
					l.failures = append(l.failures, fmt.Sprintf("at %v: %d %q", time.Since(l.begun).Round(time.Millisecond), res.StatusCode, body))
				default:
					l.ok++
					l.pids[body]++
				}
				l.changed.Broadcast()
				l.mu.Unlock()
			}
		}()
	}
	// Before Caddy's own clean-up, whose graceful shutdown waits for
	// keep-alive connections.
	t.Cleanup(l.stop)
	return l
}

// stop ends the load once the requests in flight are answered.
func (l *loadLoop) stop() {
	l.once.Do(func() {
		close(l.stopped)
		l.wg.Wait()
		for _, c := range l.clients {
			c.CloseIdleConnections()
		}
	})
}

// waitUntil waits up to timeout for cond, checked under the loop's lock
// after every response.
func (l *loadLoop) waitUntil(what string, timeout time.Duration, cond func() bool) {
	l.t.Helper()
	deadline := time.Now().Add(timeout)
	timer := time.AfterFunc(timeout, func() {
		l.mu.Lock()
		l.changed.Broadcast()
		l.mu.Unlock()
	})
	defer timer.Stop()
	l.mu.Lock()
	defer l.mu.Unlock()
	for !cond() {
		if time.Now().After(deadline) {
			l.t.Fatalf("load: not %s within %v (%d ok, failures %q, pids %v)", what, timeout, l.ok, l.failures, l.pids)
		}
		l.changed.Wait()
	}
}

// mark returns the pids that answered since the last mark, and starts
// afresh.
func (l *loadLoop) mark() map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	pids := l.pids
	l.pids = map[string]int{}
	return pids
}

func (l *loadLoop) counts() (ok int, failures []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ok, slices.Clone(l.failures)
}

// exitWatch is a pidfd on a process that is not the test's child: it
// becomes readable when the process exits.
type exitWatch struct {
	pid, fd int
}

func watchExit(t *testing.T, pid int) exitWatch {
	t.Helper()
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		t.Fatalf("pidfd_open(%d): %v", pid, err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return exitWatch{pid, fd}
}

// exited waits up to timeout for the process to exit.
func (w exitWatch) exited(timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		ms := max(int(time.Until(deadline).Milliseconds()), 0)
		n, err := unix.Poll([]unix.PollFd{{Fd: int32(w.fd), Events: unix.POLLIN}}, ms)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		return err == nil && n == 1
	}
}

func (w exitWatch) running() bool { return !w.exited(0) }

func mustExit(t *testing.T, w exitWatch, timeout time.Duration, what string) {
	t.Helper()
	if !w.exited(timeout) {
		t.Fatalf("%s: process %d still running %v later", what, w.pid, timeout)
	}
}

func pidField(pid int) string { return fmt.Sprintf(`"pid":%d`, pid) }

func keys(m map[string]int) []string { return slices.Sorted(maps.Keys(m)) }

// TestScriptTouchReloadUnderLoad: touching the WSGI script replaces every
// process while 8 clients keep requesting, without one failed request.
func TestScriptTouchReloadUnderLoad(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "app.wsgi")
	src, err := os.ReadFile(filepath.Join(appsDir(t), "app.wsgi"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(script, src, 0o644); err != nil {
		t.Fatal(err)
	}
	c := startCaddy(t, fmt.Sprintf(`:{http_port} {
	wsgi_script / %s {
		python {python}
		processes 2
		threads 2
	}
}`, script))
	old := workerPIDs(t, c)
	if len(old) != 2 {
		t.Fatalf("worker processes %v, want 2", old)
	}
	var watches []exitWatch
	for _, pid := range old {
		watches = append(watches, watchExit(t, pid))
	}

	l := startLoad(t, c.URL("/pid"), 8)
	l.waitUntil("answered by both processes", 10*time.Second, func() bool { return len(l.pids) == 2 })
	before := l.mark()
	for _, pid := range old {
		if before[strconv.Itoa(pid)] == 0 {
			t.Fatalf("before the touch the load saw pids %v, the workers are %v", keys(before), old)
		}
	}

	info, err := os.Stat(script)
	if err != nil {
		t.Fatal(err)
	}
	touched := time.Now()
	if err := os.Chtimes(script, touched, info.ModTime().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	c.waitLog("reloading the application", "script changed")
	for _, w := range watches {
		c.waitLog("recycling worker process", pidField(w.pid), "script changed")
		mustExit(t, w, 10*time.Second, "an old process after the reload")
		c.waitLog("recycled worker process exited", pidField(w.pid))
	}
	reloaded := time.Since(touched)

	// From now on only the new processes can answer: wait until both have.
	l.mark()
	l.waitUntil("answered by two new processes", 10*time.Second, func() bool { return len(l.pids) == 2 })
	l.stop()
	after := l.mark()
	ok, failures := l.counts()
	for _, pid := range old {
		if after[strconv.Itoa(pid)] > 0 {
			t.Errorf("old pid %d answered after it exited", pid)
		}
	}
	for _, pid := range keys(after) {
		n, _ := strconv.Atoi(pid)
		if cwd, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", n)); err != nil || cwd != dir {
			t.Errorf("new worker %d runs in %q (%v), want the script's directory %s", n, cwd, err, dir)
		}
	}
	if len(failures) > 0 {
		t.Errorf("%d of %d requests failed across the reload: %q", len(failures), ok+len(failures), failures)
	}
	if ok < 300 {
		t.Errorf("only %d requests made: the load proves little", ok)
	}
	t.Logf("%d requests, none failed; old pids %v, new %v; reload done %v after the touch", ok, old, keys(after), reloaded.Round(time.Millisecond))
}

var sleepingPID = regexp.MustCompile(`sleeping for \d+ ms in pid (\d+)`)

// TestKillUnderLoad: kill -9 of one of two processes under load costs only
// the requests in flight on it; the other's all succeed, a replacement
// starts, and nothing fails after that.
func TestKillUnderLoad(t *testing.T) {
	const threads = 2
	c := startCaddy(t, fmt.Sprintf(`:{http_port} {
	wsgi_script / {apps}/app.wsgi {
		python {python}
		processes 2
		threads %d
	}
}`, threads))

	// A long request on each process: the pool hands a request to the
	// least busy process, so the second goes to the other one.
	sleep1 := inBackground(c.URL("/sleep?ms=2000"))
	victim, _ := strconv.Atoi(sleepingPID.FindStringSubmatch(c.waitLog("sleeping for 2000 ms in pid"))[1])
	sleep2 := inBackground(c.URL("/sleep?ms=2000"))
	var survivor int
	for _, pid := range workerPIDs(t, c) {
		if pid != victim {
			survivor = pid
		}
	}
	c.waitLog("sleeping for 2000 ms in pid " + strconv.Itoa(survivor) + " ")

	l := startLoad(t, c.URL("/pid"), 8)
	v, s := strconv.Itoa(victim), strconv.Itoa(survivor)
	l.waitUntil("answered by both processes", 10*time.Second, func() bool { return l.pids[v] > 20 && l.pids[s] > 20 })
	killed := watchExit(t, victim)
	if err := unix.Kill(victim, unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	mustExit(t, killed, 5*time.Second, "kill -9")
	if o := <-sleep1; o.status != 502 {
		t.Errorf("the /sleep in flight on the killed process: %+v, want 502", o)
	}
	line := c.waitLog("worker process restarted", fmt.Sprintf(`"replaces":%d`, victim))
	_, failedBeforeRestart := l.counts()
	replacement := regexp.MustCompile(`"pid":(\d+)`).FindStringSubmatch(line)[1]

	// The load goes on, on the survivor and the replacement.
	l.mark()
	l.waitUntil("answered by the replacement", 10*time.Second, func() bool { return l.pids[replacement] > 50 && l.pids[s] > 50 })
	if o := <-sleep2; o.status != 200 || o.body != "slept" {
		t.Errorf("the /sleep on the other process: %+v, want 200 slept", o)
	}
	l.stop()
	ok, failures := l.counts()

	// On the killed process one thread ran the /sleep, so at most one /pid
	// request was in flight on it at the kill.
	if len(failures) > threads-1 {
		t.Errorf("%d load requests failed, more than the %d that could be in flight on the killed process: %q", len(failures), threads-1, failures)
	}
	if len(failures) > len(failedBeforeRestart) {
		t.Errorf("load requests failed after the replacement started: %q", failures[len(failedBeforeRestart):])
	}
	if got := l.mark()[v]; got > 0 {
		t.Errorf("the killed pid answered %d requests after the restart", got)
	}
	// Every failure Caddy logged was on the killed process.
	c.waitLog("worker failed while handling the request", pidField(victim), `"uri":"/sleep?ms=2000"`)
	for _, line := range strings.Split(c.Log.String(), "\n") {
		if strings.Contains(line, "worker failed while handling the request") && !strings.Contains(line, pidField(victim)) {
			t.Errorf("a request failed on a process that was not killed: %s", line)
		}
	}
	t.Logf("%d requests ok, %d failed at the kill (%q); pid %d replaced by %s", ok, len(failures), failures, victim, replacement)
}

// TestOverloadQueue: with the only thread busy and max_queue requests
// waiting, a further request gets 503 with Retry-After at once; the waiting
// ones are served if the thread frees within queue_timeout, and get 503 when
// it passes if not.
func TestOverloadQueue(t *testing.T) {
	c := startCaddy(t, `:{http_port} {
	wsgi_script / {apps}/app.wsgi {
		python {python}
		processes 1
		threads 1
		max_queue 2
		queue_timeout 500ms
	}
}`)
	_, pid := get(t, plainClient, "GET", c.URL("/pid"), nil)

	type result struct {
		status     int
		retryAfter string
		body       string
		elapsed    time.Duration
		err        error
	}
	// overload holds the thread with a /sleep of ms, then sends three
	// requests at once: two join the line, one finds it full.
	overload := func(ms int) (fast result, queued []result) {
		t.Helper()
		hold := inBackground(c.URL(fmt.Sprintf("/sleep?ms=%d", ms)))
		c.waitLog(fmt.Sprintf("sleeping for %d ms", ms))
		results := make(chan result, 3)
		for range 3 {
			go func() {
				start := time.Now()
				res, body, err := fetch(plainClient, "GET", c.URL("/pid"), nil)
				r := result{body: body, err: err, elapsed: time.Since(start)}
				if res != nil {
					r.status, r.retryAfter = res.StatusCode, res.Header.Get("Retry-After")
				}
				results <- r
			}()
		}
		var all []result
		for range 3 {
			all = append(all, <-results)
		}
		if o := <-hold; o.status != 200 || o.body != "slept" {
			t.Errorf("the request holding the thread: %+v", o)
		}
		// The first to answer is the one that found the line full.
		slices.SortFunc(all, func(a, b result) int { return int(a.elapsed - b.elapsed) })
		return all[0], all[1:]
	}

	checkFast := func(r result) {
		t.Helper()
		if r.err != nil || r.status != 503 || r.retryAfter != "1" {
			t.Errorf("the request over max_queue: %+v, want 503 with Retry-After: 1", r)
		}
		// At once: well within queue_timeout, which it must not wait for.
		if r.elapsed > 250*time.Millisecond {
			t.Errorf("the request over max_queue took %v to be refused", r.elapsed)
		}
	}

	// The thread frees 250ms into the requests' 500ms queue_timeout: both
	// waiting requests are served.
	fast, queued := overload(250)
	checkFast(fast)
	for _, r := range queued {
		if r.err != nil || r.status != 200 || r.body != pid {
			t.Errorf("a waiting request, the thread freed within queue_timeout: %+v, want 200 from pid %s", r, pid)
		}
	}
	t.Logf("thread freed in time: refused in %v, served in %v and %v", fast.elapsed, queued[0].elapsed, queued[1].elapsed)

	// The thread stays busy past queue_timeout: both waiting requests get
	// 503 once it passes, and not before.
	fast, queued = overload(1500)
	checkFast(fast)
	for _, r := range queued {
		if r.err != nil || r.status != 503 || r.retryAfter != "1" {
			t.Errorf("a waiting request past queue_timeout: %+v, want 503 with Retry-After: 1", r)
		}
		if r.elapsed < 500*time.Millisecond || r.elapsed > 1400*time.Millisecond {
			t.Errorf("a waiting request got its 503 after %v, want queue_timeout (500ms)", r.elapsed)
		}
	}
	t.Logf("thread busy too long: refused in %v, timed out in %v and %v", fast.elapsed, queued[0].elapsed, queued[1].elapsed)

	// Then the thread serves again.
	if res, body := get(t, plainClient, "GET", c.URL("/pid"), nil); res.StatusCode != 200 || body != pid {
		t.Errorf("after the overload: %d %q", res.StatusCode, body)
	}
}

// TestMaximumRequests: a process is recycled after maximum_requests, and the
// requests that follow go to its replacement without one failing, whether
// they come one by one or at once.
func TestMaximumRequests(t *testing.T) {
	c := startCaddy(t, `:{http_port} {
	wsgi_script / {apps}/app.wsgi {
		python {python}
		processes 1
		threads 2
		maximum_requests 5
	}
}`)
	var pids []string
	for i := range 12 {
		res, body := get(t, plainClient, "GET", c.URL("/pid"), nil)
		if res.StatusCode != 200 {
			t.Fatalf("request %d: %d %q", i+1, res.StatusCode, body)
		}
		pids = append(pids, body)
	}
	first, second, third := pids[0], pids[5], pids[10]
	for i, pid := range pids {
		if want := pids[i/5*5]; pid != want {
			t.Errorf("request %d from pid %s, want %s: pids %v", i+1, pid, want, pids)
		}
	}
	if first == second || second == third || first == third {
		t.Errorf("each run of 5 requests should come from a new process: %v", pids)
	}
	p1, _ := strconv.Atoi(first)
	c.waitLog("recycling worker process", pidField(p1), "maximum_requests reached (5)")
	c.waitLog("recycled worker process exited", pidField(p1))

	// At once: 40 requests from 4 clients; no process takes more than 5.
	l := startLoad(t, c.URL("/pid"), 4)
	l.waitUntil("40 requests answered", 20*time.Second, func() bool { return l.ok+len(l.failures) >= 40 })
	l.stop()
	ok, failures := l.counts()
	if len(failures) > 0 {
		t.Errorf("%d of %d requests failed: %q", len(failures), ok+len(failures), failures)
	}
	served := l.mark()
	for pid, n := range served {
		if n > 5 {
			t.Errorf("pid %s served %d requests, over maximum_requests", pid, n)
		}
	}
}

// TestMemoryLimit: a process whose memory passes memory_limit is recycled,
// while requests go on succeeding.
func TestMemoryLimit(t *testing.T) {
	c := startCaddy(t, `:{http_port} {
	wsgi_script / {apps}/app.wsgi {
		python {python}
		processes 1
		threads 2
		memory_limit 80MB
	}
}`)
	_, oldPID := get(t, plainClient, "GET", c.URL("/pid"), nil)
	pid, _ := strconv.Atoi(oldPID)
	if rss := procStatusField(t, pid, "VmRSS:") << 10; rss > 60<<20 {
		t.Fatalf("the worker starts with %d MiB resident: too close to the limit for this test", rss>>20)
	}
	old := watchExit(t, pid)

	l := startLoad(t, c.URL("/pid"), 2)
	l.waitUntil("answering", 10*time.Second, func() bool { return l.ok > 20 })
	// 100 MiB more, two requests of 50: well over the limit.
	for range 2 {
		res, body := get(t, plainClient, "GET", c.URL("/grow?mb=50"), nil)
		if res.StatusCode != 200 || !strings.HasPrefix(body, strconv.Itoa(pid)+" ") {
			t.Fatalf("/grow: %d %q (pid %d)", res.StatusCode, body, pid)
		}
	}
	c.waitLog("recycling worker process", pidField(pid), "memory_limit: rss", "over 76 MiB")
	mustExit(t, old, 10*time.Second, "the process over memory_limit")
	c.waitLog("recycled worker process exited", pidField(pid))
	l.mark()
	l.waitUntil("answered by the replacement", 10*time.Second, func() bool { return l.ok > 0 && len(l.pids) == 1 && l.pids[oldPID] == 0 && sum(l.pids) > 20 })
	l.stop()
	ok, failures := l.counts()
	if len(failures) > 0 {
		t.Errorf("%d of %d requests failed across the recycle: %q", len(failures), ok+len(failures), failures)
	}
	after := keys(l.mark())
	if len(after) != 1 || after[0] == oldPID {
		t.Errorf("after the recycle, answered by %v; the old pid was %d", after, pid)
	}
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// TestRequestTimeoutGraceful: a request over request_timeout gets 504 and
// its process is recycled gracefully, with request_timeout as the reason:
// another request in flight on it completes, and later requests go to a new
// process.
//
// request_timeout bounds every request from the moment it is handed to a
// thread, so the other request must itself finish within it, yet still be
// running when the first one times out: it starts half a request_timeout
// after the first, and answers when the test, having seen the 504, creates
// the file it waits for.
func TestRequestTimeoutGraceful(t *testing.T) {
	const timeout = time.Second
	c := startCaddy(t, fmt.Sprintf(`:{http_port} {
	wsgi_script / {apps}/app.wsgi {
		python {python}
		processes 1
		threads 2
		request_timeout %v
		graceful_timeout 3s
	}
}`, timeout))
	_, pid := get(t, plainClient, "GET", c.URL("/pid"), nil)
	p, _ := strconv.Atoi(pid)
	old := watchExit(t, p)

	// Its Python thread goes on sleeping after the 504, until 1.5s.
	long := inBackground(c.URL("/sleep?ms=1500"))
	c.waitLog("sleeping for 1500 ms in pid " + pid + " ")
	// Not a synchronisation: the offset between the two requests' deadlines.
	time.Sleep(timeout / 2)
	signal := filepath.Join(t.TempDir(), "timed-out")
	other := inBackground(c.URL("/wait-for-file?path=" + signal))
	c.waitLog("waiting for " + signal + " in pid " + pid + `"`)

	if o := <-long; o.status != 504 {
		t.Errorf("the request over request_timeout: %+v, want 504", o)
	}
	if err := os.WriteFile(signal, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	c.waitLog("request_timeout passed; recycling the worker process", `"uri":"/sleep?ms=1500"`, pidField(p))
	// The log says why the process is recycled: request_timeout, not a
	// protocol fault.
	c.waitLog("recycling worker process", pidField(p), `"reason":"request_timeout"`)
	if o := <-other; o.status != 200 || o.body != "appeared" {
		t.Errorf("the request in flight on the recycled process: %+v, want 200 appeared", o)
	}

	res, after := get(t, plainClient, "GET", c.URL("/pid"), nil)
	if res.StatusCode != 200 || after == pid {
		t.Errorf("after the recycle: %d from pid %s (the old one was %s)", res.StatusCode, after, pid)
	}
	mustExit(t, old, 5*time.Second, "the recycled process")
	c.waitLog("recycled worker process exited", pidField(p))
	if strings.Contains(c.Log.String(), "graceful timeout; killing it") {
		t.Errorf("the recycled process was killed at graceful_timeout")
	}
}

// TestCrashMidRequestLoggedAsCrash: a worker killed while it serves a
// request is logged as the README says a crash is, "worker process exited;
// starting a new one" with the signal, at error level; not as a routine
// recycle.
func TestCrashMidRequestLoggedAsCrash(t *testing.T) {
	c := startCaddy(t, `:{http_port} {
	wsgi_script / {apps}/app.wsgi {
		python {python}
		threads 2
	}
}`)
	sleeping := inBackground(c.URL("/sleep?ms=5000"))
	pid, _ := strconv.Atoi(sleepingPID.FindStringSubmatch(c.waitLog("sleeping for 5000 ms in pid"))[1])
	if err := unix.Kill(pid, unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if o := <-sleeping; o.status != 502 {
		t.Errorf("the request on the killed worker: %+v, want 502", o)
	}
	c.waitLog("worker process restarted", fmt.Sprintf(`"replaces":%d`, pid))
	// Either way the exit is logged, before or after the restart.
	line := c.waitLog("worker process exited", pidField(pid))
	if !strings.Contains(line, `"level":"error"`) || !strings.Contains(line, "worker process exited; starting a new one") ||
		!strings.Contains(line, "killed by SIGKILL") {
		t.Errorf("the crash is logged as:\n%s", line)
	}
	for _, l := range strings.Split(c.Log.String(), "\n") {
		if strings.Contains(l, "recycling worker process") && strings.Contains(l, pidField(pid)) {
			t.Errorf("the crashed process is logged as recycled:\n%s", l)
		}
	}
}
