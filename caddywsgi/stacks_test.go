package caddywsgi_test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// lineOf is the number of the line of the test app file that contains text.
func lineOf(t *testing.T, file, text string) int {
	t.Helper()
	src, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	before, _, ok := strings.Cut(string(src), text)
	if !ok {
		t.Fatalf("%s has no %q", file, text)
	}
	return strings.Count(before, "\n") + 1
}

// logIndex is the index in c's log of the first line containing every one
// of parts, or -1.
func logIndex(c *caddy, parts ...string) int {
	for i, line := range strings.Split(c.Log.String(), "\n") {
		if containsAll(line, parts) {
			return i
		}
	}
	return -1
}

// TestRequestTimeoutLogsStacks: when request_timeout fires, the log has the
// Python stack of every thread serving a request, tagged with its request,
// before the process is recycled; threads between requests are left out.
func TestRequestTimeoutLogsStacks(t *testing.T) {
	c := startCaddy(t, `:{http_port} {
	wsgi_script / {apps}/stuck.wsgi {
		python {python}
		processes 1
		threads 3
		request_timeout 1s
		graceful_timeout 1s
	}
}`)
	_, pid := get(t, plainClient, "GET", c.URL("/pid"), nil)
	second := inBackground(c.URL("/sleep?second=1"))
	res, _ := get(t, plainClient, "GET", c.URL("/sleep?first=1"), nil)
	if res.StatusCode != http.StatusGatewayTimeout {
		t.Errorf("a stuck request: %d, want 504", res.StatusCode)
	}
	<-second
	app := filepath.Join(appsDir(t), "stuck.wsgi")
	frame := fmt.Sprintf(`File \"%s\", line %d, in stuck_here`, app, lineOf(t, app, "time.sleep(3600)"))
	const message = "a request was still running; the Python stack of its thread"
	for _, uri := range []string{"/sleep?first=1", "/sleep?second=1"} {
		c.waitLog(message, `"pid":`+pid, `"method":"GET"`, `"uri":"`+uri+`"`, frame, `"running_for":`, `"thread":"0x0000`)
	}
	waitFor(t, c, "recycling worker process", `"pid":`+pid, `"reason":"request_timeout"`)
	stacks := logIndex(c, message)
	if recycling := logIndex(c, "recycling worker process", `"pid":`+pid); stacks > recycling {
		t.Errorf("the stacks (log line %d) follow the recycling (line %d):\n%s", stacks, recycling, c.Log)
	}
	if line := c.Log.String(); strings.Count(line, message) != 2 {
		t.Errorf("want 2 stacks (the idle thread has none), got %d:\n%s", strings.Count(line, message), line)
	}
	// The stack starts at the application: the runtime's frames above it
	// are the same in every thread.
	top := fmt.Sprintf(`"stack":"  File \"%s\", line %d, in application`, app, lineOf(t, app, "stuck_here()\n    elif"))
	if line := c.Log.String(); strings.Count(line, top) != 2 {
		t.Errorf("the stacks do not start with the application's frame %s:\n%s", top, line)
	}
}

// TestDeadlockTimeoutLogsStacks: when deadlock_timeout fires (C code holds
// the GIL, so no Python code can answer), faulthandler's dump of every
// thread reaches the log before the process is killed: the stack of the
// thread serving a request tagged with that request, the other threads'
// (the main thread, the idle one, the runtime's) together.
func TestDeadlockTimeoutLogsStacks(t *testing.T) {
	c := startCaddy(t, `:{http_port} {
	wsgi_script / {apps}/stuck.wsgi {
		python {python}
		processes 1
		threads 2
		deadlock_timeout 2s
		request_timeout 60s
	}
}`)
	_, pid := get(t, plainClient, "GET", c.URL("/pid"), nil)
	res, _ := get(t, plainClient, "GET", c.URL("/gil"), nil)
	if res.StatusCode != http.StatusBadGateway {
		t.Errorf("a request whose process was killed: %d, want 502", res.StatusCode)
	}
	app := filepath.Join(appsDir(t), "stuck.wsgi")
	frame := fmt.Sprintf(`File \"%s\", line %d in holding_the_gil`, app, lineOf(t, app, "ctypes.PyDLL(None).sleep(3600)"))
	waitFor(t, c, "deadlock_timeout: the interpreter has not answered for 2s", `"pid":`+pid)
	waitFor(t, c, "a request was still running; the Python stack of its thread (faulthandler)", `"pid":`+pid,
		`"method":"GET"`, `"uri":"/gil"`, `"running_for":`, `"thread":"0x0000`, `"stack":"  File \"`+app, frame)
	others := c.waitLog("the Python stacks of the deadlocked process's other threads (faulthandler)", `"pid":`+pid, " in main\\n")
	if strings.Contains(others, "holding_the_gil") || !strings.Contains(others, " in serve\\n") {
		t.Errorf("the other threads' stacks should have the idle thread's, not the request's: %s", others)
	}
}

// TestRequestTimeoutHoldingTheGIL: a request stuck in C code that holds the
// GIL cannot have its stack reported by Python code: at request_timeout,
// faulthandler's dump stands in for the report, before the process is
// recycled.
func TestRequestTimeoutHoldingTheGIL(t *testing.T) {
	c := startCaddy(t, `:{http_port} {
	wsgi_script / {apps}/stuck.wsgi {
		python {python}
		processes 1
		threads 2
		request_timeout 1s
		graceful_timeout 1s
	}
}`)
	_, pid := get(t, plainClient, "GET", c.URL("/pid"), nil)
	if res, _ := get(t, plainClient, "GET", c.URL("/gil"), nil); res.StatusCode != http.StatusGatewayTimeout {
		t.Errorf("a stuck request: %d, want 504", res.StatusCode)
	}
	app := filepath.Join(appsDir(t), "stuck.wsgi")
	frame := fmt.Sprintf(`File \"%s\", line %d in holding_the_gil`, app, lineOf(t, app, "ctypes.PyDLL(None).sleep(3600)"))
	const message = "a request was still running; the Python stack of its thread (faulthandler)"
	waitFor(t, c, "the worker did not report its threads' stacks within 1s", `"pid":`+pid)
	waitFor(t, c, message, `"pid":`+pid, `"uri":"/gil"`, frame)
	waitFor(t, c, "recycling worker process", `"pid":`+pid, `"reason":"request_timeout"`)
	if dump, recycling := logIndex(c, message), logIndex(c, "recycling worker process", `"pid":`+pid); dump > recycling {
		t.Errorf("the dump (log line %d) follows the recycling (line %d):\n%s", dump, recycling, c.Log)
	}
}
