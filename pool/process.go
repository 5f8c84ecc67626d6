package pool

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
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
	// exited is closed when the process has been reaped and its last output
	// logged (see outputGrace).
	exited chan struct{}
	output *tailBuffer // the last lines the process wrote, for error reports
	log    *zap.Logger // the pool's, with the pid

	// The control connection (PROTOCOL.md §3), and the answers to stack
	// requests that watchControl reads from it; see stacks.go.
	control    *net.UnixConn
	stacks     chan []byte
	stacksOnce sync.Once
	dumpMu     sync.Mutex
	dumpTo     chan<- []byte // see askDump

	// Guarded by pool.mu.
	state State   // see State; only moveLocked changes it
	idle  []*Conn // the connections of its idle threads; only a serving process has any
	busy  int     // threads handed a request and not yet released

	// Lifecycle, guarded by pool.mu; see lifecycle.go.
	drained       chan struct{} // closed when it enters Stopping: out of service, no request left
	requests      int           // requests handed to it, for MaximumRequests
	lastActive    time.Time     // when it last became idle, for InactivityTimeout
	restartTimer  *time.Timer   // RestartInterval
	idleTimer     *time.Timer   // InactivityTimeout
	restartReason Reason        // why the process it replaced in its slot went; none for one the pool started with
	condemned     Reason        // why it was condemned, if it was: what its slot restarts for
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
	// The worker thread's id (threading.get_ident(), from its HELLO), by
	// which faulthandler names it in a stack dump.
	thread uint64
	// What it serves, to tag its stack in a dump; zero between requests.
	requestMu sync.Mutex
	request   Request
}

// Request describes what a connection serves, for the log and Requests.
type Request struct {
	Method, URI string
	Began       time.Time
	// Whether the client has gone: the worker finishes the request for no
	// one.
	ClientGone bool
}

// Serving records what the connection serves until it is released: a stack
// dump of a process whose interpreter does not answer (which then cannot
// say it) names the request of each thread by it, and Requests lists it.
func (c *Conn) Serving(r Request) {
	c.requestMu.Lock()
	c.request = r
	c.requestMu.Unlock()
}

// ClientGone marks the request the connection serves as one whose client
// has gone.
func (c *Conn) ClientGone() {
	c.requestMu.Lock()
	c.request.ClientGone = true
	c.requestMu.Unlock()
}

// serving is what Serving recorded, if the connection serves a request.
func (c *Conn) serving() (Request, bool) {
	c.requestMu.Lock()
	defer c.requestMu.Unlock()
	return c.request, c.request != Request{}
}

func (c *Conn) send(req []byte) {
	_, c.sendErr = c.uc.Write(req)
}

// Write sends bytes to the worker.
func (c *Conn) Write(b []byte) (int, error) { return c.uc.Write(b) }

// PID is the worker process's id, for logs.
func (c *Conn) PID() int {
	if c.proc == nil {
		return 0 // NewConn's
	}
	return c.proc.pid
}

