package pool

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/zap"
)

// TestStopRemovesRuntimeDir: Stop removes the runtime directory before it
// returns, while a request in flight still completes until Close.
func TestStopRemovesRuntimeDir(t *testing.T) {
	p, _ := startPool(t, testConfig(t, 1, 1))
	if want := fmt.Sprintf("%s%d-", runtimePrefix, os.Getpid()); !strings.HasPrefix(filepath.Base(p.runtimeDir), want) {
		t.Errorf("runtime directory %s, want it named %s*", p.runtimeDir, want)
	}
	busy, err := p.Acquire(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p.runtimeDir); !os.IsNotExist(err) {
		t.Errorf("runtime directory %s still there after Stop", p.runtimeDir)
	}
	if _, err := p.Acquire(context.Background(), nil); err != ErrClosed {
		t.Errorf("Acquire after Stop: %v", err)
	}
	busy.Write(helloRequest())
	if body := readResponse(t, busy); body != "Hello, world!" {
		t.Errorf("request in flight during Stop: %q", body)
	}
	p.Release(busy, Reusable)
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestRemoveStaleRuntimeDirs: the runtime directories of this user's Caddy
// processes that have exited are removed; those of running processes, of
// other users, and whatever else is named alike are kept.
func TestRemoveStaleRuntimeDirs(t *testing.T) {
	exited := exec.Command("true")
	if err := exited.Run(); err != nil {
		t.Fatal(err)
	}
	dead, live := exited.Process.Pid, os.Getpid()
	tmp := t.TempDir()
	mkdir := func(name string) string {
		path := filepath.Join(tmp, name)
		if err := os.Mkdir(path, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(path, "caddy-wsgi-worker.py"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	stale := mkdir(fmt.Sprintf("caddy-wsgi-%d-123", dead))
	kept := []string{
		mkdir(fmt.Sprintf("caddy-wsgi-%d-456", live)),
		mkdir("caddy-wsgi-789"),       // no pid: an older version's, maybe running
		mkdir("caddy-wsgi-test-1234"), // not a runtime directory
	}
	others := mkdir(fmt.Sprintf("caddy-wsgi-%d-789", dead))
	if os.Geteuid() == 0 {
		if err := os.Chown(others, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		kept = append(kept, others)
	}
	file := filepath.Join(tmp, fmt.Sprintf("caddy-wsgi-%d-file", dead))
	kept = append(kept, write(t, file, ""))

	removeStaleRuntimeDirs(tmp, zap.NewNop())
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("%s of exited pid %d kept", stale, dead)
	}
	for _, path := range kept {
		if _, err := os.Stat(path); err != nil {
			t.Errorf("%s removed: %v", path, err)
		}
	}
}
