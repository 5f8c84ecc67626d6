package protocol

import (
	"bytes"
	"errors"
	"fmt"
)

// Errors of RequestEncoder.End: a request that cannot be put on the wire.
var (
	// ErrFieldNUL is a key or value with a NUL byte, which would shift
	// every field after it (PROTOCOL.md §5.11).
	ErrFieldNUL = errors.New("a request field contains a NUL byte")
	// ErrRequestTooLarge is an environ over MaxPayload.
	ErrRequestTooLarge = errors.New("request head too large")
)

// RequestKeys are the environ keys every REQUEST has, in the order in which
// their values, without the keys, start its payload (PROTOCOL.md §5.11).
// RequestLine's fields are the same keys, in the same order.
var RequestKeys = [...]string{
	"REQUEST_METHOD", "SCRIPT_NAME", "PATH_INFO", "QUERY_STRING", "REQUEST_URI",
	"SERVER_NAME", "SERVER_PORT", "SERVER_PROTOCOL", "REMOTE_ADDR", "REMOTE_PORT",
	"wsgi.url_scheme",
}

// RequestLine is the values of RequestKeys for one request: named fields,
// so that no caller can send them in the wrong order.
type RequestLine struct {
	Method         string // REQUEST_METHOD
	ScriptName     string // SCRIPT_NAME
	PathInfo       string // PATH_INFO
	QueryString    string // QUERY_STRING
	RequestURI     string // REQUEST_URI
	ServerName     string // SERVER_NAME
	ServerPort     string // SERVER_PORT
	ServerProtocol string // SERVER_PROTOCOL
	RemoteAddr     string // REMOTE_ADDR
	RemotePort     string // REMOTE_PORT
	URLScheme      string // wsgi.url_scheme
}

// RequestEncoder builds what the server writes to start an exchange: a
// REQUEST frame (PROTOCOL.md §5.11) and, for a request with a body, its first
// window and the frame that ends it (§7.2), so that the whole goes in one
// write. Call Begin with the request line, then Pair and Header for each
// other environ entry, then End, then Body for a request that has one; Bytes
// gives the frames.
type RequestEncoder struct {
	buf   []byte
	pairs int
}

// Begin starts a REQUEST for the worker's application app in buf's storage,
// with the values of line. A NUL in one of them makes End fail.
func (e *RequestEncoder) Begin(buf []byte, app uint16, line *RequestLine) {
	// One append per value, in RequestKeys' order: a loop over an array of
	// the values would cost the array's copy.
	b := AppendRequestHeader(buf[:0], 0, app, 0)
	b = append(append(b, line.Method...), 0)
	b = append(append(b, line.ScriptName...), 0)
	b = append(append(b, line.PathInfo...), 0)
	b = append(append(b, line.QueryString...), 0)
	b = append(append(b, line.RequestURI...), 0)
	b = append(append(b, line.ServerName...), 0)
	b = append(append(b, line.ServerPort...), 0)
	b = append(append(b, line.ServerProtocol...), 0)
	b = append(append(b, line.RemoteAddr...), 0)
	b = append(append(b, line.RemotePort...), 0)
	b = append(append(b, line.URLScheme...), 0)
	e.buf = b
	e.pairs = 0
}

// Pair adds one environ entry. A NUL in key or value makes End fail.
func (e *RequestEncoder) Pair(key, value string) {
	e.buf = AppendPair(e.buf, key, value)
	e.pairs++
}

// Header adds a request header the way CGI names it: HTTP_ and the name in
// upper case with dashes as underscores, the values joined by ", ". Which
// headers to pass, and under which names, is the caller's business (a name
// with an underscore would pose as one with a dash).
func (e *RequestEncoder) Header(name string, values []string) {
	b := append(e.buf, "HTTP_"...)
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == '-':
			c = '_'
		case 'a' <= c && c <= 'z':
			c -= 'a' - 'A'
		}
		b = append(b, c)
	}
	b = append(b, 0)
	for i, v := range values {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = append(b, v...)
	}
	e.buf = append(b, 0)
	e.pairs++
}

// End completes the REQUEST frame with flags (FlagNoBody for a request
// without a body). It fails, leaving nothing to send, with ErrFieldNUL or
// ErrRequestTooLarge.
func (e *RequestEncoder) End(flags uint8) error {
	payload := e.buf[HeaderSize:]
	if len(payload) > MaxPayload {
		return fmt.Errorf("%w: %d bytes exceeds %d", ErrRequestTooLarge, len(payload), MaxPayload)
	}
	// One count over the whole payload is much cheaper than a check per
	// value.
	if bytes.Count(payload, []byte{0}) != len(RequestKeys)+2*e.pairs {
		return ErrFieldNUL
	}
	n := len(payload)
	e.buf[1] = flags
	e.buf[4], e.buf[5], e.buf[6], e.buf[7] = byte(n>>24), byte(n>>16), byte(n>>8), byte(n)
	return nil
}

// Body adds the first window of the request body after the REQUEST: BODY
// frames of at most BodyChunk bytes, then BODY_PAUSE if more follows on the
// worker's BODY_MORE, else BODY_END.
func (e *RequestEncoder) Body(window []byte, more bool) {
	e.buf = AppendBody(e.buf, window)
	if more {
		e.buf = AppendBodyPause(e.buf)
	} else {
		e.buf = AppendBodyEnd(e.buf, false)
	}
}

// Bytes returns the frames encoded so far. They alias the buffer given to
// Begin, grown as needed.
func (e *RequestEncoder) Bytes() []byte { return e.buf }

// AppendBody appends p as BODY frames of at most BodyChunk bytes; one empty
// frame if p is empty.
func AppendBody(dst, p []byte) []byte {
	for len(p) > BodyChunk {
		dst = AppendFrame(dst, Body, 0, p[:BodyChunk])
		p = p[BodyChunk:]
	}
	return AppendFrame(dst, Body, 0, p)
}

// BodyFrame makes the n bytes at buf[HeaderSize:] a BODY frame in place, for
// a caller that reads body into a buffer with room for the header: it
// writes the header at buf[:HeaderSize] and returns the frame. n is at most
// BodyChunk.
func BodyFrame(buf []byte, n int) []byte {
	AppendHeader(buf[:0], Body, 0, n)
	return buf[:HeaderSize+n]
}

// AppendBodyEnd appends BODY_END: the request body is complete, or, if
// truncated, ended early because the client failed.
func AppendBodyEnd(dst []byte, truncated bool) []byte {
	var flags uint8
	if truncated {
		flags = FlagTruncated
	}
	return AppendHeader(dst, BodyEnd, flags, 0)
}

// AppendBodyPause appends BODY_PAUSE: the grant is exhausted.
func AppendBodyPause(dst []byte) []byte { return AppendHeader(dst, BodyPause, 0, 0) }

// AppendCancel appends CANCEL: the client is gone.
func AppendCancel(dst []byte) []byte { return AppendHeader(dst, Cancel, 0, 0) }
