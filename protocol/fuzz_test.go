package protocol

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// FuzzReader feeds arbitrary bytes to Reader.Next, and every payload it
// returns to the payload parsers. `go test` runs only the seeds; run the
// fuzzer with: go test ./protocol -run '^$' -fuzz FuzzReader -fuzztime 60s
func FuzzReader(f *testing.F) {
	vf := loadVectors(f)
	for _, v := range vf.Vectors {
		f.Add(unhex(f, v.Hex))
	}
	for _, c := range vf.Invalid {
		f.Add(unhex(f, c.Hex))
	}
	for _, c := range vf.HeadCases {
		f.Add(AppendFrame(nil, ResponseHead, 0, unhex(f, c.PayloadHex)))
	}
	for _, c := range vf.PairsCases {
		f.Add(AppendFrame(nil, Request, 0, unhex(f, c.PayloadHex)))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		// The same bytes in one read and in small reads must decode alike.
		whole, wholeErr := decodeAll(t, data, 0)
		chunk := 1 + len(data)%7
		small, smallErr := decodeAll(t, data, chunk)
		if !bytes.Equal(whole, small) || errorKind(wholeErr) != errorKind(smallErr) {
			t.Fatalf("reads of %d bytes decode differently: %x %v, whole: %x %v", chunk, small, smallErr, whole, wholeErr)
		}
		if errorKind(wholeErr) == "eof" && !bytes.Equal(whole, data) {
			t.Fatalf("clean EOF, but the frames re-encode to %x, not the input", whole)
		}
		if len(data) >= HeaderSize {
			typ, flags, n, err := ParseHeader(data[:HeaderSize])
			if err == nil && (n > MaxPayload || n < 0 || typ.String()[0] == '0' ||
				!bytes.Equal(AppendHeader(nil, typ, flags, n), data[:HeaderSize])) {
				t.Fatalf("ParseHeader accepted %x as %s %d %d", data[:HeaderSize], typ, flags, n)
			}
		}
		checkPayload(t, data)
	})
}

func errorKind(err error) string {
	switch {
	case err == io.EOF:
		return "eof"
	case err == io.ErrUnexpectedEOF:
		return "unexpected eof"
	case errors.Is(err, ErrProtocol):
		return "protocol"
	}
	return "other: " + err.Error()
}

// decodeAll reads frames until an error and returns them re-encoded.
func decodeAll(t *testing.T, data []byte, chunk int) ([]byte, error) {
	r := NewReader(&fakeConn{data: data, chunk: chunk})
	var out []byte
	for {
		f, err := r.Next()
		if r.Buffered() < 0 || r.Buffered() > len(data) {
			t.Fatalf("Buffered() = %d", r.Buffered())
		}
		if err != nil {
			if k := errorKind(err); k[0] == 'o' {
				t.Fatalf("unexpected error %v", err)
			}
			return out, err
		}
		if len(f.Payload) > MaxPayload || cap(f.Payload) != len(f.Payload) {
			t.Fatalf("payload of %d bytes, capacity %d", len(f.Payload), cap(f.Payload))
		}
		if _, ok := typeNames[f.Type]; !ok {
			t.Fatalf("unknown type %s returned", f.Type)
		}
		out = AppendFrame(out, f.Type, f.Flags, f.Payload)
		if !bytes.HasPrefix(data, out) {
			t.Fatalf("frames re-encode to %x, not a prefix of the input", out)
		}
		checkPayload(t, f.Payload)
	}
}

// checkPayload runs every payload parser on p and checks what they accept.
func checkPayload(t *testing.T, p []byte) {
	var head []byte
	status, err := ParseResponseHead(string(p), func(name, value string) error {
		head = append(append(append(append(head, 0), name...), 0), value...)
		return nil
	})
	if err == nil {
		line, _, _ := bytes.Cut(p, []byte{0})
		if status < 200 || status > 999 || !bytes.Equal(append(line, head...), p) {
			t.Fatalf("ParseResponseHead(%q) = %d, headers %q", p, status, head)
		}
	}
	if m, err := ParsePairs(p); err == nil {
		if len(p) > 0 && p[len(p)-1] != 0 || bytes.Count(p, []byte{0})%2 != 0 {
			t.Fatalf("ParsePairs accepted %q", p)
		}
		if len(m) > bytes.Count(p, []byte{0})/2 {
			t.Fatalf("ParsePairs(%q) returned %d pairs", p, len(m))
		}
		var enc []byte
		for k, v := range m {
			enc = AppendPair(enc, k, v)
		}
		if bytes.Count(enc, []byte{0}) != 2*len(m) {
			t.Fatalf("ParsePairs(%q) returned a key or value with NUL", p)
		}
	}
	if m, err := ParseRequest(p); err == nil {
		if n := bytes.Count(p, []byte{0}); n < len(RequestKeys) || (n-len(RequestKeys))%2 != 0 || p[len(p)-1] != 0 {
			t.Fatalf("ParseRequest accepted %q", p)
		}
		for _, key := range RequestKeys {
			if _, ok := m[key]; !ok {
				t.Fatalf("ParseRequest(%q) has no %s", p, key)
			}
		}
	}
	if fr, err := ParseFileRange(p); err == nil && (len(p) != 16 || fr.Offset < 0 || fr.Length < 0) {
		t.Fatalf("ParseFileRange(%x) = %+v", p, fr)
	}
	if n, err := ParseBodyMore(p); err == nil && (len(p) != 4 || n < 0) {
		t.Fatalf("ParseBodyMore(%x) = %d", p, n)
	}
}
