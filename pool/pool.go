// Package pool starts, supervises and dispatches to a pool of Python worker
// processes, each serving one connection per thread. It knows nothing about
// HTTP routing: callers acquire a connection, speak the protocol on it, and
// release it.
package pool

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-wsgi/caddy-wsgi/python"
)

// Config describes a pool: a mod_wsgi daemon process group. Zero values get
// the defaults in New. Field names follow WSGIDaemonProcess's options.
type Config struct {
	// Name identifies the pool in logs and as mod_wsgi.process_group.
	Name string
	// Python is the interpreter to run, default "python3" from PATH, or
	// PythonHome's bin/python when that is set.
	Python string
	// App is a WSGI script path, or "module:callable".
	App string
	// Callable is the name of the WSGI callable in a script, default "application".
	Callable string
	// Processes and Threads size the pool; defaults 1 and 15, as mod_wsgi.
	Processes, Threads int
	// Dir is the workers' working directory (mod_wsgi's home), searched
	// first on import.
	Dir string
	// Env is added to the environment the workers inherit from Caddy.
	Env []string

	// PythonHome is a virtualenv (or installation) prefix: its interpreter
	// and site-packages are used.
	PythonHome string
	// PythonPath lists directories added with site.addsitedir, so .pth files
	// in them are honoured.
	PythonPath []string
	// Lang and Locale set LANG and LC_ALL for the workers.
	Lang, Locale string
	// DisplayName is what ps shows for the workers; "%{GROUP}" becomes
	// "(wsgi:NAME)" as in mod_wsgi.
	DisplayName string
	// ImportScript is a Python script run in each worker at start-up, before
	// the application is loaded.
	ImportScript string
	// Umask is the workers' file mode creation mask; negative leaves Caddy's.
	Umask int

	// StartupTimeout bounds how long a worker may take to load the application.
	StartupTimeout time.Duration
	// QueueTimeout bounds how long a request waits for an idle thread.
	QueueTimeout time.Duration
	// MaxQueue bounds how many requests may wait for a thread; 0 is no bound.
	MaxQueue int
	// MaximumRequests recycles a process after it has served this many
	// requests; 0 never.
	MaximumRequests int
	// RestartInterval recycles a process after it has run this long; 0 never.
	RestartInterval time.Duration
	// InactivityTimeout recycles a process that has served no request for
	// this long; 0 never.
	InactivityTimeout time.Duration
	// GracefulTimeout is how long a recycled process may finish the requests
	// it has before it is stopped; default 15s.
	GracefulTimeout time.Duration
	// ShutdownTimeout is how long a stopping process may take to exit after
	// its connections close, before it is killed; default 5s.
	ShutdownTimeout time.Duration
	// MemoryLimit recycles a process whose resident memory passes this many
	// bytes; 0 never.
	MemoryLimit int64
	// DeadlockTimeout replaces a process whose interpreter stops answering
	// for this long; 0 never.
	DeadlockTimeout time.Duration
	// ScriptReloading recycles every process gracefully when the WSGI script
	// file's modification time changes (mod_wsgi's WSGIScriptReloading).
	ScriptReloading bool
}

// Errors returned by Acquire.
var (
	ErrQueueTimeout = errors.New("no worker thread became free within the queue timeout")
	ErrClosed       = errors.New("the worker pool is shut down")
)

// Pool is a supervised set of worker processes.
type Pool struct {
	cfg        Config
	log        *zap.Logger
	runtimeDir string

	mu      sync.Mutex
	procs   []*process // one slot per process; nil while a slot restarts
	waiters list.List  // of *waiter, oldest first
	closed  bool
	stopped chan struct{}

	testHookQueued func() // called when a request joins the line
}

