package protocol

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// TestVectorsServerEncoding builds every vector the server sends with the
// encoder the server uses, frame helpers included, and compares the bytes.
func TestVectorsServerEncoding(t *testing.T) {
	for _, v := range loadVectors(t).Vectors {
		if v.Sender != "server" {
			continue
		}
		t.Run(v.Name, func(t *testing.T) {
			var got []byte
			frames := v.Frames
			if typeByName(t, frames[0].Type) == Request {
				var e RequestEncoder
				fixed := make([]string, len(frames[0].Fixed))
				for i, v := range frames[0].Fixed {
					fixed[i] = latin1(t, v)
				}
				e.Begin(make([]byte, 3), frames[0].App, requestLine(t, fixed))
				for _, kv := range frames[0].Pairs {
					e.Pair(latin1(t, kv[0]), latin1(t, kv[1]))
				}
				if err := e.End(frames[0].Flags); err != nil {
					t.Fatal(err)
				}
				frames = frames[1:]
				if len(frames) > 0 {
					// The first window: BODY frames, then its end.
					var window []byte
					for _, f := range frames[:len(frames)-1] {
						window = append(window, expectedPayload(t, f)...)
					}
					e.Body(window, typeByName(t, frames[len(frames)-1].Type) == BodyPause)
					frames = nil
				}
				got = e.Bytes()
			}
			for _, f := range frames {
				switch typeByName(t, f.Type) {
				case Body:
					p := expectedPayload(t, f)
					buf := append(make([]byte, HeaderSize), p...)
					got = append(got, BodyFrame(buf, len(p))...)
				case BodyPause:
					got = AppendBodyPause(got)
				case BodyEnd:
					got = AppendBodyEnd(got, f.Flags&FlagTruncated != 0)
				case Cancel:
					got = AppendCancel(got)
				default:
					t.Fatalf("no server encoding for %s", f.Type)
				}
			}
			if want := unhex(t, v.Hex); !bytes.Equal(got, want) {
				t.Fatalf("\n got %x\nwant %x", got, want)
			}
		})
	}
}

