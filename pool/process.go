package pool

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"golang.org/x/sys/unix"

	"github.com/caddy-wsgi/caddy-wsgi/protocol"
	"github.com/caddy-wsgi/caddy-wsgi/python"
)

// process is one Python worker process and its connections, one per thread.
type process struct {
	pool    *Pool
	cmd     *exec.Cmd
	pid     int
	started time.Time
	conns   []*Conn
	exited  chan struct{} // closed when the process has been reaped
	output  *tailBuffer   // the last lines the process wrote, for error reports

	// Guarded by pool.mu.
	idle []*Conn
	busy int
	dead bool

	// Lifecycle, guarded by pool.mu; see lifecycle.go.
	recycled     bool          // out of service: exits once its requests end
	drained      chan struct{} // closed when a recycled process has no request left
	requests     int           // requests handed to it, for MaximumRequests
	lastActive   time.Time     // when it last became idle, for InactivityTimeout
	restartTimer *time.Timer   // RestartInterval
	idleTimer    *time.Timer   // InactivityTimeout
}

// Conn is a connection to one worker thread. The caller that acquired it has
// it to itself until it calls Release.
type Conn struct {
	proc *process
	uc   *net.UnixConn
	// R reads the worker's frames.
	R *protocol.Reader
	// sendErr is the error writing the request given to Acquire, which
	// then tries another thread.
	sendErr error
}

func (c *Conn) send(req []byte) {
	_, c.sendErr = c.uc.Write(req)
}

// Write sends bytes to the worker.
func (c *Conn) Write(b []byte) (int, error) { return c.uc.Write(b) }

// PID is the worker process's id, for logs.
func (c *Conn) PID() int { return c.proc.pid }

// spawn starts a process and waits for its HELLO on every connection.
func (p *Pool) spawn() (*process, error) {
	cfg := p.cfg
	proc := &process{pool: p, exited: make(chan struct{}), output: &tailBuffer{max: 40}}
	childEnds := make([]*os.File, 0, cfg.Threads+1)
	defer func() {
		for _, f := range childEnds {
			f.Close()
		}
	}()
	fdList := make([]string, cfg.Threads)
	for i := 0; i < cfg.Threads; i++ {
		uc, child, err := socketPair()
		if err != nil {
			proc.closeConns()
			return nil, fmt.Errorf("creating worker socket: %w", err)
		}
		proc.conns = append(proc.conns, &Conn{proc: proc, uc: uc, R: protocol.NewReader(uc)})
		childEnds = append(childEnds, child)
		fdList[i] = strconv.Itoa(3 + i)
	}

	args := []string{filepath.Join(p.runtimeDir, python.Entrypoint)}
	for _, app := range cfg.Apps {
		args = append(args, "--app", app.Target, "--callable", app.Callable, "--app-type", app.Type)
	}
	args = append(args, "--fds", strings.Join(fdList, ","),
		"--processes", strconv.Itoa(cfg.Processes), "--group", cfg.Name)
	args = append(args, workerOptions(cfg)...)
	var control *net.UnixConn
	if cfg.DeadlockTimeout > 0 || cfg.ReloadOnChanges {
		uc, child, err := socketPair()
		if err != nil {
			proc.closeConns()
			return nil, fmt.Errorf("creating worker control socket: %w", err)
		}
		control = uc
		childEnds = append(childEnds, child)
		args = append(args, "--control-fd", strconv.Itoa(3+cfg.Threads))
		if cfg.DeadlockTimeout > 0 {
			// Four heartbeats per timeout: one late heartbeat is not a deadlock.
			args = append(args, "--heartbeat", strconv.FormatFloat((cfg.DeadlockTimeout/4).Seconds(), 'f', -1, 64))
		}
		if cfg.ReloadOnChanges {
			args = append(args, "--reload-on-changes")
		}
	}
	cmd := exec.Command(cfg.Python, args...)
	cmd.Dir = cfg.Dir
	cmd.Env = os.Environ()
	if p.identity != nil {
		cmd.Env = append(cmd.Env, p.identity.env...)
	}
	if cfg.Lang != "" {
		cmd.Env = append(cmd.Env, "LANG="+cfg.Lang)
	}
	if cfg.Locale != "" {
		cmd.Env = append(cmd.Env, "LC_ALL="+cfg.Locale)
	}
	// Last, so that an explicit env setting wins over Lang and Locale.
	cmd.Env = append(cmd.Env, cfg.Env...)
	cmd.ExtraFiles = childEnds
	// Own process group: a Ctrl-C at Caddy's terminal must not hit the
	// workers before Caddy has drained them. Pdeathsig: if Caddy dies, so do
	// its workers.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if p.identity != nil {
		cmd.SysProcAttr.Credential = p.identity.cred
	}
	stdout, _ := cmd.StdoutPipe()
	stderr, _ := cmd.StderrPipe()
	err := cmd.Start()
	// The worker has its ends now. Caddy must not hold them: a worker that
	// exits during start-up would not end the streams the handshake reads.
	for _, f := range childEnds {
		f.Close()
	}
	childEnds = nil
	if err != nil {
		proc.closeConns()
		if control != nil {
			control.Close()
		}
		return nil, fmt.Errorf("starting Python interpreter %q: %w", cfg.Python, err)
	}
	proc.cmd, proc.pid, proc.started = cmd, cmd.Process.Pid, time.Now()
	p.track(proc)
	logger := p.log.With(zap.Int("pid", proc.pid))
	var pipes sync.WaitGroup
	pipes.Add(2)
	go proc.relay(stdout, logger, zap.InfoLevel, &pipes)
	go proc.relay(stderr, logger, zap.ErrorLevel, &pipes)
	go func() {
		pipes.Wait() // Wait must not close the pipes before they are drained
		cmd.Wait()
		close(proc.exited)
		if control != nil {
			control.Close()
		}
	}()

	if err := proc.handshake(cfg.StartupTimeout); err != nil {
		proc.kill()
		<-proc.exited
		proc.closeConns()
		if tail := proc.output.String(); tail != "" && !errors.Is(err, errStartup) {
			err = fmt.Errorf("%w; the worker's last output:\n%s", err, tail)
		}
		return nil, err
	}
	if control != nil {
		go proc.watchControl(control, cfg.DeadlockTimeout, logger)
	}
	return proc, nil
}

