package protocol

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// AppendPair appends one environ entry to a REQUEST payload: key NUL value NUL.
// Neither may contain NUL; RequestEncoder.End checks that for a whole payload
// at once.
func AppendPair(dst []byte, key, value string) []byte {
	dst = append(dst, key...)
	dst = append(dst, 0)
	dst = append(dst, value...)
	return append(dst, 0)
}

// ParsePairs decodes a NUL-terminated key/value list (the HELLO payload, and
// a REQUEST's after its fixed values) into a map. It is for tests and the
// handshake, not the hot path.
func ParsePairs(p []byte) (map[string]string, error) {
	if len(p) == 0 {
		return map[string]string{}, nil
	}
	if p[len(p)-1] != 0 {
		return nil, fmt.Errorf("%w: key/value list does not end with NUL", ErrProtocol)
	}
	fields := bytes.Split(p[:len(p)-1], []byte{0})
	if len(fields)%2 != 0 {
		return nil, fmt.Errorf("%w: key/value list has an odd number of fields", ErrProtocol)
	}
	m := make(map[string]string, len(fields)/2)
	for i := 0; i < len(fields); i += 2 {
		m[string(fields[i])] = string(fields[i+1])
	}
	return m, nil
}

// ParseRequest decodes a REQUEST payload into its environ: the values of
// RequestKeys, each followed by NUL, then a key/value list, whose values win
// over the fixed ones for a repeated key. It is for tests: the server only
// encodes REQUESTs.
func ParseRequest(p []byte) (map[string]string, error) {
	values := make([][]byte, 0, len(RequestKeys))
	for range RequestKeys {
		value, rest, ok := bytes.Cut(p, []byte{0})
		if !ok {
			return nil, fmt.Errorf("%w: REQUEST has %d of its %d fixed values", ErrProtocol, len(values), len(RequestKeys))
		}
		values = append(values, value)
		p = rest
	}
	m, err := ParsePairs(p)
	if err != nil {
		return nil, err
	}
	for i, key := range RequestKeys {
		if _, ok := m[key]; !ok {
			m[key] = string(values[i])
		}
	}
	return m, nil
}

// ParseResponseHead decodes a RESPONSE_HEAD payload, the status line and the
// header names and values separated by NUL, calling fn for each header. It
// takes the payload as a string, which its caller converts once: the names
// and values it gives fn are parts of it, which a header map can keep.
func ParseResponseHead(p string, fn func(name, value string) error) (status int, err error) {
	statusLine, rest, more := strings.Cut(p, "\x00")
	status, err = parseStatus(statusLine)
	if err != nil {
		return 0, err
	}
	for more {
		var name, value string
		name, rest, more = strings.Cut(rest, "\x00")
		if !more {
			return 0, fmt.Errorf("%w: response header %q has no value", ErrProtocol, name)
		}
		value, rest, more = strings.Cut(rest, "\x00")
		if err := fn(name, value); err != nil {
			return 0, err
		}
	}
	return status, nil
}

// parseStatus accepts a WSGI status: three digits, a space and a reason phrase
// (PEP 3333 requires the reason; it may be empty).
func parseStatus(s string) (int, error) {
	if len(s) < 4 || s[3] != ' ' {
		return 0, fmt.Errorf("invalid status %q: want three digits, a space and a reason phrase", s)
	}
	code, err := strconv.Atoi(s[:3])
	if err != nil || code < 200 {
		return 0, fmt.Errorf("invalid status %q: the code must be a number from 200 to 999", s)
	}
	return code, nil
}

// ParseLog splits a Log frame into its level, the name of the Python logger
// that made the record (empty for other output) and the text.
func ParseLog(flags uint8, payload []byte) (level uint8, logger, text []byte) {
	if flags&FlagLogger == 0 {
		return flags, nil, payload
	}
	logger, text, found := bytes.Cut(payload, []byte{0})
	if !found {
		return flags &^ FlagLogger, nil, payload
	}
	return flags &^ FlagLogger, logger, text
}

// LogLineMark starts a log record line on a worker's stdout or stderr:
// RS, the level as one digit, the logger's name, US, the escaped text.
const LogLineMark = 0x1e

// ParseLogLine reads a log record line (without its newline): the worker's
// way to give a record of Python's logging its level and logger outside a
// request. ok is false for any other line, which is logged as it is.
func ParseLogLine(line []byte) (level uint8, logger, text []byte, ok bool) {
	if len(line) < 2 || line[0] != LogLineMark || line[1] < '0' || line[1] > '0'+LevelDebug {
		return 0, nil, nil, false
	}
	logger, escaped, ok := bytes.Cut(line[2:], []byte{0x1f})
	if !ok {
		return 0, nil, nil, false
	}
	return line[1] - '0', logger, unescapeLogText(escaped), true
}

// unescapeLogText undoes the worker's escaping of a log record line's text:
// \n is a newline and \\ a backslash; any other backslash stays as it is.
func unescapeLogText(b []byte) []byte {
	if bytes.IndexByte(b, '\\') < 0 {
		return b
	}
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		if b[i] == '\\' && i+1 < len(b) && (b[i+1] == 'n' || b[i+1] == '\\') {
			i++
			if b[i] == 'n' {
				out = append(out, '\n')
				continue
			}
		}
		out = append(out, b[i])
	}
	return out
}
