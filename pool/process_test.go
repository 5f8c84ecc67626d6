package pool

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// procEnvConfig is a pool of testdata/procenv.py, which reports the
// worker's process environment.
func procEnvConfig(t *testing.T) Config {
	cfg := testConfig(t, 1, 1)
	app, err := filepath.Abs("testdata/procenv.py")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Apps = []App{{Target: app}}
	cfg.Umask = -1
	return cfg
}

// procEnv is what testdata/procenv.py reports.
type procEnv struct {
	Executable string  `json:"executable"`
	Prefix     string  `json:"prefix"`
	Lang       *string `json:"lang"`
	LcAll      *string `json:"lc_all"`
	Umask      string  `json:"umask"`
	Preloaded  string  `json:"preloaded"`
	Where      string  `json:"where"`
}

// ask sends GET path?query to the pool and decodes the answer.
func ask(t *testing.T, p *Pool, path, query string) (procEnv, int) {
	t.Helper()
	c, err := p.Acquire(context.Background(), requestFrame(0, path, query, false))
	if err != nil {
		t.Fatal(err)
	}
	body := readResponse(t, c)
	p.Release(c, Reusable)
	var env procEnv
	if err := json.Unmarshal([]byte(body), &env); err != nil {
		t.Fatalf("%s: %v", body, err)
	}
	return env, c.PID()
}

// testPython is the interpreter the tests run workers with.
func testPython() string {
	if python := os.Getenv("CADDY_WSGI_TEST_PYTHON"); python != "" {
		return python
	}
	return "python3"
}

func write(t *testing.T, path, text string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestPythonHome: the workers run the virtualenv's interpreter and import
// from its site-packages, whatever Python says.
func TestPythonHome(t *testing.T) {
	venv := filepath.Join(t.TempDir(), "venv")
	if out, err := exec.Command(testPython(), "-m", "venv", "--without-pip", venv).CombinedOutput(); err != nil {
		t.Fatalf("creating a virtualenv: %v\n%s", err, out)
	}
	out, err := exec.Command(filepath.Join(venv, "bin", "python"), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))").Output()
	if err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(strings.TrimSpace(string(out)), "venvpkg_under_test.py"), "WHERE = 'venv'\n")

	cfg := procEnvConfig(t)
	cfg.PythonHome = venv
	p, _ := startPool(t, cfg)
	env, _ := ask(t, p, "/", "")
	if env.Prefix != venv || env.Executable != filepath.Join(venv, "bin", "python") {
		t.Errorf("sys.prefix %s, sys.executable %s; want the virtualenv %s", env.Prefix, env.Executable, venv)
	}
	if env, _ := ask(t, p, "/import", "venvpkg_under_test"); env.Where != "venv" {
		t.Errorf("the virtualenv's package: %q", env.Where)
	}

	cfg.PythonHome = t.TempDir()
	if _, err := New(cfg, zap.NewNop()); err == nil || !strings.Contains(err.Error(), "has no bin/python") {
		t.Errorf("a python home without an interpreter: %v", err)
	}
}

// TestPythonPath: the directories are site directories, whose .pth files
// add further directories.
func TestPythonPath(t *testing.T) {
	dir, other := t.TempDir(), t.TempDir()
	write(t, filepath.Join(dir, "pathpkg_direct.py"), "WHERE = 'direct'\n")
	write(t, filepath.Join(dir, "extra.pth"), other+"\n")
	write(t, filepath.Join(other, "pathpkg_via_pth.py"), "WHERE = 'pth'\n")
	cfg := procEnvConfig(t)
	cfg.PythonPath = []string{dir}
	p, _ := startPool(t, cfg)
	for module, want := range map[string]string{"pathpkg_direct": "direct", "pathpkg_via_pth": "pth"} {
		if env, _ := ask(t, p, "/import", module); env.Where != want {
			t.Errorf("%s: %q, want %q", module, env.Where, want)
		}
	}
}

