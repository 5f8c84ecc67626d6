package caddywsgi_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// runtimeDirs lists the pools' runtime directories in dir.
func runtimeDirs(t *testing.T, dir string) []string {
	t.Helper()
	dirs, err := filepath.Glob(filepath.Join(dir, "caddy-wsgi-*"))
	if err != nil {
		t.Fatal(err)
	}
	return dirs
}

// TestRuntimeDirRemovedOnExit: however Caddy is told to stop, the worker
// runtime files it wrote to TMPDIR are gone when it has exited.
func TestRuntimeDirRemovedOnExit(t *testing.T) {
	for _, how := range []string{"SIGTERM", "SIGINT", "caddy stop", "POST /stop"} {
		t.Run(how, func(t *testing.T) {
			tmp := caddyDir(t)
			admin := "127.0.0.1:" + strconv.Itoa(freePort(t))
			c, err := launchEnv(t, "admin "+admin, `:{http_port} {
	wsgi_script / {apps}/app.wsgi python={python}
}`, []string{"TMPDIR=" + tmp}, false)
			if err != nil {
				t.Fatal(err)
			}
			if res, body := get(t, plainClient, "GET", c.URL("/env"), nil); res.StatusCode != 200 {
				t.Fatalf("%d %s", res.StatusCode, body)
			}
			// The check below proves something only if the directory was there.
			if dirs := runtimeDirs(t, tmp); len(dirs) != 1 {
				t.Fatalf("runtime directories while serving: %q, want one", dirs)
			}
			plainClient.CloseIdleConnections()
			switch how {
			case "SIGTERM":
				c.cmd.Process.Signal(syscall.SIGTERM)
			case "SIGINT":
				c.cmd.Process.Signal(syscall.SIGINT)
			case "caddy stop":
				if out, err := caddyCommand(c.dataDir, false, "stop", "--address", admin).CombinedOutput(); err != nil {
					t.Fatalf("caddy stop: %v\n%s", err, out)
				}
			case "POST /stop":
				if res, body := get(t, plainClient, "POST", "http://"+admin+"/stop", nil); res.StatusCode != 200 {
					t.Fatalf("POST /stop: %d %s", res.StatusCode, body)
				}
			}
			select {
			case <-c.exited:
			case <-time.After(15 * time.Second):
				t.Fatal("caddy did not exit")
			}
			if dirs := runtimeDirs(t, tmp); len(dirs) != 0 {
				t.Errorf("left behind after %s: %q", how, dirs)
			}
		})
	}
}

// TestStaleRuntimeDirsRemovedAtStart: Caddy removes the runtime directories
// that Caddy processes no longer running left behind (a killed Caddy cannot
// clean up), and keeps those of running ones.
func TestStaleRuntimeDirsRemovedAtStart(t *testing.T) {
	exited := exec.Command("true")
	if err := exited.Run(); err != nil {
		t.Fatal(err)
	}
	tmp := caddyDir(t)
	mkdir := func(pid int) string {
		path := filepath.Join(tmp, fmt.Sprintf("caddy-wsgi-%d-1", pid))
		if err := os.Mkdir(path, 0o755); err != nil {
			t.Fatal(err)
		}
		if caddyUser != nil {
			if err := os.Chown(path, int(caddyUser.Uid), int(caddyUser.Gid)); err != nil {
				t.Fatal(err)
			}
		}
		return path
	}
	stale, running := mkdir(exited.Process.Pid), mkdir(os.Getpid())
	c, err := launchEnv(t, "admin off", `:{http_port} {
	wsgi_script / {apps}/app.wsgi python={python}
}`, []string{"TMPDIR=" + tmp}, false)
	if err != nil {
		t.Fatal(err)
	}
	c.waitLog("removed the runtime directory of a Caddy process that is no longer running", strconv.Quote(stale))
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("%s of an exited process kept: %v", stale, err)
	}
	if _, err := os.Stat(running); err != nil {
		t.Errorf("%s of a running process removed: %v", running, err)
	}
}
