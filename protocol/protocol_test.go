package protocol

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"reflect"
	"slices"
	"strconv"
	"syscall"
	"testing"
)

// The golden vectors in testdata/vectors.json are shared with the Python
// tests (python/tests/test_wire.py); PROTOCOL.md describes their format.

type vectorFile struct {
	ProtocolVersion int           `json:"protocol_version"`
	RequestKeys     []string      `json:"request_keys"`
	Vectors         []vector      `json:"vectors"`
	Invalid         []invalidCase `json:"invalid"`
	HeadCases       []headCase    `json:"head_cases"`
	PairsCases      []pairsCase   `json:"pairs_cases"`
}

type vector struct {
	Name   string        `json:"name"`
	Sender string        `json:"sender"`
	Frames []vectorFrame `json:"frames"`
	Hex    string        `json:"hex"`
}

type vectorFrame struct {
	Type      string      `json:"type"`
	Code      int         `json:"code"`
	Flags     uint8       `json:"flags"`
	App       uint16      `json:"app"`
	Fixed     []string    `json:"fixed"`
	Pairs     [][2]string `json:"pairs"`
	Status    *string     `json:"status"`
	Headers   [][2]string `json:"headers"`
	DataHex   *string     `json:"data_hex"`
	Text      *string     `json:"text"`
	Logger    *string     `json:"logger"`
	FileRange *FileRange  `json:"file_range"`
	Want      *uint32     `json:"want"`
	FD        bool        `json:"fd"`
	Hex       string      `json:"hex"`
}

type invalidCase struct {
	Name    string `json:"name"`
	Hex     string `json:"hex"`
	GoError string `json:"go_error"`
}

type headCase struct {
	PayloadHex string      `json:"payload_hex"`
	Status     int         `json:"status"`
	Headers    [][2]string `json:"headers"`
	Error      bool        `json:"error"`
	Note       string      `json:"note"`
}

type pairsCase struct {
	PayloadHex string            `json:"payload_hex"`
	Pairs      [][2]string       `json:"pairs"`
	Dict       map[string]string `json:"dict"`
	Error      bool              `json:"error"`
	Note       string            `json:"note"`
}

func loadVectors(tb testing.TB) *vectorFile {
	tb.Helper()
	data, err := os.ReadFile("testdata/vectors.json")
	if err != nil {
		tb.Fatal(err)
	}
	var vf vectorFile
	if err := json.Unmarshal(data, &vf); err != nil {
		tb.Fatal(err)
	}
	if vf.ProtocolVersion != Version {
		tb.Fatalf("vectors are for protocol %d, this is %d", vf.ProtocolVersion, Version)
	}
	if !slices.Equal(vf.RequestKeys, RequestKeys[:]) {
		tb.Fatalf("vectors' request_keys are %q, RequestKeys %q", vf.RequestKeys, RequestKeys)
	}
	return &vf
}