func TestLangLocale(t *testing.T) {
	cfg := procEnvConfig(t)
	cfg.Lang, cfg.Locale = "en_US.UTF-8", "C.UTF-8"
	p, _ := startPool(t, cfg)
	if env, _ := ask(t, p, "/", ""); env.Lang == nil || *env.Lang != "en_US.UTF-8" || env.LcAll == nil || *env.LcAll != "C.UTF-8" {
		t.Errorf("LANG %v, LC_ALL %v", env.Lang, env.LcAll)
	}

	// An explicit environment variable is the more specific setting.
	cfg.Env = []string{"LC_ALL=POSIX"}
	p, _ = startPool(t, cfg)
	if env, _ := ask(t, p, "/", ""); env.LcAll == nil || *env.LcAll != "POSIX" {
		t.Errorf("LC_ALL %v with env LC_ALL=POSIX", env.LcAll)
	}
}

// TestDisplayName: ps shows the name, both as the command name (ps -e,
// top) and as the command line (ps aux), and the interpreter still knows
// where it is installed.
func TestDisplayName(t *testing.T) {
	cfg := procEnvConfig(t)
	cfg.Name, cfg.DisplayName = "site", "%{GROUP}"
	p, _ := startPool(t, cfg)
	env, pid := ask(t, p, "/", "")
	proc := "/proc/" + strconv.Itoa(pid)
	comm, err := os.ReadFile(proc + "/comm")
	if err != nil {
		t.Fatal(err)
	}
	cmdline, err := os.ReadFile(proc + "/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(comm)); got != "(wsgi:site)" {
		t.Errorf("command name %q", got)
	}
	if got := strings.TrimRight(string(cmdline), "\x00"); got != "(wsgi:site)" {
		t.Errorf("command line %q", got)
	}
	if env.Executable == "" {
		t.Error("sys.executable is empty: the interpreter lost track of its installation")
	}
}

func TestImportScript(t *testing.T) {
	dir := t.TempDir()
	cfg := procEnvConfig(t)
	cfg.ImportScript = write(t, filepath.Join(dir, "preload.py"),
		"import os\nos.environ['CADDY_WSGI_TEST_PRELOADED'] = __name__\n")
	p, _ := startPool(t, cfg)
	if env, _ := ask(t, p, "/", ""); !strings.HasPrefix(env.Preloaded, "_caddy_wsgi_") {
		t.Errorf("the application saw %q as the import script's module when it loaded", env.Preloaded)
	}

	broken := write(t, filepath.Join(dir, "broken.py"), "def fail():\n    raise RuntimeError('preload failed')\nfail()\n")
	cfg.ImportScript = broken
	_, err := New(cfg, zap.NewNop())
	if err == nil {
		t.Fatal("New succeeded with a failing import script")
	}
	for _, want := range []string{errStartup.Error(), broken, "line 3", "RuntimeError: preload failed"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
}

func TestUmask(t *testing.T) {
	cfg := procEnvConfig(t)
	cfg.Umask = 0o027
	p, _ := startPool(t, cfg)
	if env, _ := ask(t, p, "/", ""); env.Umask != "0027" {
		t.Errorf("umask %s, want 0027", env.Umask)
	}

	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, _ := strings.Cut(string(status), "Umask:\t")
	caddys, _, _ := strings.Cut(rest, "\n")
	cfg.Umask = -1
	p, _ = startPool(t, cfg)
	if env, _ := ask(t, p, "/", ""); env.Umask != caddys {
		t.Errorf("umask %s with Umask -1, want Caddy's %s", env.Umask, caddys)
	}
}

// TestDeadlockTimeout: a process whose interpreter is stuck in C code
// holding the GIL is killed and replaced; one whose request merely waits
// longer than the timeout is left alone.
func TestDeadlockTimeout(t *testing.T) {
	cfg := procEnvConfig(t)
	cfg.Threads = 2
	cfg.DeadlockTimeout = 200 * time.Millisecond
	p, logs := startPool(t, cfg)

	if _, pid := ask(t, p, "/sleep", "0.6"); logs.FilterMessageSnippet("deadlock_timeout").Len() != 0 {
		t.Fatalf("process %d killed while a request slept without the GIL", pid)
	}

	c, err := p.Acquire(context.Background(), requestFrame(0, "/hold", "", false))
	if err != nil {
		t.Fatal(err)
	}
	pid, exited := c.PID(), c.proc.exited
	// Far less than the 30 s the request holds the GIL for: a bound on a
	// failing test, not part of what it checks.
	c.uc.SetReadDeadline(time.Now().Add(10 * time.Second))
	for err == nil {
		_, err = c.R.Next()
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatal("the process holding the GIL was not killed")
	}
	p.Release(c, OutOfStep)
	<-exited
	entries := logs.FilterMessage("deadlock_timeout: the interpreter has not answered for 200ms; killing it").
		FilterField(zap.Int("pid", pid))
	if entries.Len() != 1 {
		t.Errorf("%d deadlock_timeout log entries for pid %d", entries.Len(), pid)
	}
	_, next := ask(t, p, "/", "")
	if next == pid {
		t.Errorf("still served by process %d", pid)
	}
	// Replaced for the deadlock, not as a crash.
	s := p.Stats()
	if w := worker(t, s, next); w.LastRestartReason != ReasonDeadlockTimeout {
		t.Errorf("the replacement's last restart reason %q", w.LastRestartReason)
	}
	if s.Restarts[ReasonDeadlockTimeout] != 1 || len(s.Restarts) != 1 {
		t.Errorf("restarts %v", s.Restarts)
	}
}

// TestExitStatus: how a worker ended reads as a shell would say it.
func TestExitStatus(t *testing.T) {
	for _, tc := range []struct{ script, want string }{
		{"exit 1", "exited with status 1"},
		{"exit 0", "exited with status 0"},
		{"kill -KILL $$", "killed by SIGKILL"},
		{"kill -TERM $$", "killed by SIGTERM"},
		// A core is written to the working directory (core_pattern "core")
		// or handed to the system's collector: either way it is dumped.
		{"ulimit -c unlimited; kill -SEGV $$", "killed by SIGSEGV (core dumped)"},
	} {
		cmd := exec.Command("/bin/sh", "-c", tc.script)
		cmd.Dir = t.TempDir()
		cmd.Run()
		if got := exitStatus(cmd.ProcessState); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.script, got, tc.want)
		}
	}
	if got := exitStatus(nil); got != "not started" {
		t.Errorf("no process: %q", got)
	}
}

