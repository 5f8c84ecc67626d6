package caddywsgi_test

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// caddyBin is the Caddy built from ./cmd/caddy for these tests: the tests run
// it the way users do, as its own process.
var caddyBin string

// caddyUser is who the tests run Caddy as, when they run as root: an
// unprivileged account, as in production (Debian's package runs Caddy as
// user caddy), whose workers then run as that account with no user setting.
// The tests of the user settings run a root Caddy. Nil: the tests' own user.
var caddyUser *syscall.Credential

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "caddy-wsgi-test-")
	if err != nil {
		panic(err)
	}
	caddyBin = filepath.Join(dir, "caddy")
	if out, err := exec.Command("go", "build", "-o", caddyBin, "../cmd/caddy").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building caddy: %v\n%s", err, out)
		os.Exit(1)
	}
	if os.Geteuid() == 0 {
		if caddyUser, err = ensureTestUser(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Chmod(dir, 0o755)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// caddyDir is a temporary directory that the Caddy the tests run can write.
func caddyDir(t testing.TB) string {
	dir := t.TempDir()
	if caddyUser != nil {
		// t.TempDir's parent is private to root.
		if err := os.Chmod(filepath.Dir(dir), 0o711); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(dir, int(caddyUser.Uid), int(caddyUser.Gid)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// caddyCommand is `caddy ARGS...` with its data and configuration in dir, run
// as root or as caddyUser.
func caddyCommand(dir string, root bool, args ...string) *exec.Cmd {
	cmd := exec.Command(caddyBin, args...)
	cmd.Env = append(os.Environ(), "XDG_DATA_HOME="+dir, "XDG_CONFIG_HOME="+dir, "HOME="+dir)
	if !root && caddyUser != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: caddyUser}
	}
	return cmd
}

// python is the interpreter the workers run: the test venv's, which has
// Flask and Django, when .ci/run or the README's test command set it.
func python() string {
	if p := os.Getenv("CADDY_WSGI_TEST_PYTHON"); p != "" {
		return p
	}
	return "python3"
}

func appsDir(t testing.TB) string {
	dir, err := filepath.Abs("testdata/apps")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// caddy is a running Caddy process.
type caddy struct {
	t         testing.TB
	cmd       *exec.Cmd
	HTTPPort  int
	HTTPSPort int
	Log       *logLines
	exited    chan struct{}
	dataDir   string
}

// startCaddy runs `caddy run` with a Caddyfile site block and waits until it
// serves. In the site block {apps} is the test apps' directory, {python}
// the interpreter and {tmp} a directory Caddy and its workers can write.
func startCaddy(t testing.TB, site string) *caddy {
	t.Helper()
	c, err := launchCaddy(t, "admin off", site)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// launchCaddy is startCaddy with global options of its own (which must
// include an admin setting).
func launchCaddy(t testing.TB, globals, site string) (*caddy, error) {
	return launch(t, globals, site, false)
}

// launchRootCaddy is launchCaddy for a Caddy that runs as root.
func launchRootCaddy(t testing.TB, globals, site string) (*caddy, error) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	return launch(t, globals, site, true)
}

func launch(t testing.TB, globals, site string, root bool) (*caddy, error) {
	return launchEnv(t, globals, site, nil, root)
}

// launchEnv is launch with env added to Caddy's environment, and files
// inherited by Caddy as descriptors 3 on (os/exec's ExtraFiles).
func launchEnv(t testing.TB, globals, site string, env []string, root bool, files ...*os.File) (*caddy, error) {
	dir := caddyDir(t)
	httpPort, httpsPort := freePort(t), freePort(t)
	placeholders := strings.NewReplacer("{apps}", appsDir(t), "{python}", python(), "{tmp}", dir,
		"{http_port}", strconv.Itoa(httpPort), "{https_port}", strconv.Itoa(httpsPort))
	site, globals = placeholders.Replace(site), placeholders.Replace(globals)
	// debug: the certificate cache logs when a certificate is ready to serve.
	config := fmt.Sprintf(`{
	%s
	debug
	persist_config off
	http_port %d
	https_port %d
	local_certs
	skip_install_trust
}
%s
`, globals, httpPort, httpsPort, site)
	file := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(file, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := runCaddyfile(t, file, "", env, root, files...)
	c.HTTPPort, c.HTTPSPort = httpPort, httpsPort
	return c, err
}

// runCaddyfile runs `caddy run` on a Caddyfile, in workDir if not empty, and
// waits until it serves. Caddy inherits files as descriptors 3 on.
func runCaddyfile(t testing.TB, file, workDir string, env []string, root bool, files ...*os.File) (*caddy, error) {
	dir := caddyDir(t)
	c := &caddy{t: t, Log: newLogLines(), exited: make(chan struct{}), dataDir: dir}
	c.cmd = caddyCommand(dir, root, "run", "--config", file, "--adapter", "caddyfile")
	c.cmd.Dir = workDir
	c.cmd.Env = append(c.cmd.Env, env...)
	c.cmd.ExtraFiles = files
	c.cmd.Stdout = c.Log
	c.cmd.Stderr = c.Log
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		c.cmd.Wait()
		c.Log.close()
		close(c.exited)
	}()
	t.Cleanup(c.stop)
	if _, ok := c.Log.wait("serving initial configuration", 60*time.Second); !ok {
		c.stop()
		return c, fmt.Errorf("caddy did not start (%s); its log:\n%s", c.cmd.ProcessState, c.Log)
	}
	return c, nil
}

func (c *caddy) stop() {
	select {
	case <-c.exited:
		return
	default:
	}
	// Caddy's graceful shutdown waits for idle keep-alive connections.
	plainClient.CloseIdleConnections()
	c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
	case <-time.After(15 * time.Second):
		c.t.Errorf("caddy did not exit within 15s of SIGTERM; killing it")
		c.cmd.Process.Kill()
		<-c.exited
	}
	if c.t.Failed() {
		c.t.Logf("caddy's log:\n%s", c.Log)
	}
}

func (c *caddy) URL(path string) string {
	return "http://127.0.0.1:" + strconv.Itoa(c.HTTPPort) + path
}

// HTTPSURL is a URL on the HTTPS port; it waits for Caddy to have issued the
// certificate for localhost, which it does in the background after start-up,
// and put it in its cache.
func (c *caddy) HTTPSURL(path string) string {
	c.waitLog("added certificate to cache", `"localhost"`)
	return "https://localhost:" + strconv.Itoa(c.HTTPSPort) + path
}

// waitLog waits for a log line containing every one of parts.
func (c *caddy) waitLog(parts ...string) string {
	c.t.Helper()
	line, ok := c.Log.wait(strings.Join(parts, "\x00"), 20*time.Second)
	if !ok {
		c.t.Fatalf("no log line with %q; the log:\n%s", parts, c.Log)
	}
	return line
}

// get performs a request and returns the response and its body.
func get(t testing.TB, client *http.Client, method, url string, body io.Reader) (*http.Response, string) {
	t.Helper()
	res, b, err := fetch(client, method, url, body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	return res, b
}

// fetch is get for goroutines other than the test's.
func fetch(client *http.Client, method, url string, body io.Reader) (*http.Response, string, error) {
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		return nil, "", err
	}
	res, err := client.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res, string(b), err
}

// outcome is the result of a request made in the background.
type outcome struct {
	status int
	body   string
	err    error
}

// inBackground makes a GET request on another goroutine.
func inBackground(url string) <-chan outcome {
	ch := make(chan outcome, 1)
	go func() {
		res, body, err := fetch(plainClient, "GET", url, nil)
		o := outcome{body: body, err: err}
		if res != nil {
			o.status = res.StatusCode
		}
		ch <- o
	}()
	return ch
}

var plainClient = &http.Client{Timeout: 60 * time.Second}

// h2Client speaks HTTP/2 over TLS to Caddy's internal CA certificates.
func h2Client() *http.Client {
	return &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true, ServerName: "localhost"},
		ForceAttemptHTTP2: true,
	}}
}

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// peakRSS returns a process's peak resident memory in bytes (VmHWM).
func peakRSS(t testing.TB, pid int) int64 {
	return procStatusField(t, pid, "VmHWM:") * 1024
}

