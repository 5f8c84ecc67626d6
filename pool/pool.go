// Package pool starts, supervises and dispatches to a pool of Python worker
// processes, each serving one connection per thread. It knows nothing about
// HTTP routing: callers acquire a connection, speak the protocol on it, and
// release it.
package pool

import (
	"cmp"
	"container/list"
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-wsgi/caddy-wsgi/python"
)

// Config describes a pool: a mod_wsgi daemon process group. Zero values get
// the defaults in New. Field names follow WSGIDaemonProcess's options.
//
// A process that is recycled takes no new request from then on; its
// replacement starts at once and takes requests as soon as it has loaded
// the application, while the old process finishes the requests it has
// (within GracefulTimeout) and exits.
type Config struct {
	// Name identifies the pool in logs and as mod_wsgi.process_group.
	Name string
	// Python is the interpreter to run, default "python3" from PATH, or
	// PythonHome's bin/python when that is set.
	Python string
	// Apps are the WSGI applications every worker loads, in order: a
	// REQUEST frame names its application by index. At least one.
	Apps []App
	// Processes and Threads size the pool; defaults 1 and 15, as mod_wsgi.
	Processes, Threads int
	// Dir is the workers' working directory (mod_wsgi's home), searched
	// first on import.
	Dir string
	// Env is added to the environment the workers inherit from Caddy.
	Env []string

	// PythonHome is a virtualenv (or installation) prefix: its interpreter
	// and site-packages are used. Its bin/python (or bin/python3) is run in
	// place of Python; New fails if it has neither.
	PythonHome string
	// PythonPath lists directories added with site.addsitedir, so .pth files
	// in them are honoured. They go at the end of sys.path, before the
	// import script and the application are loaded.
	PythonPath []string
	// Lang and Locale set LANG and LC_ALL for the workers; an Env entry for
	// the same variable wins.
	Lang, Locale string
	// DisplayName is what ps shows for the workers; "%{GROUP}" becomes
	// "(wsgi:NAME)" as in mod_wsgi. It replaces both the command line (ps
	// aux, ps -f) and the command name (ps -e, top, pgrep), which Linux cuts
	// to 15 bytes.
	DisplayName string
	// User runs the workers as this user (name or number), with its HOME,
	// USER and LOGNAME; Caddy must run as root to use another user. Empty
	// is Caddy's own user, except root: a root Caddy needs User set, to
	// "root" if the workers are to run as root (New fails with ErrRoot).
	User string
	// Group is the workers' group; default User's primary group.
	Group string
	// SupplementaryGroups are the workers' other groups; default User's, as
	// a login gets them.
	SupplementaryGroups []string
	// ImportScript is a Python script run in each worker at start-up, before
	// the application is loaded, as a module of its own (mod_wsgi's
	// WSGIImportScript); naming the WSGI script itself preloads the
	// application, which is then not run twice. An exception in it fails
	// the start-up as one in the application does.
	ImportScript string
	// Umask is the workers' file mode creation mask. Unlike the other
	// fields', its zero is a value (umask 000), not a default: a negative
	// Umask leaves Caddy's.
	Umask int

	// StartupTimeout bounds how long a worker may take to load the application.
	StartupTimeout time.Duration
	// QueueTimeout bounds how long a request waits for an idle thread.
	QueueTimeout time.Duration
	// MaxQueue bounds how many requests may wait for a thread: Acquire fails
	// at once with ErrQueueFull when that many already wait; 0 is no bound.
	MaxQueue int
	// MaximumRequests recycles a process once it has been handed this many
	// requests; 0 never.
	MaximumRequests int
	// RestartInterval recycles a process after it has run this long; 0 never.
	RestartInterval time.Duration
	// InactivityTimeout recycles a process that has had no request in
	// progress for this long; 0 never.
	InactivityTimeout time.Duration
	// GracefulTimeout is how long a recycled process may take to finish the
	// requests it has; then it is killed and they fail. Default
	// DefaultGracefulTimeout.
	GracefulTimeout time.Duration
	// ShutdownTimeout is how long a process may take to exit once its
	// connections are closed (it is recycled and done, or the pool is
	// closing) before it is killed; default 5s.
	ShutdownTimeout time.Duration
	// MemoryLimit recycles a process whose resident memory (VmRSS, checked
	// every second) passes this many bytes; 0 never.
	MemoryLimit int64
	// CPUTimeLimit recycles a process that has used this much CPU time
	// (user and system, checked every second); 0 never. As mod_wsgi's
	// cpu-time-limit, it bounds runaway processes: the recycle is graceful.
	CPUTimeLimit time.Duration
	// DeadlockTimeout replaces a process whose interpreter stops answering
	// for this long; 0 never. The worker sends a heartbeat four times per
	// timeout from Python code, which needs the GIL, so C code holding the
	// GIL or a deadlock silences it; the process is then killed and
	// restarted, and its requests fail.
	DeadlockTimeout time.Duration
	// ScriptReloading reloads the application (see Pool.Reload) when the
	// modification time of the WSGI script file changes, checked every
	// second, as mod_wsgi's WSGIScriptReloading. Module applications have
	// no script to watch.
	ScriptReloading bool
	// ReloadOnChanges reloads the application (see Pool.Reload) when the
	// source file of any module a worker has imported changes, as
	// mod_wsgi-express's --reload-on-changes; each worker checks once a
	// second. One change is one reload, however many processes notice it;
	// if the new code does not load, the old processes keep serving and
	// watching, and the next change (the fix) reloads again.
	ReloadOnChanges bool
}

