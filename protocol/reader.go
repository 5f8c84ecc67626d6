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

// Reader decodes frames from a stream, and checks the file descriptors that
// arrive with them: a descriptor may only come with a RESPONSE_FILE frame
// (PROTOCOL.md §5.6). It is not safe for concurrent use.
type Reader struct {
	src  MsgReader
	buf  []byte
	r, w int
	pos  int64 // the stream offset of buf[0]
	oob  []byte
	// Descriptors received and not yet claimed by their frame: at most
	// three, since any that no frame can claim any more is a violation.
	fds     []receivedFD
	frameFD int // the last RESPONSE_FILE frame's descriptor, until taken; or -1
}

// receivedFD is a descriptor that arrived with the stream bytes [from, to):
// those of the read that brought it. The kernel hands over a sendmsg's
// descriptors with the first read of its bytes and ends that read after
// them, so a descriptor sent with a frame belongs to a frame that starts
// within its read.
type receivedFD struct {
	fd       int
	from, to int64
}

// NewReader returns a Reader on src.
func NewReader(src MsgReader) *Reader {
	// Room for one descriptor (two fit in its padding on 64-bit systems):
	// more than one is a violation, and those that do not fit set
	// MSG_CTRUNC and are closed by the kernel.
	return &Reader{src: src, buf: make([]byte, readBufferSize), oob: make([]byte, syscall.CmsgSpace(4)), frameFD: -1}
}

// Buffered reports how many bytes have been read from the stream but not yet
// returned as frames. Zero means the next Next will block on the socket, so a
// caller streaming to a client flushes at that point.
func (r *Reader) Buffered() int { return r.w - r.r }

// Next returns the next frame. The payload is valid until the following call.
// A RESPONSE_FILE frame comes with a descriptor, for TakeFD; one its caller
// did not take is closed here.
func (r *Reader) Next() (Frame, error) {
	if r.frameFD >= 0 {
		syscall.Close(r.frameFD)
		r.frameFD = -1
	}
	if r.r == r.w && len(r.buf) > readBufferSize {
		// A rare oversized frame grew the buffer; give the memory back.
		r.pos += int64(r.r)
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
	start := r.pos + int64(r.r)
	if err := r.claimFD(t, start, start+int64(HeaderSize+n)); err != nil {
		return Frame{}, err
	}
	payload := r.r + HeaderSize
	r.r = payload + n
	return Frame{Type: t, Flags: flags, Payload: r.buf[payload:r.r:r.r]}, nil
}

// claimFD gives a RESPONSE_FILE frame at stream offsets [start, end) the
// descriptor that came with it, and fails if a descriptor is left that came
// only with frames that are not RESPONSE_FILE.
func (r *Reader) claimFD(t Type, start, end int64) error {
	if t == ResponseFile {
		if len(r.fds) == 0 || r.fds[0].from > start {
			return r.violation(fmt.Errorf("%w: RESPONSE_FILE frame arrived without a file descriptor", ErrProtocol))
		}
		if r.fds[0].to > start {
			r.frameFD = r.fds[0].fd
			r.fds = r.fds[1:]
		}
	}
	if len(r.fds) > 0 && r.fds[0].to <= end {
		return r.violation(fmt.Errorf("%w: a file descriptor arrived with a %s frame; only RESPONSE_FILE frames carry one", ErrProtocol, t))
	}
	return nil
}

// TakeFD returns the descriptor of the RESPONSE_FILE frame Next returned
// last. The caller owns it.
func (r *Reader) TakeFD() (int, error) {
	fd := r.frameFD
	if fd < 0 {
		return -1, fmt.Errorf("%w: no file descriptor came with the last frame", ErrProtocol)
	}
	r.frameFD = -1
	return fd, nil
}

// Close closes file descriptors received but never taken.
func (r *Reader) Close() {
	if r.frameFD >= 0 {
		syscall.Close(r.frameFD)
		r.frameFD = -1
	}
	for _, d := range r.fds {
		syscall.Close(d.fd)
	}
	r.fds = nil
}

// violation closes every descriptor held, since the stream is out of step,
// and returns err.
func (r *Reader) violation(err error) error {
	r.Close()
	return err
}

// fill makes at least need bytes available at r.buf[r.r:].
func (r *Reader) fill(need int) error {
	if r.w-r.r >= need {
		return nil
	}
	if r.r+need > len(r.buf) {
		r.pos += int64(r.r)
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
		from := r.pos + int64(r.w)
		n, oobn, flags, _, err := r.src.ReadMsgUnix(r.buf[r.w:], r.oob)
		// A read that fails, a passed deadline say, can report -1 bytes.
		r.w += max(n, 0)
		if oobn > 0 || flags&syscall.MSG_CTRUNC != 0 {
			if perr := r.collectFDs(r.oob[:oobn], flags, from, need); perr != nil {
				return perr
			}
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

// collectFDs records the descriptors of one read that brought the bytes
// from offset from on, while the frame at r.r needs need bytes: exactly one
// descriptor, which a frame starting within the read may claim.
func (r *Reader) collectFDs(oob []byte, flags int, from int64, need int) error {
	msgs, err := syscall.ParseSocketControlMessage(oob)
	if err != nil {
		return r.violation(fmt.Errorf("%w: bad control message: %v", ErrProtocol, err))
	}
	var fds []int
	for _, m := range msgs {
		got, err := syscall.ParseUnixRights(&m)
		if err == nil {
			fds = append(fds, got...)
		}
	}
	for _, fd := range fds {
		r.fds = append(r.fds, receivedFD{fd: fd, from: from, to: r.pos + int64(r.w)})
	}
	switch {
	case flags&syscall.MSG_CTRUNC != 0 || len(fds) > 1:
		return r.violation(fmt.Errorf("%w: more than one file descriptor in one message", ErrProtocol))
	case len(fds) == 1 && from > r.pos+int64(r.r) && r.w-r.r <= need:
		// Its bytes are all inside the frame being read, past its start.
		return r.violation(fmt.Errorf("%w: a file descriptor arrived inside a frame", ErrProtocol))
	}
	return nil
}
