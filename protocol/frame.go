// Package protocol implements the framed wire format spoken between Caddy and
// the caddy-wsgi Python workers over UNIX-domain stream sockets. PROTOCOL.md in
// this directory is the specification; this package knows nothing about
// processes or HTTP routing.
package protocol

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Version is the protocol version announced in the HELLO frame. A worker that
// announces another version is refused.
const Version = 6

// HeaderSize is the size of every frame header: type, flags, two reserved zero
// bytes and a big-endian uint32 payload length.
const HeaderSize = 8

// MaxPayload bounds a single frame's payload so that a corrupt length can never
// make a peer allocate without limit.
const MaxPayload = 16 << 20

// BodyChunk is the largest body payload either side puts in one frame.
const BodyChunk = 64 << 10

// Type identifies a frame.
type Type uint8

// Frames sent by the worker.
const (
	Hello        Type = 0x01 // worker loaded the application and is ready
	StartupError Type = 0x02 // worker could not load the application
	ResponseHead Type = 0x10 // status line and headers
	ResponseBody Type = 0x11 // response body bytes
	ResponseFile Type = 0x12 // a file descriptor (SCM_RIGHTS), offset and length to send
	ResponseEnd  Type = 0x13 // response finished; FlagAborted if it did not complete
	AppError     Type = 0x14 // the application failed before the response head
	BodyMore     Type = 0x20 // the worker wants more request body
	Log          Type = 0x30 // a log message tied to the current request
)

// Frames sent by the server.
const (
	Request   Type = 0x40 // environ; FlagNoBody if the request has no body
	Body      Type = 0x41 // request body bytes
	BodyEnd   Type = 0x42 // request body complete; FlagTruncated if the client failed
	BodyPause Type = 0x43 // grant exhausted; more body available on BodyMore
	Cancel    Type = 0x44 // the client is gone: end the exchange now
)

// Flags.
const (
	FlagNoBody    uint8 = 0x01 // on Request
	FlagTruncated uint8 = 0x01 // on BodyEnd
	FlagAborted   uint8 = 0x01 // on ResponseEnd
)

// Log levels, carried in the flags of a Log frame without FlagLogger, and in
// a log record line of a worker's stdout or stderr (ParseLogLine).
const (
	LevelInfo  uint8 = 0
	LevelWarn  uint8 = 1
	LevelError uint8 = 2
	LevelDebug uint8 = 3
)

// FlagLogger on a Log frame: the text is a record of Python's logging, and
// the payload starts with the name of its logger and a NUL (ParseLog).
const FlagLogger uint8 = 0x80

var typeNames = map[Type]string{
	Hello: "HELLO", StartupError: "STARTUP_ERROR", ResponseHead: "RESPONSE_HEAD",
	ResponseBody: "RESPONSE_BODY", ResponseFile: "RESPONSE_FILE", ResponseEnd: "RESPONSE_END",
	AppError: "APP_ERROR", BodyMore: "BODY_MORE", Log: "LOG", Request: "REQUEST",
	Body: "BODY", BodyEnd: "BODY_END", BodyPause: "BODY_PAUSE", Cancel: "CANCEL",
}

func (t Type) String() string {
	if s, ok := typeNames[t]; ok {
		return s
	}
	return fmt.Sprintf("0x%02x", uint8(t))
}

// ErrProtocol is wrapped by every error caused by bytes that break the protocol.
var ErrProtocol = errors.New("protocol violation")

// Frame is one decoded frame. Payload aliases the reader's buffer and is valid
// only until the next call to Next.
type Frame struct {
	Type    Type
	Flags   uint8
	Payload []byte
}

// AppendHeader appends a frame header for a payload of n bytes.
func AppendHeader(dst []byte, t Type, flags uint8, n int) []byte {
	return append(dst, byte(t), flags, 0, 0, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}

// AppendRequestHeader appends a REQUEST frame header for a payload of n
// bytes, for the worker's application number app (the header's third and
// fourth bytes, reserved in every other frame).
func AppendRequestHeader(dst []byte, flags uint8, app uint16, n int) []byte {
	return append(dst, byte(Request), flags, byte(app>>8), byte(app), byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}

// SetRequestApp sets the application index in a REQUEST frame's header at
// frame[0:HeaderSize], to send it to another worker pool's index for the same
// application.
func SetRequestApp(frame []byte, app uint16) {
	frame[2], frame[3] = byte(app>>8), byte(app)
}

// AppendFrame appends a whole frame.
func AppendFrame(dst []byte, t Type, flags uint8, payload []byte) []byte {
	return append(AppendHeader(dst, t, flags, len(payload)), payload...)
}

// ParseHeader decodes a frame header and checks it.
func ParseHeader(h []byte) (t Type, flags uint8, n int, err error) {
	t, flags = Type(h[0]), h[1]
	if h[2] != 0 || h[3] != 0 {
		return t, flags, 0, fmt.Errorf("%w: reserved header bytes are not zero", ErrProtocol)
	}
	n = int(binary.BigEndian.Uint32(h[4:8]))
	if n > MaxPayload {
		return t, flags, 0, fmt.Errorf("%w: %s frame of %d bytes exceeds %d", ErrProtocol, t, n, MaxPayload)
	}
	if _, ok := typeNames[t]; !ok {
		return t, flags, 0, fmt.Errorf("%w: unknown frame type %s", ErrProtocol, t)
	}
	return t, flags, n, nil
}

// AppendUint32 and Uint32 encode the BODY_MORE payload.
func AppendUint32(dst []byte, v uint32) []byte { return binary.BigEndian.AppendUint32(dst, v) }

// FileRange is the payload of a RESPONSE_FILE frame.
type FileRange struct {
	Offset int64
	Length int64
}

// ParseFileRange decodes a RESPONSE_FILE payload.
func ParseFileRange(p []byte) (FileRange, error) {
	if len(p) != 16 {
		return FileRange{}, fmt.Errorf("%w: RESPONSE_FILE payload is %d bytes, want 16", ErrProtocol, len(p))
	}
	fr := FileRange{int64(binary.BigEndian.Uint64(p)), int64(binary.BigEndian.Uint64(p[8:]))}
	if fr.Offset < 0 || fr.Length < 0 {
		return fr, fmt.Errorf("%w: RESPONSE_FILE range %d+%d is negative", ErrProtocol, fr.Offset, fr.Length)
	}
	return fr, nil
}

// ParseBodyMore decodes a BODY_MORE payload: how many bytes the worker wants.
func ParseBodyMore(p []byte) (int, error) {
	if len(p) != 4 {
		return 0, fmt.Errorf("%w: BODY_MORE payload is %d bytes, want 4", ErrProtocol, len(p))
	}
	return int(binary.BigEndian.Uint32(p)), nil
}