// App is a WSGI application, as WSGIScriptAlias names one.
type App struct {
	// Target is a WSGI script path, "module:callable", or a PasteDeploy
	// configuration file, as Type says.
	Target string
	// Callable is the name of the WSGI callable in a script, default
	// "application".
	Callable string
	// Type is TypeScript, TypeModule or TypePaste; default InferType's.
	Type string
}

// Application types, as mod_wsgi-express's --application-type.
const (
	TypeScript = "script" // a WSGI script file, loaded as mod_wsgi loads one
	TypeModule = "module" // package.module[:callable], imported
	TypePaste  = "paste"  // a PasteDeploy .ini file
)

// InferType is the type of an application that names none: a module for a
// target of the form module:callable, else a script.
func InferType(target string) string {
	if strings.Contains(target, ":") {
		return TypeModule
	}
	return TypeScript
}

// Errors returned by Acquire.
var (
	ErrQueueTimeout = errors.New("no worker thread became free within the queue timeout")
	// ErrQueueFull is MaxQueue reached. The line moves only as requests
	// finish, which the pool cannot foresee: a short fixed Retry-After is
	// as good a hint as any.
	ErrQueueFull = errors.New("too many requests are waiting for a worker thread")
	ErrClosed    = errors.New("the worker pool is shut down")
	// ErrGaveUp is AcquireOr's giveUp closed before a thread took the
	// request: no worker saw it.
	ErrGaveUp = errors.New("gave up waiting for a worker thread")
)

// ErrRestarting is Reload asked while a reload (another Reload, or a script
// or source change) is still replacing processes.
var ErrRestarting = errors.New("the worker processes are being restarted already")

// Pool is a supervised set of worker processes.
type Pool struct {
	cfg        Config
	log        *zap.Logger
	runtimeDir string
	identity   *identity // nil: workers run as Caddy's user
	scripts    []string  // the script files ScriptReloading watches

	mu        sync.Mutex
	procs     []*process            // in service, one slot per process; nil while a slot's process starts
	all       map[*process]struct{} // every started process not yet reaped, for Close
	waiters   list.List             // of *waiter, oldest first
	closed    bool
	modified  map[string]int64 // the latest modification time reported for each changed source file (ReloadOnChanges)
	reloading int              // reloads still replacing processes
	counters  counters
	stopped   chan struct{}
	wg        sync.WaitGroup // the pool's goroutines, for Close to wait for

	testHookQueued func() // called when a request joins the line
}

