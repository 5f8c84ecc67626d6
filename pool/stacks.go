package pool

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"syscall"
	"time"

	"go.uber.org/zap"
)

// stackSignal is the signal on which a worker writes the Python stack of
// every thread to its control connection, with faulthandler (PROTOCOL.md
// §3): C code that needs no GIL, so it answers even when no Python code can
// run. A real-time signal, which no library gives a meaning to (SIGRTMIN+6
// under glibc, +5 under musl); only Caddy sends it.
const stackSignal = syscall.Signal(40)

// Bounds on waiting for a worker's stacks, so that recycling or killing it
// is never held up long: stacksWait for a stack report, dumpWait for a
// faulthandler dump, which ends when nothing more has come for dumpQuiet.
const (
	stacksWait = time.Second
	dumpWait   = time.Second
	dumpQuiet  = 100 * time.Millisecond
)

// threadStack is one entry of a stack report: a thread serving a request,
// the request, and where the thread is.
type threadStack struct {
	Thread  uint64  `json:"thread"`
	Method  string  `json:"method"`
	URI     string  `json:"uri"`
	Seconds float64 `json:"seconds"`
	Stack   string  `json:"stack"`
}

// logStacks logs the Python stack of each of the process's threads that is
// serving a request, with the request, as the worker reports them when
// asked (PROTOCOL.md §3): where an application is stuck is what an operator
// needs of a request_timeout. Once per process: the report covers every
// thread, and a caller that comes meanwhile waits for it. A worker whose
// interpreter does not run (C code holding the GIL) cannot answer: after
// stacksWait, faulthandler's dump of every thread stands in for the report.
func (proc *process) logStacks() {
	proc.stacksOnce.Do(proc.askStacks)
}

func (proc *process) askStacks() {
	if _, err := proc.control.Write([]byte{'S'}); err != nil {
		return // it has exited
	}
	timer := time.NewTimer(stacksWait)
	defer timer.Stop()
	select {
	case report := <-proc.stacks:
		var threads []threadStack
		if err := json.Unmarshal(report, &threads); err != nil {
			proc.log.Error("unreadable stack report from the worker", zap.Error(err),
				zap.ByteString("report", report[:min(len(report), maxNotice)]))
			return
		}
		for _, t := range threads {
			proc.log.Error("a request was still running; the Python stack of its thread",
				zap.String("method", t.Method), zap.String("uri", t.URI),
				zap.Duration("running_for", time.Duration(t.Seconds*float64(time.Second))),
				zap.String("thread", threadID(t.Thread)), zap.String("stack", t.Stack))
		}
	case <-timer.C:
		proc.log.Error("the worker did not report its threads' stacks within " + stacksWait.String() +
			": its interpreter is not running Python code (C code holding the GIL?); asking faulthandler")
		proc.askDump()
	case <-proc.exited:
	}
}

// askDump has watchControl, which reads the control connection, read the
// faulthandler dump that stackSignal makes a running worker write there,
// and logs it.
func (proc *process) askDump() {
	got := make(chan []byte, 1)
	proc.dumpMu.Lock()
	proc.dumpTo = got
	proc.dumpMu.Unlock()
	timer := time.NewTimer(dumpWait + dumpQuiet)
	defer timer.Stop()
	if err := syscall.Kill(proc.pid, stackSignal); err == nil {
		select {
		case dump := <-got:
			proc.logDumpStacks(dump, "the Python stacks of the process's other threads (faulthandler)")
			return
		case <-timer.C:
		case <-proc.exited:
		}
	}
	// Nothing came: what comes next is not the dump.
	proc.takeDumpRequest()
}

// takeDumpRequest returns where the dump that askDump waits for goes, if it
// waits for one, and clears it.
func (proc *process) takeDumpRequest() chan<- []byte {
	proc.dumpMu.Lock()
	defer proc.dumpMu.Unlock()
	to := proc.dumpTo
	proc.dumpTo = nil
	return to
}

// threadID writes a thread's id as faulthandler does ("Thread 0x...",
// 64-bit), so that a thread can be found in both kinds of log entry.
func threadID(id uint64) string {
	return fmt.Sprintf("0x%016x", id)
}

// logDump logs the Python stack of every thread of a process whose
// interpreter does not answer, before it is killed: faulthandler writes it
// to the control connection on stackSignal, without the GIL.
func (proc *process) logDump(control *net.UnixConn) {
	if err := syscall.Kill(proc.pid, stackSignal); err != nil {
		return
	}
	dump := readDump(control, nil)
	if len(dump) == 0 {
		proc.log.Error("the deadlocked worker wrote no stacks within " + dumpWait.String())
		return
	}
	proc.logDumpStacks(dump, "the Python stacks of the deadlocked process's other threads (faulthandler)")
}

// dumpHeader starts a thread's stack in a faulthandler dump; the thread
// that took the signal is the "Current" one.
var dumpHeader = regexp.MustCompile(`(?m)^(?:Current thread|Thread) 0x([0-9a-f]+) \(most recent call first\):\n`)

// logDumpStacks logs a faulthandler dump: the stack of each thread serving
// a request as an entry tagged with the request, as a stack report's are
// (faulthandler names a thread by its id, and each connection's HELLO said
// which thread serves it), and the other threads' stacks (the main thread,
// the application's own) together as others.
func (proc *process) logDumpStacks(dump []byte, others string) {
	requests := make(map[uint64]Request)
	for _, c := range proc.conns {
		if r, ok := c.serving(); ok && c.thread != 0 {
			requests[c.thread] = r
		}
	}
	rest := dump
	headers := dumpHeader.FindAllSubmatchIndex(dump, -1)
	if len(headers) > 0 {
		rest = bytes.Clone(dump[:headers[0][0]])
	}
	for i, h := range headers {
		end := len(dump)
		if i+1 < len(headers) {
			end = headers[i+1][0]
		}
		id, _ := strconv.ParseUint(string(dump[h[2]:h[3]]), 16, 64)
		r, ok := requests[id]
		if !ok {
			rest = append(rest, dump[h[0]:end]...)
			continue
		}
		proc.log.Error("a request was still running; the Python stack of its thread (faulthandler)",
			zap.String("method", r.Method), zap.String("uri", r.URI), zap.Duration("running_for", time.Since(r.Began)),
			zap.String("thread", threadID(id)), zap.ByteString("stack", bytes.TrimRight(dump[h[1]:end], "\n")))
	}
	if len(bytes.TrimSpace(rest)) > 0 {
		proc.log.Error(others, zap.ByteString("stacks", rest))
	}
}

// readDump reads a faulthandler dump from control, after the bytes of it
// already read: until nothing more has come for dumpQuiet, for dumpWait at
// most.
func readDump(control *net.UnixConn, dump []byte) []byte {
	dump = bytes.Clone(dump)
	buf := make([]byte, 4096)
	end := time.Now().Add(dumpWait)
	for len(dump) < maxStackReport {
		deadline := end
		if quiet := time.Now().Add(dumpQuiet); len(dump) > 0 && quiet.Before(end) {
			deadline = quiet
		}
		control.SetReadDeadline(deadline)
		n, err := control.Read(buf)
		dump = append(dump, buf[:n]...)
		if err != nil {
			break
		}
	}
	return dump
}
