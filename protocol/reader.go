package protocol

import (
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
)

// MsgReader is the part of *net.UnixConn the Reader needs. Every read goes
// through ReadMsgUnix with room for ancillary data, because a plain read would
// make the kernel discard (close) file descriptors sent with SCM_RIGHTS.
type MsgReader interface {
	ReadMsgUnix(b, oob []byte) (n, oobn, flags int, addr *net.UnixAddr, err error)
}

const readBufferSize = 128 << 10

// Reader decodes frames from a stream, collecting file descriptors that arrive
// with them. It is not safe for concurrent use.
type Reader struct {
	src  MsgReader
	buf  []byte
	r, w int
	oob  []byte
	fds  []int
}

// NewReader returns a Reader on src.
func NewReader(src MsgReader) *Reader {
	return &Reader{src: src, buf: make([]byte, readBufferSize), oob: make([]byte, syscall.CmsgSpace(4*4))}
}

// Buffered reports how many bytes have been read from the stream but not yet
// returned as frames. Zero means the next Next will block on the socket, so a
// caller streaming to a client flushes at that point.
func (r *Reader) Buffered() int { return r.w - r.r }

// Next returns the next frame. The payload is valid until the following call.
func (r *Reader) Next() (Frame, error) {
	if r.r == r.w && len(r.buf) > readBufferSize {
		// A rare oversized frame grew the buffer; give the memory back.
		r.buf, r.r, r.w = make([]byte, readBufferSize), 0, 0
	}
	if err := r.fill(HeaderSize); err != nil {
		return Frame{}, err
	}
	t, flags, n, err := ParseHeader(r.buf[r.r : r.r+HeaderSize])
	if err != nil {
		return Frame{}, err
	}
	if err := r.fill(HeaderSize + n); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return Frame{}, err
	}
	start := r.r + HeaderSize
	r.r = start + n
	return Frame{Type: t, Flags: flags, Payload: r.buf[start:r.r:r.r]}, nil
}

// TakeFD returns the oldest file descriptor received and not yet taken. The
// caller owns it.
func (r *Reader) TakeFD() (int, error) {
	if len(r.fds) == 0 {
		return -1, fmt.Errorf("%w: RESPONSE_FILE frame arrived without a file descriptor", ErrProtocol)
	}
	fd := r.fds[0]
	r.fds = r.fds[1:]
	return fd, nil
}

// Close closes file descriptors received but never taken.
func (r *Reader) Close() {
	for _, fd := range r.fds {
		syscall.Close(fd)
	}
	r.fds = nil
}

// fill makes at least need bytes available at r.buf[r.r:].
func (r *Reader) fill(need int) error {
	if r.w-r.r >= need {
		return nil
	}
	if r.r+need > len(r.buf) {
		if need > len(r.buf) {
			grown := make([]byte, need)
			r.w = copy(grown, r.buf[r.r:r.w])
			r.buf = grown
		} else {
			r.w = copy(r.buf, r.buf[r.r:r.w])
		}
		r.r = 0
	}
	for r.w-r.r < need {
		n, oobn, flags, _, err := r.src.ReadMsgUnix(r.buf[r.w:], r.oob)
		// A read that fails, a passed deadline say, can report -1 bytes.
		r.w += max(n, 0)
		if oobn > 0 {
			if perr := r.collectFDs(r.oob[:oobn]); perr != nil {
				return perr
			}
		}
		if flags&syscall.MSG_CTRUNC != 0 {
			return fmt.Errorf("%w: too many file descriptors in one message", ErrProtocol)
		}
		if err != nil {
			if errors.Is(err, io.EOF) && r.w-r.r > 0 {
				return io.ErrUnexpectedEOF
			}
			return err
		}
		if n == 0 && oobn == 0 {
			return io.EOF
		}
	}
	return nil
}

func (r *Reader) collectFDs(oob []byte) error {
	msgs, err := syscall.ParseSocketControlMessage(oob)
	if err != nil {
		return fmt.Errorf("%w: bad control message: %v", ErrProtocol, err)
	}
	for _, m := range msgs {
		fds, err := syscall.ParseUnixRights(&m)
		if err != nil {
			continue
		}
		r.fds = append(r.fds, fds...)
	}
	return nil
}