// DefaultGracefulTimeout is Config.GracefulTimeout's default.
const DefaultGracefulTimeout = 15 * time.Second

// New starts a pool and returns once every process has loaded the
// application, or with the first process's error if one could not. It
// starts none if the workers' user could not run the interpreter, enter Dir
// or read the application's files (see checkAccess).
func New(cfg Config, logger *zap.Logger) (*Pool, error) {
	id, err := lookupIdentity(cfg)
	if err != nil {
		return nil, err
	}
	if cfg.Python, err = Interpreter(cfg.Python, cfg.PythonHome); err != nil {
		return nil, err
	}
	if len(cfg.Apps) == 0 {
		return nil, errors.New("no WSGI application configured")
	}
	if len(cfg.Apps) > math.MaxUint16+1 {
		return nil, fmt.Errorf("%d applications in one pool; the most is %d", len(cfg.Apps), math.MaxUint16+1)
	}
	cfg.Apps = slices.Clone(cfg.Apps)
	for i := range cfg.Apps {
		app := &cfg.Apps[i]
		if app.Callable == "" {
			app.Callable = "application"
		}
		if app.Type == "" {
			app.Type = InferType(app.Target)
		}
	}
	if cfg.Processes <= 0 {
		cfg.Processes = 1
	}
	if cfg.Threads <= 0 {
		cfg.Threads = 15
	}
	if cfg.StartupTimeout <= 0 {
		cfg.StartupTimeout = 15 * time.Second
	}
	if cfg.QueueTimeout <= 0 {
		cfg.QueueTimeout = 45 * time.Second
	}
	if cfg.GracefulTimeout <= 0 {
		cfg.GracefulTimeout = DefaultGracefulTimeout
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = 5 * time.Second
	}
	if err := checkAccess(cfg, id); err != nil {
		return nil, err
	}
	removeStaleRuntimeDirs(os.TempDir(), logger)
	dir, err := os.MkdirTemp("", fmt.Sprintf("%s%d-", runtimePrefix, os.Getpid()))
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := python.Extract(dir); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("writing the worker runtime: %w", err)
	}
	p := &Pool{cfg: cfg, log: logger, runtimeDir: dir, identity: id, scripts: reloadableScripts(cfg),
		procs: make([]*process, cfg.Processes), all: make(map[*process]struct{}), stopped: make(chan struct{}),
		counters: counters{restarts: make(map[Reason]uint64)}}
	// Before the processes load the scripts, so that no change is missed.
	mtimes := modTimes(p.scripts)

	errs := make(chan error, cfg.Processes)
	for slot := range p.procs {
		go func() {
			proc, err := p.spawn()
			if err == nil {
				p.adopt(slot, proc, "", "")
			}
			errs <- err
		}()
	}
	for range p.procs {
		if e := <-errs; e != nil && err == nil {
			err = e
		}
	}
	if err != nil {
		p.Close()
		return nil, err
	}
	if cfg.MemoryLimit > 0 || cfg.CPUTimeLimit > 0 || len(p.scripts) > 0 {
		p.wg.Add(1)
		go p.watch(mtimes)
	}
	p.log.Info("worker pool started", zap.String("python", cfg.Python),
		zap.Int("processes", cfg.Processes), zap.Int("threads", cfg.Threads))
	return p, nil
}

