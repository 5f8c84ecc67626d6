package caddywsgi_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const metricsGlobals = `wsgi_daemon shop processes=1 threads=2 max_queue=1 python={python}
	wsgi_daemon limited processes=1 threads=1 maximum_requests=2 queue_timeout=300ms python={python}`

func metricsSite(extra string) string {
	return `:{http_port} {
	route {
		respond /extra "` + extra + `" 200
		metrics /metrics
		wsgi_script /limited {apps}/app.wsgi process_group=limited
		wsgi_script / {apps}/app.wsgi process_group=shop
	}
}`
}

// TestMetrics: every caddy_wsgi_* series on the admin endpoint's /metrics
// moves when it should, and a config reload that keeps the pools keeps
// their counts.
func TestMetrics(t *testing.T) {
	adminPort := freePort(t)
	c, err := launchCaddy(t, fmt.Sprintf("admin localhost:%d\n\t%s", adminPort, metricsGlobals), metricsSite("one"))
	if err != nil {
		t.Fatal(err)
	}
	m := scrape(t, adminPort)
	for series, want := range map[string]float64{
		`caddy_wsgi_processes{group="shop"}`:                            1,
		`caddy_wsgi_threads{group="shop"}`:                              2,
		`caddy_wsgi_busy_threads{group="shop"}`:                         0,
		`caddy_wsgi_queue_depth{group="shop"}`:                          0,
		`caddy_wsgi_queue_rejections_total{group="shop",why="full"}`:    0,
		`caddy_wsgi_queue_rejections_total{group="shop",why="timeout"}`: 0,
		`caddy_wsgi_processes{group="limited"}`:                         1,
		`caddy_wsgi_threads{group="limited"}`:                           1,
	} {
		if got, ok := m[series]; !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", series, got, ok, want)
		}
	}
	if rss := m[`caddy_wsgi_rss_bytes{group="shop"}`]; rss < 1<<20 {
		t.Errorf("caddy_wsgi_rss_bytes{group=\"shop\"} = %v, want a worker's resident memory", rss)
	}
	// Caddy's metrics handler serves the same registry.
	if _, body := get(t, plainClient, "GET", c.URL("/metrics"), nil); !strings.Contains(body, "\ncaddy_wsgi_processes{group=\"shop\"} 1\n") {
		t.Errorf("the metrics handler's page has no caddy_wsgi_processes for shop:\n%s", body)
	}

	// Requests, by the status Caddy sent, and their timings.
	for range 3 {
		get(t, plainClient, "GET", c.URL("/pid"), nil)
	}
	if res, _ := get(t, plainClient, "GET", c.URL("/error-before"), nil); res.StatusCode != 500 {
		t.Fatalf("/error-before: %d", res.StatusCode)
	}
	waitMetric(t, adminPort, `caddy_wsgi_requests_total{code="200",group="shop"}`, 3)
	waitMetric(t, adminPort, `caddy_wsgi_requests_total{code="500",group="shop"}`, 1)
	waitMetric(t, adminPort, `caddy_wsgi_request_duration_seconds_count{group="shop"}`, 4)
	waitMetric(t, adminPort, `caddy_wsgi_queue_wait_seconds_count{group="shop"}`, 4)

	// Busy threads, a queued request, and one refused by max_queue.
	release := filepath.Join(caddyDir(t), "release")
	held := []<-chan outcome{inBackground(c.URL("/wait-for-file?path=" + release)), inBackground(c.URL("/wait-for-file?path=" + release))}
	waitLogCount(t, c, 2, "waiting for "+release)
	waitMetric(t, adminPort, `caddy_wsgi_busy_threads{group="shop"}`, 2)
	held = append(held, inBackground(c.URL("/wait-for-file?path="+release)))
	waitMetric(t, adminPort, `caddy_wsgi_queue_depth{group="shop"}`, 1)
	if res, _ := get(t, plainClient, "GET", c.URL("/pid"), nil); res.StatusCode != 503 {
		t.Errorf("a request over max_queue: %d, want 503", res.StatusCode)
	}
	waitMetric(t, adminPort, `caddy_wsgi_queue_rejections_total{group="shop",why="full"}`, 1)
	waitMetric(t, adminPort, `caddy_wsgi_queue_rejections_total{group="shop",why="timeout"}`, 0)
	if err := os.WriteFile(release, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, o := range held {
		if o := <-o; o.status != 200 {
			t.Errorf("a held request: %+v", o)
		}
	}
	waitMetric(t, adminPort, `caddy_wsgi_requests_total{code="200",group="shop"}`, 6)
	waitMetric(t, adminPort, `caddy_wsgi_busy_threads{group="shop"}`, 0)
	waitMetric(t, adminPort, `caddy_wsgi_queue_depth{group="shop"}`, 0)

	// Restarts, by reason: a worker killed, and one that served its
	// maximum_requests.
	_, pid := get(t, plainClient, "GET", c.URL("/pid"), nil)
	n, _ := strconv.Atoi(pid)
	if err := syscall.Kill(n, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	c.waitLog("worker process exited; starting a new one", `"pid":`+pid, `"restart_reason":"crash"`)
	waitMetric(t, adminPort, `caddy_wsgi_process_restarts_total{group="shop",reason="crash"}`, 1)
	c.waitLog("worker process restarted", `"replaces":`+pid)
	waitMetric(t, adminPort, `caddy_wsgi_processes{group="shop"}`, 1)
	for range 2 {
		get(t, plainClient, "GET", c.URL("/limited/pid"), nil)
	}
	c.waitLog("recycling worker process", `"restart_reason":"maximum_requests"`)
	waitMetric(t, adminPort, `caddy_wsgi_process_restarts_total{group="limited",reason="maximum_requests"}`, 1)
	c.waitLog("worker process restarted", `"group":"limited"`)

	// A request refused by queue_timeout, behind one that holds the thread.
	limitedRelease := filepath.Join(caddyDir(t), "limited-release")
	limitedHeld := inBackground(c.URL("/limited/wait-for-file?path=" + limitedRelease))
	c.waitLog("waiting for " + limitedRelease)
	if res, _ := get(t, plainClient, "GET", c.URL("/limited/pid"), nil); res.StatusCode != 503 {
		t.Errorf("a request past queue_timeout: %d, want 503", res.StatusCode)
	}
	waitMetric(t, adminPort, `caddy_wsgi_queue_rejections_total{group="limited",why="timeout"}`, 1)
	if err := os.WriteFile(limitedRelease, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if o := <-limitedHeld; o.status != 200 {
		t.Errorf("the request that held the limited thread: %+v", o)
	}

	// A reload that keeps the pools keeps every count.
	before := counts(scrape(t, adminPort))
	if status, body := loadCaddyfileGlobals(t, adminPort, c.HTTPPort, metricsGlobals, metricsSite("two")); status != 200 {
		t.Fatalf("reload: %d %s", status, body)
	}
	if _, body := get(t, plainClient, "GET", c.URL("/extra"), nil); body != "two" {
		t.Fatalf("the new config is not serving: %q", body)
	}
	if _, after := get(t, plainClient, "GET", c.URL("/pid"), nil); after == pid {
		t.Fatalf("the killed worker %s still serves", pid)
	}
	after := counts(scrape(t, adminPort))
	after[`caddy_wsgi_requests_total{code="200",group="shop"}`]--
	for series, want := range before {
		if strings.Contains(series, `group="shop"`) && (strings.HasPrefix(series, "caddy_wsgi_request_duration_seconds") || strings.HasPrefix(series, "caddy_wsgi_queue_wait_seconds")) {
			continue // the request after the reload is in these
		}
		if got := after[series]; got != want {
			t.Errorf("across the reload, %s went from %v to %v", series, want, got)
		}
	}
	if got, want := after[`caddy_wsgi_request_duration_seconds_count{group="shop"}`], before[`caddy_wsgi_request_duration_seconds_count{group="shop"}`]+1; got != want {
		t.Errorf("across the reload, the request duration count went to %v, want %v", got, want)
	}
}

// counts are the series of counters and histograms among m.
func counts(m map[string]float64) map[string]float64 {
	out := make(map[string]float64)
	for series, v := range m {
		name, _, _ := strings.Cut(series, "{")
		if strings.HasSuffix(name, "_total") || strings.HasSuffix(name, "_count") || strings.HasSuffix(name, "_sum") || strings.HasSuffix(name, "_bucket") {
			out[series] = v
		}
	}
	return out
}

// scrape returns the caddy_wsgi_* series of the admin endpoint's /metrics,
// by their name and labels as the text format writes them (labels sorted).
func scrape(t *testing.T, adminPort int) map[string]float64 {
	t.Helper()
	res, body := get(t, plainClient, "GET", fmt.Sprintf("http://localhost:%d/metrics", adminPort), nil)
	if res.StatusCode != 200 {
		t.Fatalf("/metrics: %d %s", res.StatusCode, body)
	}
	m := make(map[string]float64)
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "caddy_wsgi_") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("/metrics line %q: %v", line, err)
		}
		m[line[:i]] = v
	}
	return m
}

