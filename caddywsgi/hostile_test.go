package caddywsgi_test

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// hostileSite serves testdata/apps/hostile.wsgi from one single-thread
// process, so that every request uses the same connection until the
// process is recycled, and with the extra site blocks given.
func hostileSite(extra string) string {
	return `:{http_port} {
	wsgi_script / {apps}/hostile.wsgi {
		python {python}
		processes 1
		threads 1
	}
}
` + extra
}

// hostileFiles writes files the workers can read, each holding its own name
// repeated, and returns their paths by name.
func hostileFiles(t *testing.T, names ...string) map[string]string {
	dir := caddyDir(t)
	paths := make(map[string]string)
	for _, name := range names {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(strings.Repeat(name, 1000)), 0o644); err != nil {
			t.Fatal(err)
		}
		paths[name] = p
	}
	return paths
}

// openFDs counts the descriptors a process has open.
func openFDs(t *testing.T, pid int) int {
	t.Helper()
	entries, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}

// waitFDs waits until Caddy holds at most limit descriptors: processes
// recycled a moment ago may still be exiting.
func waitFDs(t *testing.T, c *caddy, limit int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		n := openFDs(t, c.cmd.Process.Pid)
		if n <= limit {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Caddy holds %d descriptors, want at most %d", n, limit)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func fileURL(c *caddy, route, path string, extra ...string) string {
	return c.URL(route + "?path=" + url.QueryEscape(path) + strings.Join(extra, ""))
}

// TestDescriptorOnlyWithResponseFile: a descriptor that comes with a LOG
// frame, or a second one with a RESPONSE_FILE frame, is closed at once and
// recycles the process: it is never sent as a later response's file, and
// Caddy's descriptors do not grow.
func TestDescriptorOnlyWithResponseFile(t *testing.T) {
	files := hostileFiles(t, "A", "B", "C")
	c := startCaddy(t, hostileSite(""))
	serves := func(name string) {
		t.Helper()
		res, body := get(t, plainClient, "GET", fileURL(c, "/file", files[name]), nil)
		if res.StatusCode != 200 || body != strings.Repeat(name, 1000) {
			t.Errorf("file %s: %d, %.20q... (%d bytes)", name, res.StatusCode, body, len(body))
		}
	}
	serves("A")
	before := openFDs(t, c.cmd.Process.Pid)

	for range 12 {
		if res, body := get(t, plainClient, "GET", fileURL(c, "/log-fd", files["B"]), nil); res.StatusCode != 502 {
			t.Errorf("a descriptor with a LOG frame: %d %q, want 502", res.StatusCode, body)
		}
		serves("C")
	}
	if res, body := get(t, plainClient, "GET", fileURL(c, "/file-two-fds", files["B"]), nil); res.StatusCode != 502 {
		t.Errorf("RESPONSE_FILE with two descriptors: %d %q, want 502", res.StatusCode, body)
	}
	serves("C")
	serves("A")
	waitFDs(t, c, before+3)
	c.waitLog("worker failed while handling the request", "a file descriptor arrived with a LOG frame", `"uri":"/log-fd`)
	c.waitLog("recycling worker process", "connection out of step")
	c.waitLog("worker failed while handling the request", "more than one file descriptor in one message", `"uri":"/file-two-fds`)
}

// TestDescriptorBurst: a worker that sends descriptor after descriptor
// cannot make Caddy hold them: the first is a violation, and the rest die
// with the connection. Another site goes on answering.
func TestDescriptorBurst(t *testing.T) {
	files := hostileFiles(t, "A")
	otherPort := freePort(t)
	c := startCaddy(t, hostileSite(fmt.Sprintf(":%d {\n\trespond \"other site\"\n}\n", otherPort)))
	get(t, plainClient, "GET", c.URL("/pid"), nil)
	before := openFDs(t, c.cmd.Process.Pid)

	if res, body := get(t, plainClient, "GET", fileURL(c, "/burst", files["A"], "&n=3000"), nil); res.StatusCode != 502 {
		t.Errorf("a burst of descriptors: %d %q, want 502", res.StatusCode, body)
	}
	n := openFDs(t, c.cmd.Process.Pid)
	if n > before+20 {
		t.Errorf("Caddy holds %d descriptors after the burst, %d before", n, before)
	}
	t.Logf("Caddy holds %d descriptors after the burst, %d before", n, before)
	c.waitLog("worker failed while handling the request", "more than one file descriptor in one message", `"uri":"/burst`)

	var wg sync.WaitGroup
	failures := make(chan string, 40)
	for range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, body, err := fetch(plainClient, "GET", fmt.Sprintf("http://127.0.0.1:%d/", otherPort), nil)
			if err != nil || res.StatusCode != 200 || body != "other site" {
				failures <- fmt.Sprintf("%v %v %q", res, err, body)
			}
		}()
	}
	wg.Wait()
	close(failures)
	for f := range failures {
		t.Errorf("the other site: %s", f)
	}
	res, body := get(t, plainClient, "GET", fileURL(c, "/file", files["A"]), nil)
	if res.StatusCode != 200 || body != strings.Repeat("A", 1000) {
		t.Errorf("after the burst: %d %.20q", res.StatusCode, body)
	}
}