// adopt puts a started process in service in its slot, hands its threads to
// waiting requests, and supervises it; it replaces its slot's previous
// process for reason (detail says it for a human; both empty for the
// processes the pool starts with). An older process in the slot is
// recycled; a newer one (a reload crossed a restart) makes this one
// surplus, and it is stopped.
func (p *Pool) adopt(slot int, proc *process, reason Reason, detail string) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		proc.closeConns()
		return
	}
	if cur := p.procs[slot]; cur != nil {
		if !cur.started.Before(proc.started) {
			p.retireLocked(proc)
			p.mu.Unlock()
			return
		}
		p.log.Info("recycling worker process", zap.Int("pid", cur.pid), zap.String("reason", detail), reason.field())
		p.counters.restarts[reason]++
		p.retireLocked(cur)
	}
	proc.restartReason = reason
	p.procs[slot] = proc
	// One that died since its handshake takes its slot all the same, and
	// supervise replaces it as crashed.
	if p.moveLocked(proc, Serving) {
		p.startTimersLocked(proc)
	}
	p.wg.Add(1)
	go p.supervise(slot, proc)
	var conns []*Conn
	var handed []*waiter
	for _, c := range proc.conns {
		if proc.state != Serving {
			// It died, or reached MaximumRequests with the threads handed
			// out so far.
			c.close()
			continue
		}
		proc.busy++
		if w := p.releaseLocked(c); w != nil {
			conns = append(conns, c)
			handed = append(handed, w)
		}
	}
	p.mu.Unlock()
	for i, w := range handed {
		w.deliver(conns[i])
	}
}

// supervise waits for a process to exit, and restarts it if it was still in
// service: a recycled process's replacement was started when it was recycled.
func (p *Pool) supervise(slot int, proc *process) {
	defer p.wg.Done()
	<-proc.exited
	p.mu.Lock()
	// Dead by now (see spawn); in its slot if it died in service.
	inService := p.procs[slot] == proc
	if inService {
		p.procs[slot] = nil
	}
	closed, served := p.closed, proc.requests > 0
	reason := cmp.Or(proc.condemned, ReasonCrash)
	if inService && !closed {
		p.counters.restarts[reason]++
	}
	p.mu.Unlock()
	proc.closeConns()
	if closed {
		return
	}
	status := exitStatus(proc.cmd.ProcessState)
	if !inService {
		p.log.Info("recycled worker process exited", zap.Int("pid", proc.pid), zap.String("status", status))
		return
	}
	p.log.Error("worker process exited; starting a new one", zap.Int("pid", proc.pid), zap.String("status", status),
		zap.Duration("uptime", time.Since(proc.started)), reason.field())

	// Back off while processes die young without serving, so that an
	// application that dies as soon as it has loaded does not become a busy
	// loop (refill backs off for one that does not load). One that crashed
	// serving is replaced at once: its requests set the pace.
	delay := time.Duration(0)
	if !served && time.Since(proc.started) < 10*time.Second {
		delay = time.Second
	}
	p.refill(slot, proc, delay, reason)
}

// waiter is a request waiting in line for a worker thread.
type waiter struct {
	ch    chan *Conn // buffered: delivering never waits for the waiter
	req   []byte
	timer *time.Timer // QueueTimeout's; stopped while the waiter is pooled
}

// waiters are reused, with their channel and timer: under load every
// request waits in line, and a new channel and timer each time cost three
// allocations and the timer's set-up.
var waiterPool = sync.Pool{New: func() any {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &waiter{ch: make(chan *Conn, 1), timer: t}
}}

// putWaiter pools a waiter that nobody can deliver to any more, and whose
// channel is empty.
func putWaiter(w *waiter) {
	w.timer.Stop()
	w.req = nil
	waiterPool.Put(w)
}

// Acquire takes an idle connection from the least busy process, waiting in
// line when every thread is busy, and writes req to it. Whoever frees a
// thread writes the next waiting request at once, so the worker starts on it
// without waiting for that request's goroutine to be scheduled. Once req is
// written the connection is the caller's, even if ctx ends meanwhile; a
// request that cannot be written (its worker just died) is retried on
// another thread, since no worker saw it.
func (p *Pool) Acquire(ctx context.Context, req []byte) (*Conn, error) {
	return p.AcquireOr(ctx, req, nil)
}

