package pool

// The life cycle of a daemon process group, as mod_wsgi's: processes are
// recycled (replaced gracefully) on maximum_requests, restart_interval,
// inactivity_timeout, memory_limit and cpu_time_limit, when a connection falls
// out of step, and when a script or another source file changes. A
// process's State (state.go) says where each one is.

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
)

// recycle is recycleLocked for callers that do not hold p.mu.
func (p *Pool) recycle(proc *process, reason Reason, detail string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.recycleLocked(proc, reason, detail)
}

// recycleLocked takes a serving process out of service at once and starts
// its replacement, which takes requests as soon as it has loaded the
// application: meanwhile the pool runs one process more than Processes. The
// old process finishes the requests it has and exits (see drain). detail
// is the reason for a human, with the numbers involved.
func (p *Pool) recycleLocked(proc *process, reason Reason, detail string) {
	// Out of service already, or dead: supervise restarts a dead one. Stop
	// takes every process out of service, so none serves once it has run.
	if proc.state != Serving {
		return
	}
	slot := p.slotLocked(proc)
	p.log.Info("recycling worker process", zap.Int("pid", proc.pid), zap.String("reason", detail), reason.field())
	p.counters.restarts[reason]++
	p.retireLocked(proc)
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		p.refill(slot, proc, 0, reason)
	}()
}

// retireLocked takes proc out of service, and drains it.
func (p *Pool) retireLocked(proc *process) {
	p.outOfServiceLocked(proc)
	p.wg.Add(1)
	go p.drain(proc)
}

// outOfServiceLocked makes a starting or serving proc take no new request,
// and frees its slot: it drains, or stops at once if it has no request (see
// moveLocked). One draining, stopping or dead already stays so.
func (p *Pool) outOfServiceLocked(proc *process) {
	if slot := p.slotLocked(proc); slot >= 0 {
		p.procs[slot] = nil
	}
	if proc.busy > 0 {
		p.moveLocked(proc, Draining)
	} else {
		p.moveLocked(proc, Stopping)
	}
}

// drain kills a recycled process that still has requests after
// GracefulTimeout (they fail, as in a crash), or that has not exited
// ShutdownTimeout after its connections closed: draining or stopping too
// long, it is made dead.
func (p *Pool) drain(proc *process) {
	defer p.wg.Done()
	graceful := time.NewTimer(p.cfg.GracefulTimeout)
	defer graceful.Stop()
	select {
	case <-proc.drained:
	case <-graceful.C:
		p.log.Warn("recycled worker process still has requests after the graceful timeout; killing it",
			zap.Int("pid", proc.pid), zap.Duration("graceful_timeout", p.cfg.GracefulTimeout))
		proc.kill()
		return
	case <-proc.exited:
		return
	case <-p.stopped:
		return // Close stops it
	}
	shutdown := time.NewTimer(p.cfg.ShutdownTimeout)
	defer shutdown.Stop()
	select {
	case <-shutdown.C:
		p.log.Warn("recycled worker process did not exit after its connections closed; killing it",
			zap.Int("pid", proc.pid), zap.Duration("shutdown_timeout", p.cfg.ShutdownTimeout))
		proc.kill()
	case <-proc.exited:
	case <-p.stopped:
	}
}

// refill starts a process for an empty slot after delay, retrying with a
// growing delay while processes fail to start, so that an application that
// cannot load does not become a busy loop.
func (p *Pool) refill(slot int, old *process, delay time.Duration, reason Reason) {
	for {
		if delay > 0 {
			select {
			case <-time.After(delay):
			case <-p.stopped:
				return
			}
		}
		next, err := p.spawn()
		if err == nil {
			p.log.Info("worker process restarted", zap.Int("pid", next.pid), zap.Int("replaces", old.pid), reason.field())
			p.adopt(slot, next, reason, "replaced by a restarted process")
			return
		}
		select {
		case <-p.stopped:
			return // the error is Close's doing
		default:
		}
		p.log.Error("could not restart worker process", zap.Error(err))
		delay = min(2*delay+time.Second, 30*time.Second)
	}
}