func procStatusField(t testing.TB, pid int, field string) int64 {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, field) {
			n, _ := strconv.ParseInt(strings.Fields(line)[1], 10, 64)
			return n
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// logLines collects a process's log lines and lets tests wait for one.
type logLines struct {
	mu      sync.Mutex
	cond    *sync.Cond
	partial []byte
	lines   []string
	closed  bool
}

func newLogLines() *logLines {
	l := &logLines{}
	l.cond = sync.NewCond(&l.mu)
	return l
}

func (l *logLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.partial = append(l.partial, p...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		l.lines = append(l.lines, string(l.partial[:i]))
		l.partial = l.partial[i+1:]
	}
	l.cond.Broadcast()
	return len(p), nil
}

func (l *logLines) close() {
	l.mu.Lock()
	l.closed = true
	l.cond.Broadcast()
	l.mu.Unlock()
}

// wait returns the first line containing every NUL-separated part of want,
// waiting up to timeout for it to be written.
func (l *logLines) wait(want string, timeout time.Duration) (string, bool) {
	parts := strings.Split(want, "\x00")
	found := ""
	seen := 0
	ok := l.waitUntil(timeout, func() bool {
		for ; seen < len(l.lines); seen++ {
			if containsAll(l.lines[seen], parts) {
				found = l.lines[seen]
				return true
			}
		}
		return false
	})
	return found, ok
}

// waitUntil calls done, with l.mu held, each time a line is written, until
// it returns true, the log closes or timeout passes; it reports whether done
// returned true.
func (l *logLines) waitUntil(timeout time.Duration, done func() bool) bool {
	deadline := time.Now().Add(timeout)
	timer := time.AfterFunc(timeout, func() {
		l.mu.Lock()
		l.cond.Broadcast()
		l.mu.Unlock()
	})
	defer timer.Stop()
	l.mu.Lock()
	defer l.mu.Unlock()
	for {
		if done() {
			return true
		}
		if l.closed || time.Now().After(deadline) {
			return false
		}
		l.cond.Wait()
	}
}

func containsAll(s string, parts []string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}

func (l *logLines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}