// workerOptions are the worker's arguments for the process environment
// settings that Python itself must apply.
func workerOptions(cfg Config) []string {
	var args []string
	for _, dir := range cfg.PythonPath {
		args = append(args, "--python-path", dir)
	}
	if cfg.DisplayName != "" {
		args = append(args, "--display-name", strings.ReplaceAll(cfg.DisplayName, "%{GROUP}", "(wsgi:"+cfg.Name+")"))
	}
	if cfg.ImportScript != "" {
		args = append(args, "--import-script", cfg.ImportScript)
	}
	if cfg.Umask >= 0 {
		args = append(args, "--umask", fmt.Sprintf("%04o", cfg.Umask))
	}
	return args
}

// socketPair returns the ends of a new connected socket pair: Caddy's as a
// connection, the worker's as a file to pass in ExtraFiles.
func socketPair() (*net.UnixConn, *os.File, error) {
	// A socket pair has no name in the file system, so no other local
	// user can connect to a worker.
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, err
	}
	parent := os.NewFile(uintptr(fds[0]), "wsgi-parent")
	fc, err := net.FileConn(parent)
	parent.Close()
	if err != nil {
		syscall.Close(fds[1])
		return nil, nil, err
	}
	return fc.(*net.UnixConn), os.NewFile(uintptr(fds[1]), "wsgi-child"), nil
}

// watchControl reads the process's control connection (PROTOCOL.md §3). A
// change notice reloads the application. With a deadlock timeout, it
// replaces the process when its heartbeats stop for that long: sending one
// needs the GIL, so silence means no Python code runs in the process any
// more (C code holding the GIL, a deadlock) and none of its requests will
// ever be answered. It returns when the process has exited, which closes
// control.
func (proc *process) watchControl(control *net.UnixConn, timeout time.Duration, logger *zap.Logger) {
	buf := make([]byte, 4096)
	var notices controlParser
	for {
		if timeout > 0 {
			control.SetReadDeadline(time.Now().Add(timeout))
		}
		n, err := control.Read(buf)
		// The changes one scan of the worker found come in one write: one
		// reload for all of them.
		if changes := notices.parse(buf[:n]); changes != nil {
			proc.pool.sourceChanged(proc, changes)
		}
		if err == nil {
			continue
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			logger.Error(fmt.Sprintf("deadlock_timeout: the interpreter has not answered for %s; killing it", timeout))
			// Dead before it is killed, so that no request is sent to it
			// while it is being reaped; supervise starts its replacement.
			p := proc.pool
			p.mu.Lock()
			p.condemnLocked(proc)
			p.mu.Unlock()
			proc.kill()
		}
		return
	}
}