// Reload replaces every process with a new one that loads the application
// afresh, as touching the WSGI script does with ScriptReloading (a rolling
// restart). An old process goes out of service only once its replacement
// has loaded the application, so requests are served throughout; if the
// replacement cannot load it, the old process keeps serving and the error
// is logged. It returns at once, with ErrRestarting while an earlier
// reload (whatever its reason) is still replacing processes, and with
// ErrClosed once the pool is stopped; the log says "reload finished" when
// this one is done.
func (p *Pool) Reload(reason Reason) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.closed:
		return ErrClosed
	case p.reloading > 0:
		return ErrRestarting
	}
	p.reloadLocked(reason, string(reason))
	return nil
}

// sourceChanged reloads the application for the change notices that proc
// sent (ReloadOnChanges). Every process notices every change and reports
// it once, so the pool reloads once per change it has not had reported:
// a file with a modification time that is not the latest the pool knows for
// it. Another process's report of the same change is not news, nor is a
// report from a process out of service, whose replacement watches from
// where it started. A change after a reload that failed is news: the old
// processes serve on, watching, and the fix reloads again.
func (p *Pool) sourceChanged(proc *process, changes []sourceChange) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var news []string
	// A starting process's notice is news: it may have imported the old
	// file before it changed.
	if proc.state == Starting || proc.state == Serving {
		if p.modified == nil {
			p.modified = make(map[string]int64)
		}
		for _, c := range changes {
			if mtime, known := p.modified[c.file]; !known || mtime != c.mtime {
				p.modified[c.file] = c.mtime
				news = append(news, c.file)
			}
		}
	}
	if news == nil {
		p.log.Debug("source change already being reloaded", zap.Int("pid", proc.pid), zap.Any("changes", changes))
		return
	}
	p.reloadLocked(ReasonSourceChanged, "source changed: "+strings.Join(news, ", "))
}

// reloadLocked starts Reload's replacements; a change to the files always
// gets one, even while another reload runs, so that the newest code is the
// one that ends up serving (adopt keeps the newest process of a slot).
func (p *Pool) reloadLocked(reason Reason, detail string) {
	if p.closed {
		return
	}
	p.log.Info("reloading the application", zap.String("reason", detail), reason.field())
	p.reloading++
	left, failed := len(p.procs), 0 // guarded by p.mu
	for slot := range p.procs {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			next, err := p.spawn()
			if err == nil {
				p.adopt(slot, next, reason, detail)
			}
			p.mu.Lock()
			defer p.mu.Unlock()
			// Once the pool is stopped, errors are its doing.
			if err != nil && !p.closed {
				p.log.Error("could not reload the application; the old worker process keeps serving", zap.Error(err))
				failed++
			}
			left--
			if left == 0 {
				p.reloading--
				if !p.closed {
					p.log.Info("reload finished", zap.String("reason", detail), zap.Int("failed", failed))
				}
			}
		}()
	}
}

// servedLocked counts a request handed to proc, and recycles proc when that
// reaches MaximumRequests: counting at hand-out means it never takes more.
func (p *Pool) servedLocked(proc *process) {
	p.counters.requests++
	proc.requests++
	if proc.requests == p.cfg.MaximumRequests {
		p.recycleLocked(proc, ReasonMaximumRequests, fmt.Sprintf("maximum_requests reached (%d)", proc.requests))
	}
}

// startTimersLocked arms the time-based recycling of a process put in
// service.
func (p *Pool) startTimersLocked(proc *process) {
	proc.lastActive = time.Now()
	if d := p.cfg.RestartInterval; d > 0 {
		proc.restartTimer = time.AfterFunc(d, func() {
			p.recycle(proc, ReasonRestartInterval, fmt.Sprintf("restart_interval (%s) passed", d))
		})
	}
	if d := p.cfg.InactivityTimeout; d > 0 {
		proc.idleTimer = time.AfterFunc(d, func() { p.checkInactive(proc) })
	}
}

func (proc *process) stopTimers() {
	if proc.restartTimer != nil {
		proc.restartTimer.Stop()
	}
	if proc.idleTimer != nil {
		proc.idleTimer.Stop()
	}
}

// checkInactive recycles proc if it has been idle for InactivityTimeout, or
// looks again when it next could have been.
func (p *Pool) checkInactive(proc *process) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if proc.state != Serving {
		return
	}
	wait := p.cfg.InactivityTimeout
	if proc.busy == 0 {
		wait -= time.Since(proc.lastActive)
		if wait <= 0 {
			p.recycleLocked(proc, ReasonInactivityTimeout, "inactivity_timeout")
			return
		}
	}
	proc.idleTimer.Reset(wait)
}