// TestWorkerOutlivesForkingThread: Linux sends the parent-death signal
// (SIGKILL) when the thread that forked a worker exits, not Caddy, and a
// goroutine locked to its thread ends that thread when it returns. A worker
// started from such a goroutine must not die with it.
func TestWorkerOutlivesForkingThread(t *testing.T) {
	p, _ := startPool(t, testConfig(t, 1, 1))
	type started struct {
		proc   *process
		thread int // a pidfd of the goroutine's thread
		err    error
	}
	ch := make(chan started)
	var start func()
	start = func() {
		runtime.LockOSThread() // never unlocked: the thread exits with the goroutine
		if unix.Gettid() == os.Getpid() {
			// Go parks the main thread for good rather than end it: try
			// another.
			go start()
			return
		}
		thread, err := unix.PidfdOpen(unix.Gettid(), unix.PIDFD_THREAD)
		if err != nil {
			ch <- started{err: fmt.Errorf("a pidfd of a thread needs Linux 6.9: %w", err)}
			return
		}
		proc, err := p.spawn()
		ch <- started{proc, thread, err}
	}
	go start()
	s := <-ch
	if s.err != nil {
		t.Fatal(s.err)
	}
	defer unix.Close(s.thread)
	if n, err := unix.Poll([]unix.PollFd{{Fd: int32(s.thread), Events: unix.POLLIN}}, 10_000); err != nil || n != 1 {
		t.Fatalf("the locked thread did not exit: %v", err)
	}
	// Any parent-death signal has been sent now: the worker must answer.
	c := s.proc.conns[0]
	if _, err := c.Write(helloRequest()); err != nil {
		t.Fatal(err)
	}
	if body, err := response(c); err != nil || body != "Hello, world!" {
		t.Fatalf("the worker after its forking thread exited: %q, %v", body, err)
	}
}
