package caddywsgi_test

// Hostile applications against the process boundary (issue 9): what a
// worker can reach, and how its death and output are handled.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestWorkerHoldsOnlyItsDescriptors: Caddy started with descriptor 9 open on
// a root-only file (not close-on-exec, as a shell or service manager may
// leave one) does not pass it on. A worker holds its standard streams, its
// connections and its control socket only, and a child process that the
// application starts with close_fds=False gets none of the sockets.
func TestWorkerHoldsOnlyItsDescriptors(t *testing.T) {
	if caddyUser == nil {
		t.Skip("needs root: the file must be one that Caddy's user cannot open")
	}
	secretPath := filepath.Join(t.TempDir(), "secret") // t.TempDir is private to root
	if err := os.WriteFile(secretPath, []byte("root-only secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	secret, err := os.Open(secretPath)
	if err != nil {
		t.Fatal(err)
	}
	defer secret.Close()
	// ExtraFiles[i] is descriptor 3+i: 9 is above the worker's own 3 to 5,
	// which would otherwise replace it.
	files := make([]*os.File, 7)
	files[6] = secret
	c, err := launchEnv(t, "admin off", `:{http_port} {
	wsgi_script / {apps}/hostile_fds.wsgi {
		python {python}
		threads 2
	}
}`, nil, false, files...)
	if err != nil {
		t.Fatal(err)
	}
	res, body := get(t, plainClient, "GET", c.URL("/"), nil)
	if res.StatusCode != 200 {
		t.Fatalf("%d %s", res.StatusCode, body)
	}
	var got struct {
		Worker, Child map[string]string
		FD9           string
	}
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	if strings.Contains(body, "root-only secret") || strings.Contains(body, secretPath) {
		t.Errorf("the worker reached the root-only file Caddy inherited as descriptor 9: %s", body)
	}
	// 0 to 2, a connection per thread, and the control socket.
	want := map[string]string{"0": "/dev/null", "1": "pipe:", "2": "pipe:", "3": "socket:", "4": "socket:", "5": "socket:"}
	if len(got.Worker) != len(want) {
		t.Errorf("the worker holds descriptors %v, want %v", got.Worker, want)
	}
	for fd, kind := range want {
		if !strings.HasPrefix(got.Worker[fd], kind) {
			t.Errorf("the worker's descriptor %s is %q, want %s", fd, got.Worker[fd], kind)
		}
	}
	if got.FD9 != "Bad file descriptor" {
		t.Errorf("reading descriptor 9 in the worker: %q, want Bad file descriptor", got.FD9)
	}
	for fd, what := range got.Child {
		if strings.HasPrefix(what, "socket:") {
			t.Errorf("a child process of the application holds the worker's socket %s (descriptor %s): %v", what, fd, got.Child)
		}
	}
}

// TestCrashWithGrandchildHoldingOutput: a worker that crashes mid-request
// while a grandchild it started holds its stdout and stderr (and, in the
// second case, its connections to Caddy) is seen dead at once: the request
// gets its 502 and a new process serves the next one, without waiting for
// the grandchild to exit.
func TestCrashWithGrandchildHoldingOutput(t *testing.T) {
	for _, query := range []string{"", "sockets=1"} {
		t.Run("holding output "+query, func(t *testing.T) {
			c := startCaddy(t, `:{http_port} {
	wsgi_script / {apps}/hostile_grandchild.wsgi {
		python {python}
		threads 1
	}
}`)
			_, body := get(t, plainClient, "GET", c.URL("/pid"), nil)
			pid, err := strconv.Atoi(body)
			if err != nil {
				t.Fatal(body)
			}
			// The grandchild is in the worker's process group.
			t.Cleanup(func() { syscall.Kill(-pid, syscall.SIGKILL) })

			client := &http.Client{Timeout: 20 * time.Second}
			start := time.Now()
			res, body, err := fetch(client, "GET", c.URL("/crash?"+query), nil)
			if err != nil {
				t.Fatalf("the request on the crashing worker: %v after %s", err, time.Since(start).Round(time.Millisecond))
			}
			if res.StatusCode != 502 {
				t.Errorf("the request on the crashing worker: %d %q, want 502", res.StatusCode, body)
			}
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("the 502 came %s after the request", took.Round(time.Millisecond))
			}
			c.waitLog("grandchild started", fmt.Sprintf(`"pid":%d`, pid))

			res, body, err = fetch(client, "GET", c.URL("/pid"), nil)
			took := time.Since(start)
			if err != nil || res.StatusCode != 200 || body == strconv.Itoa(pid) {
				t.Fatalf("the request after the crash: %v %v %q, %s after the crash", err, res, body, took.Round(time.Millisecond))
			}
			if took > 5*time.Second {
				t.Errorf("the new process answered %s after the crash", took.Round(time.Millisecond))
			}
			t.Logf("502 and a new process %s after the crash", took.Round(time.Millisecond))
			c.waitLog("worker process exited", fmt.Sprintf(`"pid":%d`, pid), "exited with status 1")
		})
	}
}

// TestOverlongOutputLine: a line of 2 MiB on a worker's real stdout is cut
// in the log, and Caddy keeps reading the pipe: the worker's later writes
// to it do not block, and reach the log.
func TestOverlongOutputLine(t *testing.T) {
	c := startCaddy(t, `:{http_port} {
	wsgi_script / {apps}/hostile_stdout.wsgi {
		python {python}
		threads 2
	}
}`)
	client := &http.Client{Timeout: 10 * time.Second}
	for i, path := range []string{"/long?n=1", "/print?n=2", "/long?n=3", "/print?n=4"} {
		res, body, err := fetch(client, "GET", c.URL(path), nil)
		if err != nil || res.StatusCode != 200 {
			t.Fatalf("request %d, %s: %v %v %q", i, path, err, res, body)
		}
	}
	c.waitLog("after the long line 1")
	c.waitLog("printed again 2")
	c.waitLog("after the long line 3")
	c.waitLog("printed again 4")
	line := c.waitLog(`"msg":"xxxx`, `"truncated":true`, `"length":2097152`)
	if len(line) > 70_000 {
		t.Errorf("the log line of a 2 MiB line is %d bytes", len(line))
	}
}

// TestWorkerIgnoringSIGTERMDiesWithCaddy: a worker that ignores SIGTERM and
// runs a non-daemon thread does not outlive Caddy killed by SIGKILL.
func TestWorkerIgnoringSIGTERMDiesWithCaddy(t *testing.T) {
	c := startCaddy(t, `:{http_port} {
	wsgi_script / {apps}/hostile_immortal.wsgi {
		python {python}
		processes 2
		threads 1
	}
}`)
	pids := workerPIDs(t, c)
	var exits []int
	for _, pid := range pids {
		fd, err := unix.PidfdOpen(pid, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Close(fd)
		exits = append(exits, fd)
		t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
	}
	c.cmd.Process.Kill()
	<-c.exited
	for i, fd := range exits {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		if n, err := unix.Poll(fds, 5_000); err != nil || n != 1 {
			t.Errorf("worker %d outlived caddy (SIGKILL) by 5s", pids[i])
		}
	}
}