func unhex(tb testing.TB, s string) []byte {
	tb.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// latin1 turns a JSON string into the bytes it stands for: every code point
// is one byte (PEP 3333 "bytes as latin-1").
func latin1(tb testing.TB, s string) string {
	tb.Helper()
	b := make([]byte, 0, len(s))
	for _, r := range s {
		if r > 0xff {
			tb.Fatalf("%q is not latin-1", s)
		}
		b = append(b, byte(r))
	}
	return string(b)
}

func typeByName(tb testing.TB, name string) Type {
	tb.Helper()
	for t, n := range typeNames {
		if n == name {
			return t
		}
	}
	tb.Fatalf("unknown frame type name %q", name)
	return 0
}

// expectedPayload builds a frame's payload from its structured form, with
// the package's encoders where it has them.
func expectedPayload(tb testing.TB, f vectorFrame) []byte {
	tb.Helper()
	var p []byte
	switch t := typeByName(tb, f.Type); t {
	case Request, Hello:
		if f.Pairs == nil {
			tb.Fatalf("%s frame without pairs", t)
		}
		if (t == Request) != (f.Fixed != nil) {
			tb.Fatalf("%s frame with fixed values %q", t, f.Fixed)
		}
		for _, v := range f.Fixed {
			p = append(append(p, latin1(tb, v)...), 0)
		}
		for _, kv := range f.Pairs {
			p = AppendPair(p, latin1(tb, kv[0]), latin1(tb, kv[1]))
		}
	case ResponseHead:
		if f.Status == nil {
			tb.Fatal("RESPONSE_HEAD frame without status")
		}
		p = append(p, latin1(tb, *f.Status)...)
		for _, h := range f.Headers {
			p = append(append(p, 0), latin1(tb, h[0])...)
			p = append(append(p, 0), latin1(tb, h[1])...)
		}
	case Body, ResponseBody:
		if f.DataHex == nil {
			tb.Fatalf("%s frame without data_hex", t)
		}
		p = unhex(tb, *f.DataHex)
	case Log, AppError, StartupError:
		if f.Text == nil {
			tb.Fatalf("%s frame without text", t)
		}
		if f.Logger != nil {
			p = append([]byte(*f.Logger), 0)
		}
		p = append(p, *f.Text...) // UTF-8
	case ResponseFile:
		if f.FileRange == nil {
			tb.Fatal("RESPONSE_FILE frame without file_range")
		}
		p = appendUint64(appendUint64(p, uint64(f.FileRange.Offset)), uint64(f.FileRange.Length))
	case BodyMore:
		if f.Want == nil {
			tb.Fatal("BODY_MORE frame without want")
		}
		p = AppendUint32(p, *f.Want)
	}
	return p
}

func appendUint64(b []byte, v uint64) []byte {
	return append(b, byte(v>>56), byte(v>>48), byte(v>>40), byte(v>>32), byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}

func TestVectorsEncode(t *testing.T) {
	vf := loadVectors(t)
	for _, v := range vf.Vectors {
		t.Run(v.Name, func(t *testing.T) {
			var all []byte
			for i, f := range v.Frames {
				typ := typeByName(t, f.Type)
				if int(typ) != f.Code {
					t.Fatalf("frame %d: %s has code 0x%02x, vector says 0x%02x", i, f.Type, uint8(typ), f.Code)
				}
				p := expectedPayload(t, f)
				var got []byte
				if typ == Request {
					got = append(AppendRequestHeader(nil, f.Flags, f.App, len(p)), p...)
				} else {
					if f.App != 0 {
						t.Fatalf("frame %d: %s has no application index", i, f.Type)
					}
					got = AppendFrame(nil, typ, f.Flags, p)
				}
				if want := unhex(t, f.Hex); !bytes.Equal(got, want) {
					t.Fatalf("frame %d (%s):\n got %x\nwant %x", i, f.Type, got, want)
				}
				all = append(all, got...)
			}
			if want := unhex(t, v.Hex); !bytes.Equal(all, want) {
				t.Fatalf("vector hex is not its frames' hex:\n got %x\nwant %x", all, want)
			}
		})
	}
}

// fakeConn is a MsgReader over fixed bytes that returns at most chunk bytes a
// read. Control messages in oob are delivered with the read that returns the
// byte at their offset.
type fakeConn struct {
	data  []byte
	chunk int
	off   int
	oob   map[int][]byte
	reads int
}

func (c *fakeConn) ReadMsgUnix(b, oob []byte) (n, oobn, flags int, addr *net.UnixAddr, err error) {
	c.reads++
	if c.off >= len(c.data) {
		return 0, 0, 0, nil, io.EOF
	}
	n = min(len(b), len(c.data)-c.off)
	if c.chunk > 0 {
		n = min(n, c.chunk)
	}
	for at, msg := range c.oob {
		if at >= c.off && at < c.off+n {
			if len(msg) > len(oob) {
				panic("fakeConn: control message does not fit")
			}
			oobn = copy(oob, msg)
			delete(c.oob, at)
			break
		}
	}
	copy(b, c.data[c.off:c.off+n])
	c.off += n
	return n, oobn, 0, nil, nil
}

// checkFrame compares a decoded frame with a vector frame, decoding the
// payload with the package's parsers.
func checkFrame(t *testing.T, got Frame, f vectorFrame) {
	t.Helper()
	typ := typeByName(t, f.Type)
	if got.Type != typ || got.Flags != f.Flags {
		t.Fatalf("got %s flags %#x, want %s flags %#x", got.Type, got.Flags, typ, f.Flags)
	}
	want := unhex(t, f.Hex)[HeaderSize:]
	if !bytes.Equal(got.Payload, want) {
		t.Fatalf("%s payload:\n got %x\nwant %x", typ, got.Payload, want)
	}
	if cap(got.Payload) != len(got.Payload) {
		t.Fatalf("payload capacity %d exceeds its length %d: an append would overwrite the buffer", cap(got.Payload), len(got.Payload))
	}
	switch typ {
	case Request, Hello:
		var m map[string]string
		var err error
		if typ == Request {
			m, err = ParseRequest(got.Payload)
		} else {
			m, err = ParsePairs(got.Payload)
		}
		if err != nil {
			t.Fatal(err)
		}
		wantMap := map[string]string{}
		for i, v := range f.Fixed {
			wantMap[RequestKeys[i]] = latin1(t, v)
		}
		for _, kv := range f.Pairs {
			wantMap[latin1(t, kv[0])] = latin1(t, kv[1])
		}
		if !reflect.DeepEqual(m, wantMap) {
			t.Fatalf("pairs:\n got %q\nwant %q", m, wantMap)
		}
	case ResponseHead:
		var headers [][2]string
		status, err := ParseResponseHead(string(got.Payload), func(name, value string) error {
			headers = append(headers, [2]string{name, value})
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		var wantHeaders [][2]string
		for _, h := range f.Headers {
			wantHeaders = append(wantHeaders, [2]string{latin1(t, h[0]), latin1(t, h[1])})
		}
		if wantStatus, _ := strconv.Atoi((*f.Status)[:3]); status != wantStatus {
			t.Fatalf("status %d, want %q", status, *f.Status)
		}
		if !reflect.DeepEqual(headers, wantHeaders) {
			t.Fatalf("headers:\n got %q\nwant %q", headers, wantHeaders)
		}
	case ResponseFile:
		fr, err := ParseFileRange(got.Payload)
		if err != nil {
			t.Fatal(err)
		}
		if fr != *f.FileRange {
			t.Fatalf("file range %+v, want %+v", fr, *f.FileRange)
		}
	case Log:
		level, logger, text := ParseLog(got.Flags, got.Payload)
		if f.Logger != nil && (level != f.Flags&^FlagLogger || string(logger) != *f.Logger) {
			t.Fatalf("LOG level %d logger %q, want flags %#x logger %q", level, logger, f.Flags, *f.Logger)
		}
		if f.Logger == nil && (level != f.Flags || logger != nil) {
			t.Fatalf("LOG level %d logger %q, want level %d and no logger", level, logger, f.Flags)
		}
		if string(text) != *f.Text {
			t.Fatalf("LOG text %q, want %q", text, *f.Text)
		}
	case BodyMore:
		n, err := ParseBodyMore(got.Payload)
		if err != nil {
			t.Fatal(err)
		}
		if n != int(*f.Want) {
			t.Fatalf("BODY_MORE %d, want %d", n, *f.Want)
		}
	}
}

func TestVectorsDecode(t *testing.T) {
	vf := loadVectors(t)
	for _, chunk := range []int{0, 1, 3, 7} {
		for _, v := range vf.Vectors {
			t.Run(v.Name, func(t *testing.T) {
				data := unhex(t, v.Hex)
				conn := &fakeConn{data: data, chunk: chunk, oob: map[int][]byte{}}
				// A descriptor travels with the frames that carry one (it is
				// this test's own stdin: the fake does not dup it).
				off := 0
				fdFrames := 0
				for _, f := range v.Frames {
					if f.FD {
						conn.oob[off] = syscall.UnixRights(0)
						fdFrames++
					}
					off += len(f.Hex) / 2
				}
				r := NewReader(conn)
				for i, f := range v.Frames {
					got, err := r.Next()
					if f.App != 0 {
						// The Reader reads the worker's frames, in which
						// bytes 2-3 are reserved: it must refuse this one.
						if !errors.Is(err, ErrProtocol) {
							t.Fatalf("chunk %d, frame %d: REQUEST for application %d: %v, want a protocol violation", chunk, i, f.App, err)
						}
						return
					}
					if err != nil {
						t.Fatalf("chunk %d, frame %d: %v", chunk, i, err)
					}
					checkFrame(t, got, f)
					if f.FD {
						fd, err := r.TakeFD()
						if err != nil || fd != 0 {
							t.Fatalf("TakeFD after %s: %d, %v", f.Type, fd, err)
						}
					}
				}
				if r.Buffered() != 0 {
					t.Fatalf("%d bytes left over", r.Buffered())
				}
				if _, err := r.Next(); err != io.EOF {
					t.Fatalf("after the last frame: %v, want io.EOF", err)
				}
				if _, err := r.TakeFD(); !errors.Is(err, ErrProtocol) {
					t.Fatalf("TakeFD with no descriptor left: %v", err)
				}
				if chunk == 0 && fdFrames == 0 && conn.reads != 2 {
					t.Fatalf("%d reads for one buffer-sized message, want 2 (data, EOF)", conn.reads)
				}
			})
		}
	}
}

// namesApp reports whether a vector holds a REQUEST for an application
// other than the first.
func namesApp(v vector) bool {
	for _, f := range v.Frames {
		if f.App != 0 {
			return true
		}
	}
	return false
}

func TestVectorsAllInOneStream(t *testing.T) {
	// Every vector back to back: frames of different sizes straddle reads.
	vf := loadVectors(t)
	var data []byte
	var frames []vectorFrame
	for _, v := range vf.Vectors {
		if namesApp(v) {
			continue // refused by the Reader: see TestVectorsDecode
		}
		data = append(data, unhex(t, v.Hex)...)
		frames = append(frames, v.Frames...)
	}
	for _, chunk := range []int{0, 1, 5, 100} {
		// Descriptors travel with their frames, as in TestVectorsDecode.
		conn := &fakeConn{data: data, chunk: chunk, oob: map[int][]byte{}}
		off := 0
		for _, f := range frames {
			if f.FD {
				conn.oob[off] = syscall.UnixRights(0)
			}
			off += len(f.Hex) / 2
		}
		r := NewReader(conn)
		for _, f := range frames {
			got, err := r.Next()
			if err != nil {
				t.Fatal(err)
			}
			checkFrame(t, got, f)
			if f.FD {
				if fd, err := r.TakeFD(); err != nil || fd != 0 {
					t.Fatalf("TakeFD after %s: %d, %v", f.Type, fd, err)
				}
			}
		}
		if _, err := r.Next(); err != io.EOF {
			t.Fatalf("chunk %d: %v, want io.EOF", chunk, err)
		}
	}
}

func TestInvalidStreams(t *testing.T) {
	vf := loadVectors(t)
	for _, c := range vf.Invalid {
		for _, chunk := range []int{0, 1} {
			t.Run(c.Name, func(t *testing.T) {
				r := NewReader(&fakeConn{data: unhex(t, c.Hex), chunk: chunk})
				_, err := r.Next()
				checkErrorKind(t, err, c.GoError)
			})
		}
	}
}

func checkErrorKind(t *testing.T, err error, kind string) {
	t.Helper()
	switch kind {
	case "protocol":
		if !errors.Is(err, ErrProtocol) {
			t.Fatalf("got %v, want a protocol violation", err)
		}
	case "unexpected_eof":
		if err != io.ErrUnexpectedEOF {
			t.Fatalf("got %v, want io.ErrUnexpectedEOF", err)
		}
	case "eof":
		if err != io.EOF {
			t.Fatalf("got %v, want io.EOF", err)
		}
	default:
		t.Fatalf("unknown error kind %q", kind)
	}
}

func TestHeadCases(t *testing.T) {
	vf := loadVectors(t)
	for _, c := range vf.HeadCases {
		p := unhex(t, c.PayloadHex)
		var headers [][2]string
		status, err := ParseResponseHead(string(p), func(name, value string) error {
			headers = append(headers, [2]string{name, value})
			return nil
		})
		if c.Error {
			if err == nil {
				t.Errorf("%q (%s): no error", p, c.Note)
			}
			continue
		}
		if err != nil || status != c.Status || len(headers) != len(c.Headers) ||
			(len(headers) > 0 && !reflect.DeepEqual(headers, c.Headers)) {
			t.Errorf("%q: %d %q %v, want %d %q", p, status, headers, err, c.Status, c.Headers)
		}
	}
}

func TestParseResponseHeadCallbackError(t *testing.T) {
	stop := errors.New("stop")
	calls := 0
	_, err := ParseResponseHead("200 OK\x00A\x00a\x00B\x00b", func(name, value string) error {
		calls++
		return stop
	})
	if err != stop || calls != 1 {
		t.Fatalf("got %v after %d calls, want the callback's error after 1", err, calls)
	}
}

func TestPairsCases(t *testing.T) {
	vf := loadVectors(t)
	for _, c := range vf.PairsCases {
		p := unhex(t, c.PayloadHex)
		m, err := ParsePairs(p)
		if c.Error {
			if !errors.Is(err, ErrProtocol) {
				t.Errorf("%q (%s): %v, want a protocol violation", p, c.Note, err)
			}
			continue
		}
		want := c.Dict
		if want == nil {
			want = map[string]string{}
			for _, kv := range c.Pairs {
				want[kv[0]] = kv[1]
			}
		}
		if err != nil || !reflect.DeepEqual(m, want) {
			t.Errorf("%q: %q %v, want %q", p, m, err, want)
		}
		var enc []byte
		for _, kv := range c.Pairs {
			enc = AppendPair(enc, kv[0], kv[1])
		}
		if !bytes.Equal(enc, p) {
			t.Errorf("AppendPair gives %q, want %q", enc, p)
		}
	}
}

func TestParseHeaderErrors(t *testing.T) {
	for _, c := range []struct {
		name string
		h    []byte
	}{
		{"reserved high", []byte{0x11, 0, 1, 0, 0, 0, 0, 0}},
		{"reserved low", []byte{0x11, 0, 0, 1, 0, 0, 0, 0}},
		{"oversized", AppendHeader(nil, ResponseBody, 0, MaxPayload+1)},
		{"length 2^32-1", []byte{0x11, 0, 0, 0, 0xff, 0xff, 0xff, 0xff}},
		{"unknown type 0x00", AppendHeader(nil, 0x00, 0, 0)},
		{"unknown type 0x15", AppendHeader(nil, 0x15, 0, 0)},
		{"unknown type 0x45", AppendHeader(nil, 0x45, 0, 0)},
		{"unknown type 0xff", AppendHeader(nil, 0xff, 0, 0)},
	} {
		if _, _, _, err := ParseHeader(c.h); !errors.Is(err, ErrProtocol) {
			t.Errorf("%s: %v, want a protocol violation", c.name, err)
		}
	}
	typ, flags, n, err := ParseHeader(AppendHeader(nil, Log, LevelError, MaxPayload))
	if err != nil || typ != Log || flags != LevelError || n != MaxPayload {
		t.Fatalf("largest frame: %s %d %d %v", typ, flags, n, err)
	}
	if s := Type(0x7f).String(); s != "0x7f" {
		t.Errorf("unknown type prints as %q", s)
	}
	if s := BodyPause.String(); s != "BODY_PAUSE" {
		t.Errorf("BODY_PAUSE prints as %q", s)
	}
}

func TestAppendRequestHeader(t *testing.T) {
	got := AppendRequestHeader([]byte{0xee}, FlagNoBody, 0x0102, 0x030405)
	want := []byte{0xee, byte(Request), FlagNoBody, 0x01, 0x02, 0x00, 0x03, 0x04, 0x05}
	if !bytes.Equal(got, want) {
		t.Fatalf("got %x, want %x", got, want)
	}
	// The server's reader parses only the worker's frames, in which these
	// bytes are reserved.
	if _, _, _, err := ParseHeader(got[1:]); !errors.Is(err, ErrProtocol) {
		t.Fatalf("ParseHeader of a REQUEST for application 0x0102: %v, want a protocol violation", err)
	}
}

func TestSetRequestApp(t *testing.T) {
	frame := append(AppendRequestHeader(nil, FlagNoBody, 7, 3), "abc"...)
	SetRequestApp(frame, 0x0102)
	if want := append(AppendRequestHeader(nil, FlagNoBody, 0x0102, 3), "abc"...); !bytes.Equal(frame, want) {
		t.Fatalf("got %x, want %x", frame, want)
	}
}

func TestParseFileRangeAndBodyMoreErrors(t *testing.T) {
	for _, p := range [][]byte{nil, make([]byte, 15), make([]byte, 17)} {
		if _, err := ParseFileRange(p); !errors.Is(err, ErrProtocol) {
			t.Errorf("ParseFileRange(%d bytes): %v", len(p), err)
		}
	}
	neg := appendUint64(appendUint64(nil, 1<<63), 1)
	if _, err := ParseFileRange(neg); !errors.Is(err, ErrProtocol) {
		t.Errorf("negative offset: %v", err)
	}
	neg = appendUint64(appendUint64(nil, 0), 1<<63)
	if _, err := ParseFileRange(neg); !errors.Is(err, ErrProtocol) {
		t.Errorf("negative length: %v", err)
	}
	for _, p := range [][]byte{nil, make([]byte, 3), make([]byte, 5)} {
		if _, err := ParseBodyMore(p); !errors.Is(err, ErrProtocol) {
			t.Errorf("ParseBodyMore(%d bytes): %v", len(p), err)
		}
	}
	if n, err := ParseBodyMore(AppendUint32(nil, 0xffffffff)); err != nil || n != 0xffffffff {
		t.Errorf("largest BODY_MORE: %d %v", n, err)
	}
}

func TestReaderLargestFrame(t *testing.T) {
	payload := bytes.Repeat([]byte("0123456789abcdef"), MaxPayload/16)
	data := AppendFrame(nil, ResponseBody, 0, payload)
	data = AppendFrame(data, ResponseEnd, 0, nil)
	r := NewReader(&fakeConn{data: data, chunk: 1 << 20})
	f, err := r.Next()
	if err != nil || f.Type != ResponseBody || !bytes.Equal(f.Payload, payload) {
		t.Fatalf("largest frame: %s %d bytes %v", f.Type, len(f.Payload), err)
	}
	f, err = r.Next()
	if err != nil || f.Type != ResponseEnd {
		t.Fatalf("after the largest frame: %s %v", f.Type, err)
	}
	if _, err := r.Next(); err != io.EOF {
		t.Fatal(err)
	}
	if len(r.buf) != readBufferSize {
		t.Fatalf("buffer is still %d bytes after an oversized frame", len(r.buf))
	}
}

func TestReaderBuffered(t *testing.T) {
	a := AppendFrame(nil, ResponseBody, 0, []byte("abc"))
	b := AppendFrame(nil, ResponseEnd, 0, nil)
	r := NewReader(&fakeConn{data: append(append([]byte(nil), a...), b...)})
	if r.Buffered() != 0 {
		t.Fatal(r.Buffered())
	}
	if _, err := r.Next(); err != nil {
		t.Fatal(err)
	}
	if r.Buffered() != len(b) {
		t.Fatalf("Buffered %d after the first frame, want %d", r.Buffered(), len(b))
	}
	if _, err := r.Next(); err != nil {
		t.Fatal(err)
	}
	if r.Buffered() != 0 {
		t.Fatalf("Buffered %d at the end", r.Buffered())
	}
}

func TestReaderErrorIsSticky(t *testing.T) {
	r := NewReader(&fakeConn{data: unhex(t, "1000000100000000")})
	for i := 0; i < 2; i++ {
		if _, err := r.Next(); !errors.Is(err, ErrProtocol) {
			t.Fatalf("call %d: %v", i, err)
		}
	}
}

type ctruncConn struct{}

func (ctruncConn) ReadMsgUnix(b, oob []byte) (int, int, int, *net.UnixAddr, error) {
	return copy(b, AppendHeader(nil, ResponseEnd, 0, 0)), 0, syscall.MSG_CTRUNC, nil, nil
}

func TestReaderControlTruncated(t *testing.T) {
	if _, err := NewReader(ctruncConn{}).Next(); !errors.Is(err, ErrProtocol) {
		t.Fatalf("MSG_CTRUNC: %v", err)
	}
}

func TestParseLogLine(t *testing.T) {
	for _, tc := range []struct {
		line, logger, text string
		level              uint8
		ok                 bool
	}{
		{"\x1e3app.db\x1fslow query", "app.db", "slow query", LevelDebug, true},
		{"\x1e2root\x1fTraceback:\\n  File \\\\x\\n", "root", "Traceback:\n  File \\x\n", LevelError, true},
		{"\x1e0\x1f", "", "", LevelInfo, true},
		{"\x1e1a\x1fkept \\t and a trailing \\", "a", "kept \\t and a trailing \\", LevelWarn, true},
		{"plain text", "", "", 0, false},
		{"\x1e4root\x1fno such level", "", "", 0, false},
		{"\x1e0no separator", "", "", 0, false},
		{"\x1e", "", "", 0, false},
	} {
		level, logger, text, ok := ParseLogLine([]byte(tc.line))
		if ok != tc.ok || ok && (level != tc.level || string(logger) != tc.logger || string(text) != tc.text) {
			t.Errorf("%q: level %d logger %q text %q ok %v", tc.line, level, logger, text, ok)
		}
	}
}

func TestParseLog(t *testing.T) {
	for _, tc := range []struct {
		flags        uint8
		payload      string
		level        uint8
		logger, text string
		noLogger     bool
	}{
		{LevelError, "a\x00b", LevelError, "", "a\x00b", true},
		{LevelDebug | FlagLogger, "app.db\x00slow\nquery", LevelDebug, "app.db", "slow\nquery", false},
		{LevelWarn | FlagLogger, "no NUL: all text", LevelWarn, "", "no NUL: all text", true},
	} {
		level, logger, text := ParseLog(tc.flags, []byte(tc.payload))
		if level != tc.level || string(logger) != tc.logger || string(text) != tc.text || (logger == nil) != tc.noLogger {
			t.Errorf("%#x %q: level %d logger %q text %q", tc.flags, tc.payload, level, logger, text)
		}
	}
}