// New starts a pool and returns once every process has loaded the
// application, or with the first process's error if one could not.
func New(cfg Config, logger *zap.Logger) (*Pool, error) {
	if cfg.Python == "" {
		cfg.Python = "python3"
	}
	if cfg.Callable == "" {
		cfg.Callable = "application"
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
	dir, err := os.MkdirTemp("", "caddy-wsgi-")
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
	p := &Pool{cfg: cfg, log: logger, runtimeDir: dir, procs: make([]*process, cfg.Processes), stopped: make(chan struct{})}

	errs := make(chan error, cfg.Processes)
	for slot := range p.procs {
		go func() {
			proc, err := p.spawn()
			if err == nil {
				p.adopt(slot, proc)
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
	p.log.Info("worker pool started", zap.String("python", cfg.Python),
		zap.Int("processes", cfg.Processes), zap.Int("threads", cfg.Threads))
	return p, nil
}

// Capacity is how many requests the pool serves at once.
func (p *Pool) Capacity() int { return p.cfg.Processes * p.cfg.Threads }

// adopt puts a started process in its slot, hands its threads to waiting
// requests, and supervises it.
func (p *Pool) adopt(slot int, proc *process) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		proc.closeConns()
		return
	}
	p.procs[slot] = proc
	var handed []*waiter
	for _, c := range proc.conns {
		proc.busy++
		handed = append(handed, p.releaseLocked(c))
	}
	p.mu.Unlock()
	for i, w := range handed {
		w.deliver(proc.conns[i])
	}
	go p.supervise(slot, proc)
}

// supervise waits for a process to exit and starts its replacement.
func (p *Pool) supervise(slot int, proc *process) {
	<-proc.exited
	p.mu.Lock()
	proc.dead = true
	proc.idle = nil
	p.procs[slot] = nil
	closed := p.closed
	p.mu.Unlock()
	proc.closeConns()
	if closed {
		return
	}
	status := exitStatus(proc.cmd.ProcessState)
	p.log.Error("worker process exited; starting a new one", zap.Int("pid", proc.pid), zap.String("status", status),
		zap.Duration("uptime", time.Since(proc.started)))

	// Back off while processes die young, so that a crash at import time does
	// not become a busy loop.
	delay := time.Duration(0)
	if time.Since(proc.started) < 10*time.Second {
		delay = time.Second
	}
	for {
		select {
		case <-time.After(delay):
		case <-p.stopped:
			return
		}
		next, err := p.spawn()
		if err == nil {
			p.log.Info("worker process restarted", zap.Int("pid", next.pid), zap.Int("replaces", proc.pid))
			p.adopt(slot, next)
			return
		}
		p.log.Error("could not restart worker process", zap.Error(err))
		delay = min(2*delay+time.Second, 30*time.Second)
	}
}

// waiter is a request waiting in line for a worker thread.
type waiter struct {
	ch  chan *Conn
	req []byte
}

// Acquire takes an idle connection from the least busy process, waiting in
// line when every thread is busy, and writes req to it. Whoever frees a
// thread writes the next waiting request at once, so the worker starts on it
// without waiting for that request's goroutine to be scheduled. Once req is
// written the connection is the caller's, even if ctx ends meanwhile; a
// request that cannot be written (its worker just died) is retried on
// another thread, since no worker saw it.
func (p *Pool) Acquire(ctx context.Context, req []byte) (*Conn, error) {
	for {
		c, err := p.acquire(ctx, req)
		if err != nil || c.sendErr == nil {
			return c, err
		}
		// The worker died before the request reached it, so nothing was
		// processed: drop its process and try another thread.
		p.log.Warn("worker process gone before it received a request; retrying on another",
			zap.Int("pid", c.PID()), zap.Error(c.sendErr))
		p.Release(c, false)
	}
}

func (p *Pool) acquire(ctx context.Context, req []byte) (*Conn, error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, ErrClosed
	}
	var best *process
	for _, proc := range p.procs {
		if proc != nil && len(proc.idle) > 0 && !proc.dead && proc.running() && (best == nil || proc.busy < best.busy) {
			best = proc
		}
	}
	if best != nil {
		c := best.idle[len(best.idle)-1]
		best.idle = best.idle[:len(best.idle)-1]
		best.busy++
		p.mu.Unlock()
		c.send(req)
		return c, nil
	}
	w := &waiter{ch: make(chan *Conn, 1), req: req}
	elem := p.waiters.PushBack(w)
	p.mu.Unlock()
	if p.testHookQueued != nil {
		p.testHookQueued()
	}

	timer := time.NewTimer(p.cfg.QueueTimeout)
	defer timer.Stop()
	var err error
	select {
	case c := <-w.ch:
		if c == nil {
			return nil, ErrClosed
		}
		return c, nil
	case <-timer.C:
		err = ErrQueueTimeout
	case <-ctx.Done():
		err = ctx.Err()
	}
	p.mu.Lock()
	if elem.Value != nil {
		p.waiters.Remove(elem)
		elem.Value = nil
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

// Release returns a connection. reusable is false when the exchange on it
// did not end cleanly; the process is then out of step and is replaced.
func (p *Pool) Release(c *Conn, reusable bool) {
	p.mu.Lock()
	if !reusable && !c.proc.dead {
		// Condemned: none of its threads takes another request; supervise
		// reaps it and starts a replacement.
		c.proc.dead = true
		c.proc.idle = nil
		c.proc.kill()
	}
	if c.proc.dead || p.closed {
		c.proc.busy--
		p.mu.Unlock()
		c.R.Close()
		return
	}
	w := p.releaseLocked(c)
	p.mu.Unlock()
	w.deliver(c)
}

// releaseLocked makes c idle, or returns the waiter it now belongs to, for
// the caller to deliver it to once it has unlocked p.mu.
func (p *Pool) releaseLocked(c *Conn) *waiter {
	if front := p.waiters.Front(); front != nil {
		w := p.waiters.Remove(front).(*waiter)
		front.Value = nil
		return w
	}
	c.proc.busy--
	c.proc.idle = append(c.proc.idle, c)
	return nil
}

// deliver writes the waiter's request to c and hands c over.
func (w *waiter) deliver(c *Conn) {
	if w != nil {
		c.send(w.req)
		w.ch <- c
	}
}

// Close stops the pool: waiting requests fail, every connection is closed (a
// worker exits when its connections close), and processes still running
// after a grace period are killed.
func (p *Pool) Close() error {
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
	procs := append([]*process(nil), p.procs...)
	p.mu.Unlock()

	for _, proc := range procs {
		if proc != nil {
			proc.closeConns()
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for _, proc := range procs {
		if proc == nil {
			continue
		}
		select {
		case <-proc.exited:
		case <-time.After(time.Until(deadline)):
			p.log.Warn("worker process did not exit after its connections closed; killing it", zap.Int("pid", proc.pid))
			proc.kill()
			<-proc.exited
		}
	}
	return os.RemoveAll(p.runtimeDir)
}