// watch checks, once a second, each process's resident memory and CPU time
// against MemoryLimit and CPUTimeLimit, and the scripts' modification times
// for ScriptReloading.
// mtimes are the scripts' when the processes were started.
func (p *Pool) watch(mtimes []time.Time) {
	defer p.wg.Done()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-p.stopped:
			return
		case <-tick.C:
		}
		if p.cfg.MemoryLimit > 0 || p.cfg.CPUTimeLimit > 0 {
			p.checkLimits()
		}
		// A script missing for a moment (an editor replacing it) is not a
		// change yet: reloading then would fail.
		var changed []string
		for i, script := range p.scripts {
			if m := modTime(script); !m.IsZero() && !m.Equal(mtimes[i]) {
				mtimes[i] = m
				changed = append(changed, script)
			}
		}
		if changed != nil {
			p.mu.Lock()
			p.reloadLocked(ReasonScriptChanged, "script changed: "+strings.Join(changed, ", "))
			p.mu.Unlock()
		}
	}
}

func (p *Pool) checkLimits() {
	p.mu.Lock()
	var procs []*process
	for _, proc := range p.procs {
		if proc != nil {
			procs = append(procs, proc)
		}
	}
	p.mu.Unlock()
	for _, proc := range procs {
		if limit := p.cfg.MemoryLimit; limit > 0 {
			if rss, err := residentMemory(proc.pid); err == nil && rss > limit {
				p.recycle(proc, ReasonMemoryLimit, fmt.Sprintf("memory_limit: rss %d MiB over %d MiB", rss>>20, limit>>20))
				continue
			}
		}
		if limit := p.cfg.CPUTimeLimit; limit > 0 {
			if used, err := cpuTime(proc.pid); err == nil && used > limit {
				p.recycle(proc, ReasonCPUTimeLimit, fmt.Sprintf("cpu_time_limit: %s of CPU time over %s", used.Round(10*time.Millisecond), limit))
			}
		}
	}
}

// cpuTime is the CPU time, user and system, that a process has used.
func cpuTime(pid int) (time.Duration, error) {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// utime and stime are fields 14 and 15 (proc(5)), counted after the
	// command name, which may contain spaces and parentheses.
	fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	if len(fields) < 13 {
		return 0, errors.New("short /proc/PID/stat")
	}
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	// In clock ticks of USER_HZ, which Linux fixes at 100 for user space.
	return time.Duration(utime+stime) * (time.Second / 100), nil
}

// residentMemory is a process's resident set size in bytes.
func residentMemory(pid int) (int64, error) {
	status, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(status)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmRSS in /proc/PID/status")
}

// reloadableScripts are the script files ScriptReloading watches. With
// ReloadOnChanges the workers watch them, among their other sources: a
// second watcher would reload twice for one change.
func reloadableScripts(cfg Config) []string {
	if !cfg.ScriptReloading || cfg.ReloadOnChanges {
		return nil
	}
	var scripts []string
	for _, app := range cfg.Apps {
		script := app.Target
		if app.Type == TypeModule {
			continue
		}
		// The worker resolves a relative path against its working directory.
		if !filepath.IsAbs(script) && cfg.Dir != "" {
			script = filepath.Join(cfg.Dir, script)
		}
		if !slices.Contains(scripts, script) {
			scripts = append(scripts, script)
		}
	}
	return scripts
}

func modTimes(paths []string) []time.Time {
	times := make([]time.Time, len(paths))
	for i, path := range paths {
		times[i] = modTime(path)
	}
	return times
}

// modTime is a file's modification time; zero if there is no file.
func modTime(path string) time.Time {
	info, err := os.Stat(path)
	if err != nil {
		return time.Time{}
	}
	return info.ModTime()
}

func (p *Pool) slotLocked(proc *process) int {
	for i, q := range p.procs {
		if q == proc {
			return i
		}
	}
	return -1
}

// track records a started process until it has been reaped, so that Close
// can stop it whatever its state, starting up included: closing its
// connections fails its handshake.
func (p *Pool) track(proc *process) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		proc.closeConns()
	}
	p.all[proc] = struct{}{}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		<-proc.exited
		p.mu.Lock()
		delete(p.all, proc)
		p.mu.Unlock()
	}()
}

// close closes one connection, which ends its worker thread.
func (c *Conn) close() {
	c.uc.Close()
	c.R.Close()
}
