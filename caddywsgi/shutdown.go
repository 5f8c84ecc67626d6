package caddywsgi

import (
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/caddy-wsgi/caddy-wsgi/pool"
)

// inflight holds a handler's exchanges in progress, so that its server's
// shutdown can end them. Caddy's HTTP server waits for
// its handlers without limit when it stops (its default grace period is
// eternal), and Caddy stops its apps in no fixed order: if the wsgi app,
// whose pools' Close would break off what is left, comes after the HTTP
// app, nothing else ends an exchange whose application never answers, and
// Caddy never exits.
type inflight struct {
	graceful  time.Duration // the group's graceful_timeout
	mu        sync.Mutex
	exchanges map[*exchange]struct{}
	cut       bool // the server began to shut down graceful ago
	// Closed at the cut: the handler's requests still waiting for a worker
	// thread give up, and are never sent.
	waitersGiveUp chan struct{}
}

func newInflight(graceful time.Duration) *inflight {
	return &inflight{graceful: graceful, exchanges: make(map[*exchange]struct{}), waitersGiveUp: make(chan struct{})}
}

// serverShutdown is registered with the handler's server: the exchanges in
// progress get graceful_timeout to finish, as those of a pool that closes
// do, and are broken off after it. A config reload that keeps the group's
// pool shuts the old server down too; the new server's exchanges are
// another handler's.
func (f *inflight) serverShutdown() {
	time.AfterFunc(f.graceful, func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.cut = true
		close(f.waitersGiveUp)
		for e := range f.exchanges {
			e.cutOff()
		}
	})
}

// add tracks an exchange that begins; one that begins after the cut is cut
// at once.
func (f *inflight) add(e *exchange) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cut {
		e.cutOff()
		return
	}
	f.exchanges[e] = struct{}{}
}

// remove stops tracking an exchange before its connection goes back to the
// pool: from then on the connection may serve another exchange, whose
// deadlines are not this one's to move.
func (f *inflight) remove(e *exchange) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.exchanges, e)
}

// cutOff wakes the exchange's reads from, and writes to, the worker; relay
// then answers with shutdownCut.
func (e *exchange) cutOff() {
	e.cut.Store(true)
	e.c.SetDeadline(time.Unix(1, 0))
}

// gaveUp answers a request that was still waiting for a worker thread when
// its server's graceful_timeout ran out: 503, and no worker saw it.
func (h *Handler) gaveUp(r *http.Request) error {
	h.logger.Error("the server is shutting down and the request waited past graceful_timeout for a worker thread; it was not sent to the application",
		zap.String("method", r.Method), zap.String("uri", r.RequestURI), zap.Duration("graceful_timeout", h.flight.graceful))
	return caddyhttp.Error(http.StatusServiceUnavailable, errors.New("the server shut down before a worker thread was free"))
}

// shutdownCut answers a request that outlived graceful_timeout after its
// server began to shut down: 503, or a broken response if it had started.
// The worker's thread is still busy with it, so its process is recycled
// (and killed if it does not finish within graceful_timeout).
func (e *exchange) shutdownCut() error {
	e.outcome = pool.OutOfStep
	e.log(zapcore.ErrorLevel, "the server is shutting down and the request ran past graceful_timeout; breaking it off and recycling the worker process",
		zap.Duration("graceful_timeout", e.h.flight.graceful))
	if e.head == headSent {
		e.abort()
	}
	clear(e.w.Header())
	return caddyhttp.Error(http.StatusServiceUnavailable, errors.New("the server shut down before the WSGI application answered"))
}
