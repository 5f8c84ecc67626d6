package caddywsgi_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestCutChunkedBody: a chunked request body that the client stops sending
// before its last chunk, within Caddy's first window of body, never reaches
// the application as complete: Caddy answers 400 without calling it. The
// clients close, or half-close and read the answer, at each place a body can
// be cut: after a whole chunk, inside a chunk's data, inside a chunk-size
// line, before the final CRLF. One cut past the first window reaches the
// application, whose wsgi.input raises.
func TestCutChunkedBody(t *testing.T) {
	record := filepath.Join(caddyDir(t), "seen")
	c := startCaddy(t, fmt.Sprintf(`:{http_port} {
	wsgi_script / {apps}/record_body.wsgi {
		python {python}
		env RECORD_FILE %s
	}
}`, record))

	big := strings.Repeat("b", 32<<10)
	cuts := []string{
		"5\r\nhello\r\n",
		"5\r\nhel",
		"5\r\nhello\r\n3",
		"5\r\nhello\r\n3\r\n",
		"5\r\nhello\r\n0\r\n",
		"8000\r\n" + big + "\r\n",
		"8000\r\n" + big + "\r\n4000\r\n" + big[:5000],
	}
	const tries = 50
	closed := 0
	for i := range tries {
		cut := cuts[i%len(cuts)]
		halfClose := i%2 == 0
		conn, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(c.HTTPPort))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(conn, "POST /upload HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"+cut); err != nil {
			t.Fatal(err)
		}
		if !halfClose {
			conn.Close()
			closed++
			continue
		}
		conn.(*net.TCPConn).CloseWrite()
		res, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("try %d (cut %d): %v", i, i%len(cuts), err)
		}
		body, _ := io.ReadAll(res.Body)
		conn.Close()
		if res.StatusCode != http.StatusBadRequest {
			t.Errorf("try %d (cut %d): %d %s, want 400 without calling the application", i, i%len(cuts), res.StatusCode, body)
		}
	}
	// Every closed client's request has been refused once Caddy has logged
	// it: the half-closed ones were answered, and each logs one line too.
	waitLogCount(t, c, tries, "reading the request body")

	// A body cut past the first window reaches the application, whose
	// wsgi.input raises when it comes to the cut: either as a truncated body
	// or, if Caddy has seen the client go first, as a cancelled request.
	// The client then hears the application's answer, or nothing at all.
	conn, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(c.HTTPPort))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "POST /upload HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"+
		strings.Repeat("8000\r\n"+big+"\r\n", 3)); err != nil {
		t.Fatal(err)
	}
	conn.(*net.TCPConn).CloseWrite()
	if res, err := http.ReadResponse(bufio.NewReader(conn), nil); err == nil {
		body, _ := io.ReadAll(res.Body)
		if want := "request body truncated"; !strings.Contains(string(body), want) {
			t.Errorf("a body cut after 96 KiB: %d %s, want wsgi.input to raise %q", res.StatusCode, body, want)
		}
	} else if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("a body cut after 96 KiB: %v, want the application's answer or nothing", err)
	}
	if lines := waitLines(t, record, 1); !strings.Contains(lines[0], `"error": "OSError(`) {
		t.Errorf("a body cut after 96 KiB reached the application as %s, want wsgi.input to raise", lines[0])
	}

	// A finished chunked body still reaches the application, complete.
	res, finished := get(t, plainClient, "POST", c.URL("/upload"), chunked{strings.NewReader("complete")})
	if res.StatusCode != 200 || finished != `{"content_length": "8", "size": 8}` {
		t.Errorf("a finished chunked body: %d %s", res.StatusCode, finished)
	}
	seen, err := os.ReadFile(record)
	if err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(strings.TrimSpace(string(seen)), "\n"); len(lines) != 2 {
		t.Errorf("the application saw %d requests, want only the one cut after the first window and the finished one (%d clients closed, %d half-closed):\n%s",
			len(lines), closed, tries-closed, seen)
	}
}

// waitLines waits up to 10 s for the file at path to hold n lines, and
// returns them. The application writes it, so its lines are the signal.
func waitLines(t *testing.T, path string, n int) []string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		data, _ := os.ReadFile(path)
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		if len(data) > 0 && len(lines) >= n {
			return lines
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s has %d lines after 10s, want %d:\n%s", path, len(lines), n, data)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
