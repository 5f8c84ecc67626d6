package pool

import "time"

// SetReadDeadline bounds the wait for the worker's next frame, for a request
// timeout; the zero time removes the bound.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.uc.SetReadDeadline(t) }

// SetDeadline is SetReadDeadline for writes to the worker too.
func (c *Conn) SetDeadline(t time.Time) error { return c.uc.SetDeadline(t) }