// waitMetric waits for a series to reach want: a request's series are
// observed as its handler returns, which its client may not wait for.
func waitMetric(t *testing.T, adminPort int, series string, want float64) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		m := scrape(t, adminPort)
		if got, ok := m[series]; ok && got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s = %v, want %v; the series:\n%s", series, m[series], want, strings.Join(slices.Sorted(maps.Keys(m)), "\n"))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestAccessLogFields: a WSGI request's access log entry says which group
// and process served it, and how long it waited for a thread and then for
// the application, so that a slow request can be told apart as queueing or
// application time.
func TestAccessLogFields(t *testing.T) {
	adminPort := freePort(t)
	c, err := launchCaddy(t, fmt.Sprintf("admin localhost:%d\n\twsgi_daemon shop processes=1 threads=1 python={python}", adminPort), `:{http_port} {
	log
	wsgi_script / {apps}/app.wsgi process_group=shop
}`)
	if err != nil {
		t.Fatal(err)
	}
	release := filepath.Join(caddyDir(t), "release")
	held := inBackground(c.URL("/wait-for-file?path=" + release))
	c.waitLog("waiting for " + release)
	queued := inBackground(c.URL("/pid"))
	waitMetric(t, adminPort, `caddy_wsgi_queue_depth{group="shop"}`, 1)
	// The time both requests are measured to take: the held one in the
	// application, the queued one in the queue.
	const wait = 500 * time.Millisecond
	time.Sleep(wait)
	if err := os.WriteFile(release, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	<-held
	pid := (<-queued).body

	entry := func(uri string) map[string]any {
		t.Helper()
		var e map[string]any
		line := c.waitLog(`"logger":"http.log.access`, `"uri":"`+uri)
		if err := json.Unmarshal([]byte(line[strings.IndexByte(line, '{'):]), &e); err != nil {
			t.Fatalf("access log line %q: %v", line, err)
		}
		if e["wsgi_group"] != "shop" || fmt.Sprint(e["wsgi_pid"]) != pid {
			t.Errorf("access log entry for %s: wsgi_group %v, wsgi_pid %v; want shop, %s", uri, e["wsgi_group"], e["wsgi_pid"], pid)
		}
		return e
	}
	h, q := entry("/wait-for-file"), entry("/pid")
	seconds := func(e map[string]any, field string) float64 { v, _ := e[field].(float64); return v }
	if app, queue := seconds(h, "wsgi_app_s"), seconds(h, "wsgi_queue_s"); app < wait.Seconds() || queue >= wait.Seconds() {
		t.Errorf("the held request: wsgi_app_s %v, wsgi_queue_s %v; want the application's %v", app, queue, wait)
	}
	if app, queue := seconds(q, "wsgi_app_s"), seconds(q, "wsgi_queue_s"); queue < wait.Seconds() || app >= wait.Seconds() {
		t.Errorf("the queued request: wsgi_app_s %v, wsgi_queue_s %v; want the queue's %v", app, queue, wait)
	}
}