// spawn starts a process and waits for its HELLO on every connection.
func (p *Pool) spawn() (*process, error) {
	cfg := p.cfg
	proc := &process{pool: p, exited: make(chan struct{}), drained: make(chan struct{}), output: &tailBuffer{max: 40}}
	// The worker's stdout and stderr: pipes of our own, as cmd.StdoutPipe's
	// are closed by cmd.Wait, which returns when the process exits: what it
	// wrote last must still be read.
	var outputs, outputEnds [2]*os.File
	for i := range outputs {
		r, w, err := os.Pipe()
		if err != nil {
			closeFiles(outputs[:i])
			closeFiles(outputEnds[:i])
			return nil, fmt.Errorf("creating worker output pipe: %w", err)
		}
		outputs[i], outputEnds[i] = r, w
	}
	// The worker's ends, which Caddy closes once the worker has them.
	childEnds := append(make([]*os.File, 0, cfg.Threads+3), outputEnds[:]...)
	defer func() {
		closeFiles(childEnds)
		if proc.cmd == nil {
			closeFiles(outputs[:])
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
	control, child, err := socketPair()
	if err != nil {
		proc.closeConns()
		return nil, fmt.Errorf("creating worker control socket: %w", err)
	}
	proc.control, proc.stacks = control, make(chan []byte, 1)
	childEnds = append(childEnds, child)
	args = append(args, "--control-fd", strconv.Itoa(3+cfg.Threads))
	if cfg.DeadlockTimeout > 0 {
		// Four heartbeats per timeout: one late heartbeat is not a deadlock.
		args = append(args, "--heartbeat", strconv.FormatFloat((cfg.DeadlockTimeout/4).Seconds(), 'f', -1, 64))
	}
	if cfg.ReloadOnChanges {
		args = append(args, "--reload-on-changes")
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
	cmd.Stdout, cmd.Stderr = outputEnds[0], outputEnds[1]
	cmd.ExtraFiles = childEnds[len(outputEnds):]
	// Own process group: a Ctrl-C at Caddy's terminal must not hit the
	// workers before Caddy has drained them. Pdeathsig: if Caddy dies, so do
	// its workers; SIGKILL, which a worker cannot ignore as it can SIGTERM.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if p.identity != nil {
		cmd.SysProcAttr.Credential = p.identity.cred
	}
	err = startWorker(cmd)
	// The worker has its ends now. Caddy must not hold them: a worker that
	// exits during start-up would not end the streams the handshake reads.
	closeFiles(childEnds)
	childEnds = nil
	if err != nil {
		proc.closeConns()
		control.Close()
		return nil, fmt.Errorf("starting Python interpreter %q: %w", cfg.Python, err)
	}
	proc.cmd, proc.pid, proc.started = cmd, cmd.Process.Pid, time.Now()
	p.track(proc)
	logger := p.log.With(zap.Int("pid", proc.pid))
	proc.log = logger
	var pipes sync.WaitGroup
	pipes.Add(2)
	go proc.relay(outputs[0], logger, zap.InfoLevel, &pipes)
	go proc.relay(outputs[1], logger, zap.ErrorLevel, &pipes)
	outputDone := make(chan struct{})
	go func() {
		pipes.Wait()
		close(outputDone)
	}()
	go func() {
		// The process's own exit, not the end of its pipes or sockets,
		// which a grandchild may hold for as long as it likes: the requests
		// of a dead worker fail at once, and supervise replaces it.
		cmd.Wait()
		// Dead as soon as it has exited, before its last output is read
		// and supervise wakes: no request goes to a process that has
		// exited (one that dies unnoticed still can: see Acquire).
		p.mu.Lock()
		p.moveLocked(proc, Dead)
		p.mu.Unlock()
		proc.shutdownConns()
		control.Close()
		select {
		case <-outputDone:
		case <-time.After(outputGrace):
		}
		close(proc.exited)
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
	go proc.watchControl(control, cfg.DeadlockTimeout, logger)
	return proc, nil
}

func closeFiles(files []*os.File) {
	for _, f := range files {
		f.Close()
	}
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

// forks are the processes to start on the forking thread (see startWorker).
var (
	forks      = make(chan fork)
	forkThread sync.Once
)

type fork struct {
	cmd  *exec.Cmd
	done chan error
}

// startWorker starts cmd from a thread that lives as long as Caddy. Linux
// sends the parent-death signal when the thread that forked the worker
// exits, not the process (Go issue 27505), and any goroutine that exits
// while locked to its thread (runtime.LockOSThread, as code that changes
// namespaces does) ends that thread, which may be the one an unlocked
// goroutine forked from: its workers would be killed with Caddy alive.
// One goroutine locked to its thread for good does every fork.
func startWorker(cmd *exec.Cmd) error {
	forkThread.Do(func() { go forkLoop() })
	f := fork{cmd, make(chan error, 1)}
	forks <- f
	return <-f.done
}

func forkLoop() {
	runtime.LockOSThread() // never unlocked: the thread never exits
	for f := range forks {
		f.done <- startInheritingNothing(f.cmd)
	}
}

// startInheritingNothing starts cmd, which gets the descriptors it is given
// (standard streams and ExtraFiles) and no other. Go opens descriptors
// close-on-exec, but Caddy may have inherited some that are not (from a
// shell or a service manager): a worker, which may run as another user,
// must not get them. So they are made close-on-exec first, every time, as
// code that is not Go (cgo) may have opened more since.
func startInheritingNothing(cmd *exec.Cmd) error {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return fmt.Errorf("listing Caddy's descriptors, to keep them from the worker: %w", err)
	}
	for _, e := range entries {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd > 2 {
			// An error is a descriptor closed since (the listing's own).
			unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC)
		}
	}
	return cmd.Start()
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
// change notice reloads the application; a stack report goes to the
// request for it (see stacks.go). With a deadlock timeout, it replaces the
// process when its heartbeats stop for that long: sending one needs the
// GIL, so silence means no Python code runs in the process any more (C
// code holding the GIL, a deadlock) and none of its requests will ever be
// answered. It returns when the process has exited, which closes control.
func (proc *process) watchControl(control *net.UnixConn, timeout time.Duration, logger *zap.Logger) {
	buf := make([]byte, 4096)
	var messages controlParser
	for {
		// Every time: readDump moves the deadline.
		var deadline time.Time
		if timeout > 0 {
			deadline = time.Now().Add(timeout)
		}
		control.SetReadDeadline(deadline)
		n, err := control.Read(buf)
		if to := proc.takeDumpRequest(); to != nil && err == nil {
			to <- readDump(control, buf[:n])
			messages = controlParser{}
			continue
		}
		// The changes one scan of the worker found come in one write: one
		// reload for all of them.
		changes, stacks := messages.parse(buf[:n])
		if changes != nil {
			proc.pool.sourceChanged(proc, changes)
		}
		for _, report := range stacks {
			select {
			case proc.stacks <- report:
			default: // nobody asked for it
			}
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
			p.condemnLocked(proc, ReasonDeadlockTimeout)
			p.mu.Unlock()
			proc.logDump(control)
			proc.kill()
		}
		return
	}
}

// Bounds on what Caddy keeps of a control message (after its first byte):
// longer ones are cut, so that a worker cannot make Caddy buffer without
// bound.
const (
	maxNotice      = 4096
	maxStackReport = 16 << 20
)

// sourceChange is a change notice: the file that changed, and its new
// modification time in nanoseconds since the epoch.
type sourceChange struct {
	file  string
	mtime int64
}

// controlParser splits what a worker sends on its control connection into
// change notices ('C', a modification time, a space, a path and a newline)
// and stack reports ('S', JSON and a newline); any other byte is a
// heartbeat. A message may be split across reads.
type controlParser struct {
	kind    byte // of the message being read, or 0
	message []byte
}

// parse returns the notices and the stack reports (their JSON) that data
// completes.
func (c *controlParser) parse(data []byte) (changes []sourceChange, stacks [][]byte) {
	for _, b := range data {
		switch {
		case c.kind == 0:
			if b == 'C' || b == 'S' {
				c.kind = b
			}
		case b == '\n':
			if c.kind == 'C' {
				changes = append(changes, parseNotice(string(c.message)))
			} else {
				stacks = append(stacks, bytes.Clone(c.message))
			}
			c.kind, c.message = 0, c.message[:0]
		case c.kind == 'C' && len(c.message) < maxNotice, c.kind == 'S' && len(c.message) < maxStackReport:
			c.message = append(c.message, b)
		}
	}
	return changes, stacks
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
			// Informational: without it, stack dumps are not split by request.
			c.thread, _ = strconv.ParseUint(hello["thread"], 10, 64)
		default:
			return fmt.Errorf("%w: expected HELLO, got %s", protocol.ErrProtocol, f.Type)
		}
	}
	return nil
}

// maxLogLine bounds a line of a worker's stdout or stderr in the log; the
// rest of a longer line is read and dropped, and the log says how long it
// was.
const maxLogLine = 64 << 10

// outputGrace bounds the wait for the end of a worker's output once it has
// exited, so that its last words (a traceback, a fatal error) are logged
// before its exit and reach start-up error reports. What it wrote is in the
// pipes already, and they end with it unless a grandchild of the worker
// holds them: that one's output is logged for as long as it runs.
const outputGrace = 100 * time.Millisecond

// relay logs what the process writes to stdout or stderr outside a request:
// import-time output, background threads, crashes of the interpreter itself.
// It reads to the end of the pipe whatever comes: a pipe left unread blocks
// its writer.
func (proc *process) relay(r *os.File, logger *zap.Logger, level zapcore.Level, done *sync.WaitGroup) {
	defer done.Done()
	defer r.Close()
	br := bufio.NewReader(r)
	var line []byte
	length := 0 // of the whole line, of which line holds maxLogLine bytes at most
	for {
		chunk, err := br.ReadSlice('\n')
		if err == nil {
			chunk = chunk[:len(chunk)-1]
		}
		length += len(chunk)
		line = append(line, chunk[:min(len(chunk), maxLogLine-len(line))]...)
		if err == bufio.ErrBufferFull {
			continue
		}
		if err == nil || length > 0 {
			proc.logLine(logger, level, line, length)
		}
		if err != nil {
			return
		}
		line, length = line[:0], 0
	}
}

// logLine logs one line of output, of which line is the first length bytes
// at most.
func (proc *process) logLine(logger *zap.Logger, level zapcore.Level, line []byte, length int) {
	cut := length > len(line)
	if !cut {
		line = bytes.TrimSuffix(line, []byte{'\r'})
	}
	var fields []zap.Field
	if l, name, text, ok := protocol.ParseLogLine(line); ok {
		level, line = LogLevel(l), text
		fields = append(fields, zap.String(PythonLoggerField, string(name)))
	}
	text := string(line)
	proc.output.add(text)
	if ce := logger.Check(level, text); ce != nil {
		if cut {
			fields = append(fields, zap.Bool("truncated", true), zap.Int("length", length))
		}
		ce.Write(fields...)
	}
}

// PythonLoggerField is the log field that names the Python logger of a
// record of Python's logging ("logger" is Caddy's own).
const PythonLoggerField = "python_logger"

// LogLevel is the zap level of a protocol log level (of a Log frame or a log
// record line); an unknown one is an error.
func LogLevel(level uint8) zapcore.Level {
	switch level {
	case protocol.LevelDebug:
		return zapcore.DebugLevel
	case protocol.LevelInfo:
		return zapcore.InfoLevel
	case protocol.LevelWarn:
		return zapcore.WarnLevel
	}
	return zapcore.ErrorLevel
}

func (proc *process) kill() {
	if proc.cmd != nil && proc.cmd.Process != nil {
		proc.cmd.Process.Kill()
	}
}

// shutdownConns ends every exchange with a process that has exited, even if
// a grandchild holds the worker's ends of the connections: a read gets what
// the worker sent, then the end of the stream; a write fails.
func (proc *process) shutdownConns() {
	for _, c := range proc.conns {
		c.uc.CloseRead()
		c.uc.CloseWrite()
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
