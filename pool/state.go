package pool

import (
	"fmt"

	"go.uber.org/zap"
)

// State is where a worker process is in its life. A process only moves
// forward, along the moves canBecome lists, and only moveLocked moves it: the
// verbs that take a process out of service (recycle, retire, outOfService,
// condemn, drain's kill, Stop, a deadlock_timeout) are moves of this one
// state, so that dispatch, the log and Stats all read the same thing.
//
// A process's threads are counted apart from its state: busy is how many
// hold a request, idle are the connections of the others, and only a
// serving process has idle ones (entering any other state closes them).
type State uint8

const (
	// Starting: spawned and loading the application; not in service yet.
	Starting State = iota
	// Serving: in service in its slot; dispatch hands it requests.
	Serving
	// Draining: out of service (recycled, or the pool is closing) and
	// finishing the requests it has, within GracefulTimeout. Its
	// replacement, if it has one, started when it went out of service.
	Draining
	// Stopping: out of service with no request left. Its connections are
	// closed, on which the worker exits, within ShutdownTimeout.
	Stopping
	// Dead: exited, or condemned (its worker died during an exchange, or
	// deadlock_timeout fired and it is being killed); its requests fail.
	// One that dies in service keeps its slot until supervise has seen its
	// exit and started its replacement.
	Dead
)

var stateNames = [...]string{Starting: "starting", Serving: "serving", Draining: "draining", Stopping: "stopping", Dead: "dead"}

func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("State(%d)", s)
}

// MarshalText makes a State its name in JSON.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// canBecome says whether a process in state s may move to state to. Any
// other move is one the pool never makes: a verb applied to a process that
// is past it (recycling one already draining, condemning one already dead)
// is refused here, and does nothing.
func (s State) canBecome(to State) bool {
	switch s {
	case Starting:
		// Put in service; or made surplus (a newer process took its slot)
		// or stopped by Close before that; or dead during start-up.
		return to == Serving || to == Stopping || to == Dead
	case Serving:
		// Out of service with requests to finish, or with none; or dead.
		return to == Draining || to == Stopping || to == Dead
	case Draining:
		// Its last request ended; or it died, or was killed on
		// GracefulTimeout.
		return to == Stopping || to == Dead
	case Stopping:
		return to == Dead
	}
	return false // Dead is final
}

// moveLocked moves proc to state to, if it may (see canBecome), and does
// what leaving service means: no request goes to it from then on, so its
// time-based recycling stops and its idle threads' connections close (a
// worker exits once all its connections are closed; its busy threads'
// close as Release returns them). It reports whether proc moved.
func (p *Pool) moveLocked(proc *process, to State) bool {
	from := proc.state
	if !from.canBecome(to) {
		return false
	}
	proc.state = to
	switch {
	case from == Serving:
		proc.stopTimers()
		for _, c := range proc.idle {
			c.close()
		}
		proc.idle = nil
	case from == Starting && to == Stopping:
		// Surplus, or stopped before it served: all its threads are idle.
		// Its sockets only: spawn's handshake may be reading them. One
		// that dies starting keeps them open, for the handshake to read
		// what it sent before it died (its STARTUP_ERROR).
		proc.closeConns()
	}
	if to == Stopping {
		close(proc.drained)
	}
	return true
}

// Reason is why a process was replaced, as the log's restart_reason field,
// Stats and the metrics name it.
type Reason string

const (
	// ReasonCrash: the process exited on its own while in service.
	ReasonCrash Reason = "crash"
	// ReasonMaximumRequests: it had been handed Config.MaximumRequests
	// requests.
	ReasonMaximumRequests Reason = "maximum_requests"
	// ReasonRestartInterval: it had run for Config.RestartInterval.
	ReasonRestartInterval Reason = "restart_interval"
	// ReasonInactivityTimeout: it had no request for
	// Config.InactivityTimeout.
	ReasonInactivityTimeout Reason = "inactivity_timeout"
	// ReasonMemoryLimit: its resident memory passed Config.MemoryLimit.
	ReasonMemoryLimit Reason = "memory_limit"
	// ReasonCPUTimeLimit: it had used Config.CPUTimeLimit of CPU time.
	ReasonCPUTimeLimit Reason = "cpu_time_limit"
	// ReasonRequestTimeout: a request's caller stopped waiting for it
	// (Release with TimedOut).
	ReasonRequestTimeout Reason = "request_timeout"
	// ReasonOutOfStep: an exchange broke off where Caddy and the worker
	// may disagree on what comes next (Release with OutOfStep). It is
	// neither a crash nor a timeout, and an operator seeing many has a
	// different problem to look for.
	ReasonOutOfStep Reason = "out_of_step"
	// ReasonDeadlockTimeout: its interpreter stopped answering for
	// Config.DeadlockTimeout, and it was killed.
	ReasonDeadlockTimeout Reason = "deadlock_timeout"
	// ReasonReload: Reload, called by the program that runs the pool.
	ReasonReload Reason = "reload"
	// ReasonAdmin: Reload, asked for by an operator.
	ReasonAdmin Reason = "admin"
	// ReasonScriptChanged: a WSGI script's modification time changed
	// (Config.ScriptReloading).
	ReasonScriptChanged Reason = "script_changed"
	// ReasonSourceChanged: a source file a worker imported changed
	// (Config.ReloadOnChanges).
	ReasonSourceChanged Reason = "source_changed"
)

// field is the reason as the log gives it, next to a "reason" field that
// says the same for a human, with the numbers or files involved.
func (r Reason) field() zap.Field { return zap.String("restart_reason", string(r)) }