func TestRequestEncoderHeader(t *testing.T) {
	var e RequestEncoder
	e.Begin(nil, 0, &RequestLine{})
	e.Header("X-Forwarded-For", []string{"a", "b"})
	e.Header("Accept", []string{"*/*"})
	e.Header("Dnt", nil)
	if err := e.End(FlagNoBody); err != nil {
		t.Fatal(err)
	}
	want := strings.Repeat("\x00", len(RequestKeys)) + "HTTP_X_FORWARDED_FOR\x00a, b\x00HTTP_ACCEPT\x00*/*\x00HTTP_DNT\x00\x00"
	if got := string(e.Bytes()[HeaderSize:]); got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

// requestLine is the RequestLine with values, in the order of its fields.
func requestLine(tb testing.TB, values []string) *RequestLine {
	tb.Helper()
	var line RequestLine
	v := reflect.ValueOf(&line).Elem()
	if len(values) != v.NumField() {
		tb.Fatalf("%d values for the %d fields of RequestLine", len(values), v.NumField())
	}
	for i, value := range values {
		v.Field(i).SetString(value)
	}
	return &line
}

// TestRequestLineOrder: RequestLine has a field for each of RequestKeys, and
// Begin sends each field's value where the key of the same position goes.
func TestRequestLineOrder(t *testing.T) {
	typ := reflect.TypeFor[RequestLine]()
	if typ.NumField() != len(RequestKeys) {
		t.Fatalf("RequestLine has %d fields for %d RequestKeys", typ.NumField(), len(RequestKeys))
	}
	values := make([]string, len(RequestKeys))
	for i := range values {
		values[i] = typ.Field(i).Name
	}
	var e RequestEncoder
	e.Begin(nil, 0, requestLine(t, values))
	if err := e.End(FlagNoBody); err != nil {
		t.Fatal(err)
	}
	m, err := ParseRequest(e.Bytes()[HeaderSize:])
	if err != nil {
		t.Fatal(err)
	}
	for i, key := range RequestKeys {
		if field := typ.Field(i).Name; m[key] != field {
			t.Errorf("%s is the value of field %s, want %s", key, m[key], field)
		}
	}
	if want := "Method ScriptName PathInfo QueryString RequestURI ServerName ServerPort ServerProtocol RemoteAddr RemotePort URLScheme"; strings.Join(values, " ") != want {
		t.Errorf("RequestLine's fields are %q, want %q", values, want)
	}
}

func TestParseRequest(t *testing.T) {
	fixed := strings.Repeat("v\x00", len(RequestKeys))
	for _, c := range []struct {
		payload string
		want    map[string]string // nil: a protocol violation
	}{
		{"", nil},
		{"GET\x00", nil},
		{fixed[:len(fixed)-1], nil},
		{fixed + "K", nil},
		{fixed + "K\x00", nil},
		{fixed, map[string]string{}},
		{fixed + "K\x00\x00", map[string]string{"K": ""}},
		{fixed + "SCRIPT_NAME\x00/a\x00", map[string]string{"SCRIPT_NAME": "/a"}},
	} {
		m, err := ParseRequest([]byte(c.payload))
		if c.want == nil {
			if !errors.Is(err, ErrProtocol) {
				t.Errorf("%q: %q %v, want a protocol violation", c.payload, m, err)
			}
			continue
		}
		want := map[string]string{}
		for _, key := range RequestKeys {
			want[key] = "v"
		}
		maps.Copy(want, c.want)
		if err != nil || !reflect.DeepEqual(m, want) {
			t.Errorf("%q: %q %v, want %q", c.payload, m, err, want)
		}
	}
}

func TestRequestEncoderRefuses(t *testing.T) {
	for _, kv := range [][2]string{{"PATH_INFO", "/a\x00b"}, {"HTTP_X\x00Y", "v"}, {"K", "\x00"}} {
		var e RequestEncoder
		e.Begin(nil, 0, &RequestLine{})
		e.Pair("A", "1")
		e.Pair(kv[0], kv[1])
		if err := e.End(0); !errors.Is(err, ErrFieldNUL) {
			t.Errorf("a NUL in %q: %v, want ErrFieldNUL", kv, err)
		}
	}
	// A NUL in any of the fixed values.
	for i, key := range RequestKeys {
		values := make([]string, len(RequestKeys))
		values[i] = "a\x00b"
		var e RequestEncoder
		e.Begin(nil, 0, requestLine(t, values))
		e.Pair("A", "1")
		if err := e.End(0); !errors.Is(err, ErrFieldNUL) {
			t.Errorf("a NUL in %s: %v, want ErrFieldNUL", key, err)
		}
	}
	var e RequestEncoder
	e.Begin(nil, 0, &RequestLine{})
	e.Header("Cookie", []string{"a\x00b"})
	if err := e.End(0); !errors.Is(err, ErrFieldNUL) {
		t.Errorf("a NUL in a header: %v, want ErrFieldNUL", err)
	}
	// The largest payload passes, one byte more does not.
	long := strings.Repeat("v", MaxPayload-len(RequestKeys)-len("K\x00\x00"))
	e.Begin(nil, 0, &RequestLine{})
	e.Pair("K", long)
	if err := e.End(0); err != nil {
		t.Fatalf("payload of MaxPayload bytes: %v", err)
	}
	e.Begin(nil, 0, &RequestLine{})
	e.Pair("K", long+"v")
	if err := e.End(0); !errors.Is(err, ErrRequestTooLarge) {
		t.Fatalf("payload of MaxPayload+1 bytes: %v, want ErrRequestTooLarge", err)
	}
}

// TestRequestEncoderReusesBuffer: Begin starts over in the buffer it is
// given, whatever was in it.
func TestRequestEncoderReusesBuffer(t *testing.T) {
	var e RequestEncoder
	e.Begin(nil, 0, &RequestLine{Method: "OLD"})
	e.Pair("OLD", "x")
	e.Body([]byte("body"), false)
	old := e.Bytes()
	e.Begin(old, 1, &RequestLine{Method: "GET"})
	e.Pair("K", "v")
	if err := e.End(FlagNoBody); err != nil {
		t.Fatal(err)
	}
	payload := "GET" + strings.Repeat("\x00", len(RequestKeys)) + "K\x00v\x00"
	want := append(AppendRequestHeader(nil, FlagNoBody, 1, len(payload)), payload...)
	if !bytes.Equal(e.Bytes(), want) || &e.Bytes()[0] != &old[0] {
		t.Fatalf("got %x, want %x in the old buffer", e.Bytes(), want)
	}
}

// FuzzRequestEncoder encodes requests made of arbitrary fields and bodies
// and reads them back with the Reader and ParseRequest: what the encoder
// accepts decodes to exactly what it was given, and it refuses exactly the
// fields with a NUL. `go test` runs only the seeds; run the fuzzer with:
// go test ./protocol -run '^$' -fuzz FuzzRequestEncoder -fuzztime 60s
func FuzzRequestEncoder(f *testing.F) {
	f.Add([]byte("GET\x01\x01/\x01\x01/\x01localhost\x0180\x01HTTP/1.1\x01127.0.0.1\x0140000\x01http\x01HTTP_HOST\x01localhost\x01Accept\x01*/*\x01"), uint16(0), []byte(nil), false, uint8(1))
	f.Add([]byte("GET\x00\x01"), uint16(7), []byte("a=1"), true, uint8(0))
	f.Add([]byte("POST\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01https\x01K\x01v\x00\x01"), uint16(7), []byte("a=1"), true, uint8(0))
	f.Add([]byte("\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01Accept-Encoding\x01gzip\x02br\x01"), uint16(1), bytes.Repeat([]byte("x"), 2*BodyChunk+1), false, uint8(1))
	f.Add([]byte(""), uint16(65535), []byte{}, false, uint8(3))
	f.Fuzz(func(t *testing.T, fields []byte, app uint16, body []byte, more bool, headers uint8) {
		// Fields are separated by 0x01: the fixed values (empty where
		// fields has too few), then key, value, key, value... The last
		// `headers` pairs are headers, whose values 0x02 separates.
		parts := strings.Split(string(fields), "\x01")
		fixed := make([]string, len(RequestKeys))
		parts = parts[copy(fixed, parts):]
		if len(parts)%2 != 0 {
			parts = parts[:len(parts)-1]
		}
		var e RequestEncoder
		e.Begin(nil, app, requestLine(t, fixed))
		want := slices.Clone(fixed)
		nHeaders := min(int(headers), len(parts)/2)
		for i := 0; i < len(parts); i += 2 {
			k, v := parts[i], parts[i+1]
			if i/2 >= len(parts)/2-nHeaders {
				e.Header(k, strings.Split(v, "\x02"))
				k = "HTTP_" + asciiUpper(strings.ReplaceAll(k, "-", "_"))
				v = strings.ReplaceAll(v, "\x02", ", ")
			} else {
				e.Pair(k, v)
			}
			want = append(want, k, v)
		}
		flags := FlagNoBody
		if body != nil {
			flags = 0
		}
		err := e.End(flags)
		if hasNUL := strings.Contains(strings.Join(fixed, "")+strings.Join(parts, ""), "\x00"); hasNUL != (err != nil) {
			t.Fatalf("End() = %v for fields %q and %q", err, fixed, parts)
		}
		if err != nil {
			return
		}
		if body != nil {
			e.Body(body, more)
		}
		out := e.Bytes()
		if got := binary.BigEndian.Uint16(out[2:4]); got != app {
			t.Fatalf("application %d, want %d", got, app)
		}
		// The Reader reads the worker's frames, in which bytes 2-3 are
		// reserved: it must refuse a REQUEST for another application
		// than 0, and read the rest as any frames.
		SetRequestApp(out, 0)
		r := NewReader(&fakeConn{data: out, chunk: 1 + len(out)%13})
		req, err := r.Next()
		if err != nil || req.Type != Request || req.Flags != flags {
			t.Fatalf("REQUEST read back as %s %d: %v", req.Type, req.Flags, err)
		}
		// Never empty: the fixed values are always there.
		got := strings.Split(string(req.Payload[:len(req.Payload)-1]), "\x00")
		if !slices.Equal(got, want) {
			t.Fatalf("fields read back as %q, want %q", got, want)
		}
		if _, err := ParseRequest(req.Payload); err != nil {
			t.Fatalf("ParseRequest: %v", err)
		}
		var gotBody []byte
		for {
			fr, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case body == nil:
				t.Fatalf("%s after a REQUEST without body", fr.Type)
			case fr.Type == Body && len(fr.Payload) <= BodyChunk:
				gotBody = append(gotBody, fr.Payload...)
			case fr.Type == BodyPause && more, fr.Type == BodyEnd && !more && fr.Flags == 0:
				if r.Buffered() != 0 {
					t.Fatalf("%d bytes after %s", r.Buffered(), fr.Type)
				}
			default:
				t.Fatalf("unexpected %s (flags %d, %d bytes)", fr.Type, fr.Flags, len(fr.Payload))
			}
		}
		if !bytes.Equal(gotBody, body) {
			t.Fatalf("body read back as %d bytes, want %d", len(gotBody), len(body))
		}
	})
}

// asciiUpper is strings.ToUpper for bytes, whatever their encoding: header
// names are latin-1 here, not UTF-8.
func asciiUpper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}
