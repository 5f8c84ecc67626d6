package pool

import (
	"net"
	"time"

	"github.com/caddy-wsgi/caddy-wsgi/protocol"
)

// NewConn makes a connection to a worker thread that no pool runs: the
// caller serves the other end of uc itself, as a test's fake worker does,
// and takes the connection back itself. Its PID is 0.
func NewConn(uc *net.UnixConn) *Conn {
	return &Conn{uc: uc, R: protocol.NewReader(uc)}
}

// SetReadDeadline bounds the wait for the worker's next frame, for a request
// timeout; the zero time removes the bound.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.uc.SetReadDeadline(t) }

// SetDeadline is SetReadDeadline for writes to the worker too.
func (c *Conn) SetDeadline(t time.Time) error { return c.uc.SetDeadline(t) }