// AcquireOr is Acquire for a caller that may stop waiting for a reason of
// its own, other than its request's end: when giveUp closes (a nil channel
// never does), a request not yet handed to a thread is never sent, and
// AcquireOr returns ErrGaveUp.
func (p *Pool) AcquireOr(ctx context.Context, req []byte, giveUp <-chan struct{}) (*Conn, error) {
	for {
		c, err := p.acquire(ctx, req, giveUp)
		if err != nil || c.sendErr == nil {
			return c, err
		}
		// The worker died before the request reached it, so nothing was
		// processed: condemn its process, for supervise to restart as
		// crashed, and try another thread.
		p.log.Warn("worker process gone before it received a request; retrying on another",
			zap.Int("pid", c.PID()), zap.Error(c.sendErr))
		c.proc.kill()
		p.Release(c, WorkerGone)
	}
}

func (p *Pool) acquire(ctx context.Context, req []byte, giveUp <-chan struct{}) (*Conn, error) {
	select {
	case <-giveUp:
		return nil, ErrGaveUp
	default:
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, ErrClosed
	}
	// Only a serving process has idle threads.
	var best *process
	for _, proc := range p.procs {
		if proc != nil && len(proc.idle) > 0 && (best == nil || proc.busy < best.busy) {
			best = proc
		}
	}
	if best != nil {
		c := best.idle[len(best.idle)-1]
		best.idle = best.idle[:len(best.idle)-1]
		best.busy++
		p.servedLocked(best)
		p.mu.Unlock()
		c.send(req)
		return c, nil
	}
	if p.cfg.MaxQueue > 0 && p.waiters.Len() >= p.cfg.MaxQueue {
		p.counters.queueFull++
		p.mu.Unlock()
		return nil, ErrQueueFull
	}
	w := waiterPool.Get().(*waiter)
	w.req = req
	elem := p.waiters.PushBack(w)
	p.mu.Unlock()
	if p.testHookQueued != nil {
		p.testHookQueued()
	}

	// Once a connection (or Stop's nil) has been received from w.ch, or w
	// has been taken out of the line here, nothing refers to w any more.
	defer putWaiter(w)
	w.timer.Reset(p.cfg.QueueTimeout)
	var err error
	select {
	case c := <-w.ch:
		if c == nil {
			return nil, ErrClosed
		}
		return c, nil
	case <-w.timer.C:
		err = ErrQueueTimeout
	case <-ctx.Done():
		err = ctx.Err()
	case <-giveUp:
		err = ErrGaveUp
	}
	p.mu.Lock()
	if elem.Value != nil {
		p.waiters.Remove(elem)
		elem.Value = nil
		if err == ErrQueueTimeout {
			p.counters.queueTimeouts++
		}
		p.mu.Unlock()
		return nil, err
	}
	p.mu.Unlock()
	// Handed over as we gave up: the request is on its way to the worker.
	if c := <-w.ch; c != nil {
		return c, nil
	}
	return nil, ErrClosed
}

// Outcome is how the exchange on a connection ended, for Release.
type Outcome uint8

const (
	// Reusable: the exchange ended in step; the connection takes the next
	// request.
	Reusable Outcome = iota
	// OutOfStep: the exchange broke off where the two ends may disagree on
	// what comes next (a protocol violation, a failed read or write): the
	// connection is closed and its process recycled, which lets the
	// process's other requests finish.
	OutOfStep
	// TimedOut: the caller stopped waiting for a worker still busy with
	// the request (its request_timeout passed): as OutOfStep, and logged as
	// request_timeout.
	TimedOut
	// WorkerGone: the worker died during the exchange (the stream ended or
	// was reset). The process gets no further request; supervise logs its
	// exit and starts its replacement.
	WorkerGone
)

// Release returns a connection, with how its exchange ended.
func (p *Pool) Release(c *Conn, outcome Outcome) {
	proc := c.proc
	if outcome == TimedOut {
		// Before the process is recycled: its threads are still where the
		// application is stuck.
		proc.logStacks()
	}
	c.Serving(Request{})
	p.mu.Lock()
	switch outcome {
	case OutOfStep:
		p.recycleLocked(proc, ReasonOutOfStep, "connection out of step")
	case TimedOut:
		p.recycleLocked(proc, ReasonRequestTimeout, "request_timeout")
	case WorkerGone:
		p.condemnLocked(proc, ReasonCrash)
	}
	if proc.state != Serving {
		p.dropLocked(c)
		p.mu.Unlock()
		c.close()
		return
	}
	w := p.releaseLocked(c)
	p.mu.Unlock()
	w.deliver(c)
}

