package caddywsgi_test

import (
	"fmt"
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// stuckSite serves hostile.wsgi, whose /stuck never answers, with short
// graceful and shutdown timeouts, and a route outside the application.
func stuckSite(extra string) string {
	return fmt.Sprintf(`:{http_port} {
	route {
		respond /extra %q 200
		wsgi_script / {apps}/hostile.wsgi {
			python {python}
			graceful_timeout 2s
			shutdown_timeout 1s
		}
	}
}`, extra)
}

// endsWithin waits for a request made with inBackground to end.
func endsWithin(t *testing.T, o <-chan outcome, d time.Duration, what string) outcome {
	t.Helper()
	select {
	case res := <-o:
		return res
	case <-time.After(d):
		t.Fatalf("%s: the stuck request still runs after %s", what, d)
		return outcome{}
	}
}

// TestShutdownWithStuckRequest: SIGTERM ends Caddy within graceful_timeout
// and shutdown_timeout, whatever the application does, and whichever of its
// HTTP and wsgi apps Caddy happens to stop first (in map order, so several
// runs).
func TestShutdownWithStuckRequest(t *testing.T) {
	for run := range 5 {
		c := startCaddy(t, stuckSite("one"))
		stuck, _ := stuckIn(t, c, fmt.Sprint(run))
		start := time.Now()
		c.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-c.exited:
		case <-time.After(10 * time.Second):
			t.Fatalf("run %d: Caddy still runs 10s after SIGTERM with a stuck request", run)
		}
		o := endsWithin(t, stuck, 5*time.Second, "after Caddy exited")
		t.Logf("run %d: Caddy exited %s after SIGTERM; the stuck request got %d %v", run, time.Since(start).Round(time.Millisecond), o.status, o.err)
	}
}

// TestReloadWithStuckRequest: a config reload ends the old config's
// requests within graceful_timeout and shutdown_timeout too, whether it
// removes their group or keeps its pool, and completes at once.
func TestReloadWithStuckRequest(t *testing.T) {
	adminPort := freePort(t)
	c, err := launchCaddy(t, fmt.Sprintf("admin localhost:%d", adminPort), stuckSite("one"))
	if err != nil {
		t.Fatal(err)
	}
	load := func(config string) {
		t.Helper()
		start := time.Now()
		if status, body := loadCaddyfile(t, adminPort, c.HTTPPort, config); status != 200 {
			t.Fatalf("reload: %d %s", status, body)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("the reload took %s", d)
		}
	}

	// The pool stays: the old server's request is broken off after
	// graceful_timeout, and its process recycled.
	stuck, pid := stuckIn(t, c, "kept")
	load(stuckSite("two"))
	if _, body := get(t, plainClient, "GET", c.URL("/extra"), nil); body != "two" {
		t.Fatalf("the new config is not serving: %q", body)
	}
	if o := endsWithin(t, stuck, 10*time.Second, "reload keeping the pool"); o.status != 503 {
		t.Errorf("the stuck request across a reload: %+v, want 503", o)
	}
	c.waitLog("the server is shutting down and the request ran past graceful_timeout", `"uri":"/stuck?tag=kept"`)
	c.waitLog("recycling worker process", fmt.Sprintf(`"pid":%d`, pid))
	if _, body := get(t, plainClient, "GET", c.URL("/pid"), nil); body == fmt.Sprint(pid) {
		t.Errorf("the stuck process %d still serves", pid)
	}

	// The group goes.
	stuck, _ = stuckIn(t, c, "removed")
	load(":{http_port} {\n\trespond \"no wsgi\" 200\n}")
	if _, body := get(t, plainClient, "GET", c.URL("/pid"), nil); body != "no wsgi" {
		t.Errorf("after removing the application: %q", body)
	}
	o := endsWithin(t, stuck, 10*time.Second, "reload removing the group")
	t.Logf("the stuck request of a removed group got %d %v", o.status, o.err)
}

var stuckPID = regexp.MustCompile(`stuck \S+ in pid (\d+)`)

// stuckIn makes a request to hostile.wsgi's /stuck, which never answers,
// and returns it and the pid of the process it is stuck in.
func stuckIn(t *testing.T, c *caddy, tag string) (<-chan outcome, int) {
	t.Helper()
	o := inBackground(c.URL("/stuck?tag=" + tag))
	pid, _ := strconv.Atoi(stuckPID.FindStringSubmatch(c.waitLog("stuck " + tag + " in pid"))[1])
	return o, pid
}

// TestReloadWithQueuedRequest: a request still waiting for a worker thread
// when its server's graceful_timeout runs out gets a 503 and never reaches
// the application. Here the only thread is stuck and a reload keeps the
// pool: before, the waiting request went to the stuck process's
// replacement, was broken off there at once, and had that process recycled
// too.
func TestReloadWithQueuedRequest(t *testing.T) {
	adminPort := freePort(t)
	admin := fmt.Sprintf("http://localhost:%d", adminPort)
	site := func(extra string) string {
		return fmt.Sprintf(`:{http_port} {
	route {
		respond /extra %q 200
		wsgi_script / {apps}/hostile.wsgi {
			python {python}
			processes 1
			threads 1
			graceful_timeout 2s
			shutdown_timeout 1s
		}
	}
}`, extra)
	}
	c, err := launchCaddy(t, fmt.Sprintf("admin localhost:%d", adminPort), site("one"))
	if err != nil {
		t.Fatal(err)
	}
	stuck, _ := stuckIn(t, c, "first")
	queued := inBackground(c.URL("/stuck?tag=queued"))
	waitQueueDepth(t, admin, 1)

	if status, body := loadCaddyfile(t, adminPort, c.HTTPPort, site("two")); status != 200 {
		t.Fatalf("reload: %d %s", status, body)
	}
	if o := endsWithin(t, queued, 10*time.Second, "the queued request"); o.status != 503 {
		t.Errorf("the request waiting for a thread across the reload: %+v, want 503", o)
	}
	c.waitLog("waited past graceful_timeout for a worker thread; it was not sent to the application", `"uri":"/stuck?tag=queued"`)
	if o := endsWithin(t, stuck, 10*time.Second, "the stuck request"); o.status != 503 {
		t.Errorf("the stuck request across the reload: %+v, want 503", o)
	}
	// The pool serves the new config's requests, and the application never
	// saw the one that waited.
	if _, body := get(t, plainClient, "GET", c.URL("/pid"), nil); body == "" {
		t.Error("no answer after the reload")
	}
	if line, ok := c.Log.wait("stuck queued in pid", 0); ok {
		t.Errorf("the request that waited reached the application: %s", line)
	}
}

// waitQueueDepth waits until the only group's line, as the admin API
// reports it, holds depth requests.
func waitQueueDepth(t *testing.T, admin string, depth int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		groups := decodeGroups(t, admin+"/wsgi/groups", nil)
		if len(groups) != 1 {
			t.Fatalf("want one group, got %v", groups)
		}
		for _, g := range groups {
			if g.QueueDepth == depth {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("queue depth %d after 20s, want %d", g.QueueDepth, depth)
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
}
