package caddywsgi_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

var blockingPID = regexp.MustCompile(`blocking in pid (\d+)`)

func TestWorkerKilledMidRequest(t *testing.T) {
	c := startCaddy(t, twoSingleThreadProcesses)
	blocked := inBackground(c.URL("/block"))
	pid, _ := strconv.Atoi(blockingPID.FindStringSubmatch(c.waitLog("blocking in pid"))[1])

	// A request on the other process, in flight while its neighbour dies.
	sleeping := inBackground(c.URL("/sleep?ms=500"))
	c.waitLog("sleeping for 500 ms")

	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if o := <-blocked; o.status != 502 {
		t.Errorf("request on the killed worker: %+v, want 502", o)
	}
	if o := <-sleeping; o.body != "slept" {
		t.Errorf("request on the other worker: %+v", o)
	}
	c.waitLog("worker failed while handling the request", `"uri":"/block"`, fmt.Sprintf(`"pid":%d`, pid))
	c.waitLog("worker process exited", fmt.Sprintf(`"pid":%d`, pid), "killed by SIGKILL")
	c.waitLog("worker process restarted", fmt.Sprintf(`"replaces":%d`, pid))
	for i := 0; i < 6; i++ {
		res, body := get(t, plainClient, "GET", c.URL("/pid"), nil)
		if res.StatusCode != 200 || body == strconv.Itoa(pid) {
			t.Fatalf("after the restart: %d %q", res.StatusCode, body)
		}
	}
}

func TestIdleWorkerKilled(t *testing.T) {
	c := startCaddy(t, `:{http_port} {
	wsgi_script / {apps}/app.wsgi {
		python {python}
		threads 2
	}
}`)
	_, body := get(t, plainClient, "GET", c.URL("/pid"), nil)
	pid, _ := strconv.Atoi(body)
	syscall.Kill(pid, syscall.SIGKILL)
	c.waitLog("worker process restarted", fmt.Sprintf(`"replaces":%d`, pid))
	res, body := get(t, plainClient, "GET", c.URL("/pid"), nil)
	if res.StatusCode != 200 || body == strconv.Itoa(pid) {
		t.Fatalf("after the restart: %d %q", res.StatusCode, body)
	}
}

// TestBrokenApplicationStopsCaddy: `caddy run` with an application that cannot
// load fails with the reason, instead of serving errors.
func TestBrokenApplicationStopsCaddy(t *testing.T) {
	apps := appsDir(t)
	for _, tc := range []struct {
		name, app, extra string
		want             []string
	}{
		{"missing script", apps + "/nonexistent.wsgi", "", []string{"nonexistent.wsgi", "no such file or directory", "module:callable"}},
		{"syntax error", apps + "/broken_syntax.wsgi", "", []string{"broken_syntax.wsgi", "line 1", "SyntaxError"}},
		{"import error", apps + "/broken_import.wsgi", "", []string{"broken_import.wsgi", "Traceback", "ModuleNotFoundError: No module named 'no_such_module_anywhere'"}},
		{"no callable", apps + "/no_callable.wsgi", "", []string{"no_callable.wsgi defines no 'application'; it defines these callables: app. Set callable_object app (WSGICallableObject)"}},
		{"missing module", "no_such_package.wsgi:application", "", []string{"ModuleNotFoundError: No module named 'no_such_package'"}},
		{"bad interpreter", apps + "/app.wsgi", "python /nonexistent/python3", []string{`starting Python interpreter \"/nonexistent/python3\"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			python := "python {python}"
			if tc.extra != "" {
				python = tc.extra
			}
			log, code := runUntilExit(t, fmt.Sprintf(`:{http_port} {
	wsgi_script / %s {
		%s
	}
}`, tc.app, python))
			if code == 0 {
				t.Fatalf("caddy run succeeded; log:\n%s", log)
			}
			for _, w := range tc.want {
				if !strings.Contains(log, w) {
					t.Errorf("the error does not mention %q:\n%s", w, log)
				}
			}
		})
	}
}

// runUntilExit runs `caddy run` with a site block (and extra global
// options) and returns its output and exit code once it exits.
func runUntilExit(t *testing.T, site string, globals ...string) (string, int) {
	return runUntilExitAs(t, false, site, globals...)
}

// runUntilExitAs is runUntilExit with Caddy running as root if root is set.
func runUntilExitAs(t *testing.T, root bool, site string, globals ...string) (string, int) {
	dir := caddyDir(t)
	config := "{\n\tadmin off\n\tpersist_config off\n\t" + strings.Join(globals, "\n\t") + "\n}\n" + site
	config = strings.NewReplacer("{apps}", appsDir(t), "{python}", python(), "{http_port}", strconv.Itoa(freePort(t))).Replace(config)
	file := filepath.Join(dir, "Caddyfile")
	os.WriteFile(file, []byte(config), 0o644)
	cmd := caddyCommand(dir, root, "run", "--config", file, "--adapter", "caddyfile")
	done := make(chan struct{})
	var out []byte
	go func() {
		out, _ = cmd.CombinedOutput()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("caddy run did not exit; output:\n%s", out)
	}
	return string(out), cmd.ProcessState.ExitCode()
}

// waitExit waits for a process that is not the test's child to exit: its
// pidfd becomes readable when it does.
func waitExit(t *testing.T, pid string) {
	t.Helper()
	n, err := strconv.Atoi(pid)
	if err != nil {
		t.Fatal(err)
	}
	fd, err := unix.PidfdOpen(n, 0)
	if errors.Is(err, unix.ESRCH) {
		return // gone already
	}
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if ready, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, 20_000); err != nil || ready != 1 {
		t.Errorf("process %d still running 20s later", n)
	}
}

// TestNoOrphansWhenCaddyDies: workers exit when Caddy is killed outright
// (the parent-death signal), and when it shuts down normally.
func TestNoOrphansWhenCaddyDies(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGKILL, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			c := startCaddy(t, twoSingleThreadProcesses)
			var exits []int
			for _, pid := range workerPIDs(t, c) {
				fd, err := unix.PidfdOpen(pid, 0)
				if err != nil {
					t.Fatal(err)
				}
				defer unix.Close(fd)
				exits = append(exits, fd)
			}
			c.cmd.Process.Signal(sig)
			<-c.exited
			for _, fd := range exits {
				// A pidfd becomes readable when its process exits.
				fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
				if n, err := unix.Poll(fds, 10_000); err != nil || n != 1 {
					t.Errorf("a worker outlived caddy (%v) by 10s", sig)
				}
			}
		})
	}
}

// workerPIDs returns the pids of Caddy's worker processes: its children.
func workerPIDs(t *testing.T, c *caddy) []int {
	t.Helper()
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	var pids []int
	for _, stat := range stats {
		data, err := os.ReadFile(stat)
		if err != nil {
			continue // exited meanwhile
		}
		// The parent pid is the second field after the parenthesised name.
		fields := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+1:]))
		if len(fields) > 1 && fields[1] == strconv.Itoa(c.cmd.Process.Pid) {
			pid, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(stat, "/proc/"), "/stat"))
			pids = append(pids, pid)
		}
	}
	if len(pids) == 0 {
		t.Fatal("caddy has no worker processes")
	}
	return pids
}