// TestResponseFileNotRegular: an eventfd or a pipe passed as the response's
// file would block the handler forever: Caddy answers 500 at once, logs it
// and recycles the process.
func TestResponseFileNotRegular(t *testing.T) {
	files := hostileFiles(t, "A")
	c := startCaddy(t, hostileSite(""))
	client := &http.Client{Timeout: 10 * time.Second}
	for _, tc := range []struct{ kind, logged string }{
		{"eventfd", "descriptor of no file type, such as an eventfd"},
		{"pipe", "pipe or FIFO"},
	} {
		_, pid := get(t, client, "GET", c.URL("/pid"), nil)
		start := time.Now()
		res, body, err := fetch(client, "GET", fileURL(c, "/file-not-regular", files["A"], "&kind="+tc.kind), nil)
		if err != nil {
			t.Fatalf("%s as the response's file: %v", tc.kind, err)
		}
		if res.StatusCode != 500 || time.Since(start) > 5*time.Second {
			t.Errorf("%s as the response's file: %d %q after %s, want 500 at once", tc.kind, res.StatusCode, body, time.Since(start))
		}
		c.waitLog("worker failed while handling the request", "the wsgi.file_wrapper descriptor is not a regular file", tc.logged)
		c.waitLog("recycling worker process", `"pid":`+pid, "connection out of step")
		res, body = get(t, client, "GET", fileURL(c, "/file", files["A"]), nil)
		if res.StatusCode != 200 || body != strings.Repeat("A", 1000) {
			t.Errorf("after the %s: %d %.20q", tc.kind, res.StatusCode, body)
		}
	}
}

// TestResponseFileAfterLargeHead: the descriptor travels with its frame
// alone, so that it arrives with it however large the response head before.
func TestResponseFileAfterLargeHead(t *testing.T) {
	files := hostileFiles(t, "A")
	c := startCaddy(t, hostileSite(""))
	res, body := get(t, plainClient, "GET", fileURL(c, "/file", files["A"], "&pad=200000"), nil)
	if res.StatusCode != 200 || body != strings.Repeat("A", 1000) || len(res.Header.Get("X-Pad")) != 200000 {
		t.Errorf("a file after a head of 200 kB: %d %.20q", res.StatusCode, body)
	}
}

// TestRequestTimeoutBoundsWritesToWorker: a worker that asks for request
// body and reads none of it cannot hold Caddy's handler past
// request_timeout, blocked writing to it.
func TestRequestTimeoutBoundsWritesToWorker(t *testing.T) {
	c := startCaddy(t, `:{http_port} {
	wsgi_script / {apps}/hostile.wsgi {
		python {python}
		request_timeout 2s
	}
}`)
	client := &http.Client{Timeout: 15 * time.Second}
	start := time.Now()
	res, _, err := fetch(client, "POST", c.URL("/ask-body"), strings.NewReader(strings.Repeat("x", 8<<20)))
	if err != nil {
		t.Fatalf("a request whose worker reads no body: %v after %s", err, time.Since(start))
	}
	if res.StatusCode != 504 || time.Since(start) > 6*time.Second {
		t.Errorf("a request whose worker reads no body: %d after %s, want 504 after request_timeout", res.StatusCode, time.Since(start))
	}
	c.waitLog("request_timeout passed; recycling the worker process", `"uri":"/ask-body"`)
}