// dropLocked counts c's thread as no longer busy for good, for a process
// that takes no new request: the last one out of a draining process lets it
// stop. The caller closes c once it has unlocked p.mu.
func (p *Pool) dropLocked(c *Conn) {
	c.proc.busy--
	if c.proc.busy == 0 && c.proc.state == Draining {
		p.moveLocked(c.proc, Stopping)
	}
}

// condemnLocked makes a process that is dying, or must die, dead at once:
// no request goes to it, and its idle threads' connections close.
// supervise logs its exit and, if it was in service, starts its
// replacement for reason.
func (p *Pool) condemnLocked(proc *process, reason Reason) {
	if p.moveLocked(proc, Dead) {
		proc.condemned = reason
	}
}

// releaseLocked makes c idle, or returns the waiter it now belongs to, for
// the caller to deliver it to once it has unlocked p.mu.
func (p *Pool) releaseLocked(c *Conn) *waiter {
	if front := p.waiters.Front(); front != nil {
		w := p.waiters.Remove(front).(*waiter)
		front.Value = nil
		p.servedLocked(c.proc)
		return w
	}
	proc := c.proc
	proc.busy--
	proc.idle = append(proc.idle, c)
	if proc.busy == 0 {
		proc.lastActive = time.Now()
	}
	return nil
}

// deliver writes the waiter's request to c and hands c over.
func (w *waiter) deliver(c *Conn) {
	if w != nil {
		c.send(w.req)
		w.ch <- c
	}
}

// Stop is the part of Close that does not wait, for a caller that closes
// in the background but may exit before that ends (as Caddy does):
// waiting requests fail, the pool takes no new request and starts no more
// processes, and its runtime files, which a worker needs only to start, are
// removed. Requests in flight go on until Close.
func (p *Pool) Stop() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	close(p.stopped)
	for e := p.waiters.Front(); e != nil; e = e.Next() {
		e.Value.(*waiter).ch <- nil
		e.Value = nil
	}
	p.waiters.Init()
	for proc := range p.all {
		p.outOfServiceLocked(proc)
	}
	p.mu.Unlock()
	return os.RemoveAll(p.runtimeDir)
}

// Close stops the pool (see Stop), then lets requests in flight finish
// within GracefulTimeout, then closes every connection (a worker exits when
// its connections close), kills processes still running after
// ShutdownTimeout, and returns once every process and goroutine of the pool
// has ended, but for those logging the output of a worker's grandchildren
// that outlive it.
func (p *Pool) Close() error {
	err := p.Stop()
	p.mu.Lock()
	// Recycled and starting processes too.
	procs := slices.Collect(maps.Keys(p.all))
	p.mu.Unlock()

	graceful := time.Now().Add(p.cfg.GracefulTimeout)
	for _, proc := range procs {
		select {
		case <-proc.drained:
		case <-proc.exited:
		case <-time.After(time.Until(graceful)):
			p.log.Warn("worker process still has requests after the graceful timeout; stopping it",
				zap.Int("pid", proc.pid), zap.Duration("graceful_timeout", p.cfg.GracefulTimeout))
		}
		proc.closeConns()
	}
	shutdown := time.Now().Add(p.cfg.ShutdownTimeout)
	for _, proc := range procs {
		select {
		case <-proc.exited:
		case <-time.After(time.Until(shutdown)):
			p.log.Warn("worker process did not exit after its connections closed; killing it", zap.Int("pid", proc.pid))
			proc.kill()
			<-proc.exited
		}
	}
	p.wg.Wait()
	return err
}