// maxNotice bounds the notice that Caddy keeps: a longer one is cut, so
// that a worker cannot make Caddy buffer without bound.
const maxNotice = 4096

// sourceChange is a change notice: the file that changed, and its new
// modification time in nanoseconds since the epoch.
type sourceChange struct {
	file  string
	mtime int64
}

// controlParser splits what a worker sends on its control connection into
// change notices, 'C', a modification time, a space, a path and a newline;
// any other byte is a heartbeat. A notice may be split across reads.
type controlParser struct {
	inNotice bool
	notice   []byte
}

// parse returns the notices that data completes.
func (c *controlParser) parse(data []byte) []sourceChange {
	var done []sourceChange
	for _, b := range data {
		switch {
		case !c.inNotice:
			c.inNotice = b == 'C'
		case b == '\n':
			done = append(done, parseNotice(string(c.notice)))
			c.inNotice, c.notice = false, c.notice[:0]
		case len(c.notice) < maxNotice:
			c.notice = append(c.notice, b)
		}
	}
	return done
}

// parseNotice reads a notice without its 'C' and newline. The worker is
// ours, but a notice it could not have sent still means a change: it is
// all path, at modification time 0.
func parseNotice(notice string) sourceChange {
	mtime, file, ok := strings.Cut(notice, " ")
	if n, err := strconv.ParseInt(mtime, 10, 64); ok && err == nil {
		return sourceChange{file, n}
	}
	return sourceChange{notice, 0}
}

var errStartup = errors.New("the WSGI application failed to load")

// handshake reads the HELLO (or STARTUP_ERROR) the worker sends on each
// connection once the application is loaded.
func (proc *process) handshake(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for _, c := range proc.conns {
		c.uc.SetReadDeadline(deadline)
		f, err := c.R.Next()
		c.uc.SetReadDeadline(time.Time{})
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return fmt.Errorf("the worker did not load the application within the startup timeout of %s", timeout)
			}
			proc.kill()
			<-proc.exited
			return fmt.Errorf("the worker process ended during startup: %s", exitStatus(proc.cmd.ProcessState))
		}
		switch f.Type {
		case protocol.StartupError:
			return fmt.Errorf("%w: %s", errStartup, f.Payload)
		case protocol.Hello:
			hello, err := protocol.ParsePairs(f.Payload)
			if err != nil {
				return err
			}
			if hello["protocol"] != strconv.Itoa(protocol.Version) {
				return fmt.Errorf("the worker speaks protocol version %q, this Caddy speaks %d", hello["protocol"], protocol.Version)
			}
		default:
			return fmt.Errorf("%w: expected HELLO, got %s", protocol.ErrProtocol, f.Type)
		}
	}
	return nil
}

// relay logs what the process writes to stdout or stderr outside a request:
// import-time output, background threads, crashes of the interpreter itself.
func (proc *process) relay(r io.Reader, logger *zap.Logger, level zapcore.Level, done *sync.WaitGroup) {
	defer done.Done()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		proc.output.add(line)
		if ce := logger.Check(level, line); ce != nil {
			ce.Write()
		}
	}
}

// running is false once the process has been reaped, which may be before
// supervise has marked it dead.
func (proc *process) running() bool {
	select {
	case <-proc.exited:
		return false
	default:
		return true
	}
}

func (proc *process) kill() {
	if proc.cmd != nil && proc.cmd.Process != nil {
		proc.cmd.Process.Kill()
	}
}

// closeConns closes the Caddy side of every connection. A request still
// reading from one gets an error, which it reports as 502.
func (proc *process) closeConns() {
	for _, c := range proc.conns {
		c.uc.Close()
	}
}

// exitStatus says how a process ended, as a shell would: "exited with status
// 1", "killed by SIGKILL", "killed by SIGSEGV (core dumped)".
func exitStatus(ps *os.ProcessState) string {
	if ps == nil {
		return "not started"
	}
	ws, ok := ps.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() {
		return fmt.Sprintf("exited with status %d", ps.ExitCode())
	}
	name := unix.SignalName(ws.Signal())
	if name == "" {
		name = fmt.Sprintf("signal %d", int(ws.Signal()))
	}
	if ws.CoreDump() {
		return "killed by " + name + " (core dumped)"
	}
	return "killed by " + name
}

// tailBuffer keeps the last lines of a process's output.
type tailBuffer struct {
	mu    sync.Mutex
	max   int
	lines []string
}

func (t *tailBuffer) add(line string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.lines) == t.max {
		t.lines = t.lines[1:]
	}
	t.lines = append(t.lines, line)
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.Join(t.lines, "\n")
}
