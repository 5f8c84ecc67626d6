package caddywsgi_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestReloadOnChangesAfterFailedReload: with reload_on_changes and two
// processes, an edit that breaks a module reloads once, the reload fails and
// the old processes keep serving; saving the fix reloads again, and the fixed
// code is served.
func TestReloadOnChangesAfterFailedReload(t *testing.T) {
	dir := caddyDir(t)
	module := filepath.Join(dir, "greeting.py")
	replaceFile(t, module, "TEXT = 'before'\n", time.Now())
	replaceFile(t, filepath.Join(dir, "app.wsgi"), "import greeting\n\n\ndef application(environ, start_response):\n"+
		"    start_response('200 OK', [('Content-Type', 'text/plain')])\n"+
		"    return [greeting.TEXT.encode()]\n", time.Now())
	c := startCaddy(t, fmt.Sprintf(`:{http_port} {
	wsgi_script / %s/app.wsgi {
		python {python}
		processes 2
		threads 1
		reload_on_changes on
	}
}`, dir))
	if _, body := get(t, plainClient, "GET", c.URL("/"), nil); body != "before" {
		t.Fatalf("before the change: %q", body)
	}

	// Each process notices each change: one reload, and one notice that is
	// not news.
	replaceFile(t, module, "TEXT = (\n", time.Now().Add(time.Minute))
	waitLogCount(t, c, 2, "could not reload the application", "greeting.py")
	waitLogCount(t, c, 1, "source change already being reloaded")
	for range 4 {
		if res, body := get(t, plainClient, "GET", c.URL("/"), nil); res.StatusCode != 200 || body != "before" {
			t.Fatalf("after the failed reload: %d %q", res.StatusCode, body)
		}
	}

	replaceFile(t, module, "TEXT = 'after'\n", time.Now().Add(2*time.Minute))
	// Whether the second old process notices this change before the reload
	// replaces it is a race: only the reload itself is certain.
	waitLogCount(t, c, 2, "recycling worker process", "source changed: "+module)
	for range 4 {
		if res, body := get(t, plainClient, "GET", c.URL("/"), nil); res.StatusCode != 200 || body != "after" {
			t.Fatalf("after the fix: %d %q", res.StatusCode, body)
		}
	}
	if n := countLog(c, "reloading the application"); n != 2 {
		t.Errorf("%d reloads for two changes", n)
	}
}

// replaceFile gives path the content and modification time at once, as an
// editor saving through a temporary file does: a worker never sees the file
// half written, or written with another modification time first.
func replaceFile(t *testing.T, path, content string, mtime time.Time) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(tmp, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// countLog is the number of Caddy's log lines that contain every one of
// parts.
func countLog(c *caddy, parts ...string) int {
	c.Log.mu.Lock()
	defer c.Log.mu.Unlock()
	return c.Log.countLocked(parts)
}

func (l *logLines) countLocked(parts []string) int {
	n := 0
	for _, line := range l.lines {
		if containsAll(line, parts) {
			n++
		}
	}
	return n
}

// waitLogCount waits until n of Caddy's log lines contain every one of parts.
func waitLogCount(t *testing.T, c *caddy, n int, parts ...string) {
	t.Helper()
	count := 0
	if !c.Log.waitUntil(20*time.Second, func() bool {
		count = c.Log.countLocked(parts)
		return count >= n
	}) {
		t.Fatalf("%d log lines with %q, want %d; the log:\n%s", count, parts, n, c.Log)
	}
}
