package caddywsgi_test

import (
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// TestHalfClosedWhileQueued: a client that half-closes its connection
// (shutdown(SHUT_WR) after its request) while the request waits for a worker
// thread is gone as far as Caddy can tell: it gets nothing, never a status
// line for the 499 that only the access log shows.
func TestHalfClosedWhileQueued(t *testing.T) {
	// With an access log, Caddy's response writer records the status; without
	// one, the handler has net/http's own.
	for _, log := range []string{"log", ""} {
		t.Run("access log "+strconv.FormatBool(log != ""), func(t *testing.T) { halfCloseWhileQueued(t, log) })
	}
}

func halfCloseWhileQueued(t *testing.T, log string) {
	c := startCaddy(t, `:{http_port} {
	`+log+`
	wsgi_script / {apps}/app.wsgi {
		python {python}
		threads 1
	}
}`)
	release := filepath.Join(caddyDir(t), "release")
	busy := inBackground(c.URL("/wait-for-file?path=" + release))
	c.waitLog("waiting for " + release)

	const clients = 10
	for i := range clients {
		conn, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(c.HTTPPort))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(conn, "GET /pid HTTP/1.1\r\nHost: localhost\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		conn.(*net.TCPConn).CloseWrite()
		conn.SetReadDeadline(time.Now().Add(20 * time.Second))
		got, err := io.ReadAll(conn)
		conn.Close()
		if err != nil && !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("client %d: %v after %q", i, err, got)
		}
		if len(got) > 0 {
			t.Errorf("client %d half-closed while queued and received %q, want nothing", i, got)
		}
	}
	if log != "" {
		waitLogCount(t, c, clients, `"logger":"http.log.access`, `"uri":"/pid"`, `"status":499`)
	}

	if err := os.WriteFile(release, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if o := <-busy; o.status != 200 || o.body != "appeared" {
		t.Errorf("the request that held the thread: %+v", o)
	}
	if res, _ := get(t, plainClient, "GET", c.URL("/pid"), nil); res.StatusCode != 200 {
		t.Errorf("after the half-closed clients: %d", res.StatusCode)
	}
}
