package caddywsgi

import (
	"io"

	"github.com/caddy-wsgi/caddy-wsgi/pool"
	"github.com/caddy-wsgi/caddy-wsgi/protocol"
)

// bodyStreamer sends a large request body to the worker in grants, one
// BODY_MORE at a time, from its own goroutine: the exchange keeps reading the
// worker's frames meanwhile, so neither side can block the other.
type bodyStreamer struct {
	more chan int
	done chan struct{}

	// Set before done is closed.
	err        error // reading the client's body failed
	connFailed bool  // writing to the worker failed
	stopped    bool
}

// requestBody passes a BODY_MORE on to the streamer, starting it on the first
// one. False if the worker asked for body it had not been told was there.
func (e *exchange) requestBody(want int) bool {
	if !e.bodyRest {
		return false
	}
	if e.streamer == nil {
		e.streamer = &bodyStreamer{more: make(chan int, 1), done: make(chan struct{})}
		go e.streamer.run(e.c, e.r.Body)
	}
	select {
	case <-e.streamer.done:
		return false // the body had already ended
	default:
	}
	select {
	case e.streamer.more <- want:
		return true
	default:
		return false // a grant is already outstanding
	}
}

func (s *bodyStreamer) run(c *pool.Conn, body io.Reader) {
	defer close(s.done)
	buf := make([]byte, protocol.HeaderSize+protocol.BodyChunk)
	for want := range s.more {
		ended, err := s.grant(c, body, max(want, 1), buf)
		if err != nil {
			s.connFailed = true
			return
		}
		if ended {
			return
		}
	}
}

// grant sends up to want bytes of body, then BODY_PAUSE, or BODY_END if the
// body ended.
func (s *bodyStreamer) grant(c *pool.Conn, body io.Reader, want int, buf []byte) (ended bool, err error) {
	for sent := 0; sent < want; {
		n, readErr := body.Read(buf[protocol.HeaderSize : protocol.HeaderSize+min(protocol.BodyChunk, want-sent)])
		if n > 0 {
			if _, err := c.Write(protocol.BodyFrame(buf, n)); err != nil {
				return true, err
			}
			sent += n
		}
		if readErr != nil {
			if readErr != io.EOF {
				s.err = readErr
			}
			_, err := c.Write(protocol.AppendBodyEnd(buf[:0], readErr != io.EOF))
			return true, err
		}
	}
	_, err = c.Write(protocol.AppendBodyPause(buf[:0]))
	return false, err
}

// stop waits for the streamer to finish the grant in progress, if any.
func (s *bodyStreamer) stop() {
	if !s.stopped {
		s.stopped = true
		close(s.more)
	}
	<-s.done
}
