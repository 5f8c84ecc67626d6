package pool

import (
	"maps"
	"slices"
	"time"
)

// counters are a pool's running totals, kept under p.mu by code that holds
// it already: an increment each is all they cost the hot path.
type counters struct {
	requests      uint64            // handed to a worker
	restarts      map[Reason]uint64 // processes replaced, by why
	queueFull     uint64            // Acquires refused with ErrQueueFull
	queueTimeouts uint64            // Acquires that failed with ErrQueueTimeout
}

// Stats is a snapshot of a pool for operators: what an admin API, a status
// page or metrics show. Counters count from the pool's start.
type Stats struct {
	// Name is Config.Name.
	Name string `json:"name"`
	// Processes and Threads are the configured numbers of processes, and
	// of threads per process.
	Processes int `json:"processes"`
	Threads   int `json:"threads"`
	// User is the user the workers run as.
	User string `json:"user"`
	// QueueDepth is how many requests are waiting for a thread.
	QueueDepth int `json:"queue_depth"`
	// Restarting is whether a reload is replacing processes, which makes
	// Reload return ErrRestarting.
	Restarting bool `json:"restarting"`
	// Workers are the worker processes not yet reaped, oldest first: those
	// in service, and those starting, draining or stopping beside them.
	Workers []ProcessStats `json:"workers"`

	// Requests counts the requests handed to a worker; one retried on
	// another thread because its worker was found dead when it was written
	// counts twice.
	Requests uint64 `json:"requests"`
	// Restarts counts the processes replaced, by the reason that the log
	// gives as restart_reason: one for each "recycling worker process" and
	// each "worker process exited; starting a new one" (a reload counts
	// only the processes whose replacement loaded the application).
	Restarts map[Reason]uint64 `json:"restarts"`
	// QueueFull and QueueTimeouts count the requests refused a thread:
	// with MaxQueue requests waiting already (ErrQueueFull), or after
	// waiting QueueTimeout (ErrQueueTimeout). A request whose caller gave
	// up waiting is not counted.
	QueueFull     uint64 `json:"queue_full"`
	QueueTimeouts uint64 `json:"queue_timeouts"`
}

// ProcessStats describes one worker process.
type ProcessStats struct {
	PID   int   `json:"pid"`
	State State `json:"state"`
	// Started is when the process was started.
	Started time.Time `json:"started"`
	// Requests is how many requests it has been handed.
	Requests int `json:"requests"`
	// BusyThreads is how many of its threads have a request.
	BusyThreads int `json:"busy_threads"`
	// LastRestartReason is why the process it replaced in its slot was
	// replaced; empty for one the pool started with.
	LastRestartReason Reason `json:"last_restart_reason,omitempty"`
	// RSS is its resident memory in bytes, as MemoryLimit measures it; 0
	// if it could not be read (the process has just exited).
	RSS int64 `json:"rss_bytes"`
}

// ServedRequest is a request a worker thread serves, as Conn.Serving
// described it.
type ServedRequest struct {
	PID int
	Request
}

// Requests returns what the pool's busy threads serve, those whose client
// has gone included, oldest first.
func (p *Pool) Requests() []ServedRequest {
	var list []ServedRequest
	p.mu.Lock()
	for proc := range p.all {
		for _, c := range proc.conns {
			if r, ok := c.serving(); ok {
				list = append(list, ServedRequest{PID: proc.pid, Request: r})
			}
		}
	}
	p.mu.Unlock()
	slices.SortFunc(list, func(a, b ServedRequest) int { return a.Began.Compare(b.Began) })
	return list
}

// Stats returns a snapshot of the pool. It holds the pool's lock only to
// copy numbers; the processes' memory is read from /proc after.
func (p *Pool) Stats() Stats {
	p.mu.Lock()
	s := Stats{
		Name:          p.cfg.Name,
		Processes:     p.cfg.Processes,
		Threads:       p.cfg.Threads,
		QueueDepth:    p.waiters.Len(),
		Restarting:    p.reloading > 0,
		Workers:       make([]ProcessStats, 0, len(p.all)),
		Requests:      p.counters.requests,
		Restarts:      maps.Clone(p.counters.restarts),
		QueueFull:     p.counters.queueFull,
		QueueTimeouts: p.counters.queueTimeouts,
	}
	for proc := range p.all {
		s.Workers = append(s.Workers, ProcessStats{PID: proc.pid, State: proc.state, Started: proc.started,
			Requests: proc.requests, BusyThreads: proc.busy, LastRestartReason: proc.restartReason})
	}
	p.mu.Unlock()
	s.User = p.identity.String()
	slices.SortFunc(s.Workers, func(a, b ProcessStats) int { return a.Started.Compare(b.Started) })
	for i := range s.Workers {
		s.Workers[i].RSS, _ = residentMemory(s.Workers[i].PID)
	}
	return s
}
