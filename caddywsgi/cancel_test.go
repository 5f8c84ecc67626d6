package caddywsgi_test

// End-to-end tests of a client that goes away from a response that does not
// end by itself (server-sent events, a long poll): the application learns it
// at once, its thread is free for the next request, and Caddy's shutdown
// does not wait for it; request_timeout still bounds one that never gets to
// its next chunk. The application is endless.wsgi, on one thread.

import (
	"bufio"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

const endlessSite = `:{http_port}, https://localhost:{https_port} {
	tls internal
	wsgi_script / {apps}/endless.wsgi {
		python {python}
		processes 1
		threads 1
	}
}`

// promptly is how soon the application must learn that its client is gone:
// at its next event (50 ms) in fact, with room for a loaded machine.
const promptly = 2 * time.Second

// readEvent opens an event stream and reads its first event.
func readEvent(t *testing.T, ctx context.Context, client *http.Client, url string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if line, err := bufio.NewReader(res.Body).ReadString('\n'); line != "data: 1\n" {
		t.Fatalf("first event %q, %v", line, err)
	}
	return res
}

// waitFor waits for a log line with every one of parts.
func waitFor(t *testing.T, c *caddy, parts ...string) {
	t.Helper()
	if _, ok := c.Log.wait(strings.Join(parts, "\x00"), 20*time.Second); !ok {
		t.Fatalf("no log line with %q; the log:\n%s", parts, c.Log)
	}
}

// logsPromptly is waitFor for a line due within promptly of since.
func logsPromptly(t *testing.T, c *caddy, since time.Time, parts ...string) {
	t.Helper()
	waitFor(t, c, parts...)
	if d := time.Since(since); d > promptly {
		t.Errorf("%q logged %v later, not within %v", parts, d.Round(time.Millisecond), promptly)
	}
}

func TestClientGoneFromEndlessResponse(t *testing.T) {
	c := startCaddy(t, endlessSite)
	_, pid := get(t, plainClient, "GET", c.URL("/pid"), nil)
	// A client of its own, so that closing its connection closes nothing
	// else.
	h1 := &http.Client{Transport: &http.Transport{}}
	h2 := h2Client()
	t.Cleanup(h2.CloseIdleConnections)

	// After each, the one thread serves the next request, in the same
	// process: the worker connection stayed in step.
	servesNext := func(t *testing.T) {
		t.Helper()
		if res, body := get(t, plainClient, "GET", c.URL("/pid"), nil); res.StatusCode != 200 || body != pid {
			t.Errorf("the next request: %d from pid %s, want 200 from %s", res.StatusCode, body, pid)
		}
	}

	// A generator: its close() runs, as PEP 3333 asks. HTTP/1.1 closes the
	// connection, HTTP/2 resets the stream.
	for _, tc := range []struct {
		name   string
		client *http.Client
		url    func(string) string
	}{{"generator-h1", h1, c.URL}, {"generator-h2", h2, c.HTTPSURL}} {
		t.Run(tc.name, func(t *testing.T) {
			res := readEvent(t, context.Background(), tc.client, tc.url("/?name="+tc.name))
			if tc.name == "generator-h2" && res.ProtoMajor != 2 {
				t.Fatalf("protocol %s, want HTTP/2", res.Proto)
			}
			res.Body.Close()
			logsPromptly(t, c, time.Now(), tc.name+" closed after")
			servesNext(t)
		})
	}

	t.Run("write", func(t *testing.T) {
		readEvent(t, context.Background(), h1, c.URL("/write?name=write")).Body.Close()
		logsPromptly(t, c, time.Now(), "write: write() raised OSError after",
			"failed to write the response: the client disconnected")
		servesNext(t)
	})

	// A long poll whose client leaves before there is anything to send:
	// Caddy notices with no byte flowing, and the application learns it at
	// its first event, which goes nowhere. The news comes after the
	// worker's first look for a CANCEL is due (0.1 s from the start of the
	// request, PROTOCOL.md §7.8), as a long poll's does: news sooner would
	// go out like any response that quick.
	t.Run("long-poll", func(t *testing.T) {
		signal := filepath.Join(caddyDir(t), "news")
		ctx, leave := context.WithCancel(context.Background())
		done := make(chan error, 1)
		started := time.Now()
		go func() {
			req, _ := http.NewRequestWithContext(ctx, "GET", c.URL("/?name=poll&wait_for="+signal), nil)
			_, err := h1.Do(req)
			done <- err
		}()
		waitFor(t, c, "poll waiting for "+signal)
		leave()
		left := time.Now()
		if err := <-done; err == nil {
			t.Fatal("the long poll answered before there was news")
		}
		logsPromptly(t, c, left, "the client went away; cancelling the request", `"uri":"/?name=poll`)
		time.Sleep(time.Until(started.Add(200 * time.Millisecond)))
		if err := os.WriteFile(signal, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		logsPromptly(t, c, time.Now(), "poll closed after 1 events")
		servesNext(t)
	})
}

// TestShutdownWithClientGone: SIGTERM while an endless response's client
// is gone ends Caddy within its timeouts, not after an eternal grace period.
func TestShutdownWithClientGone(t *testing.T) {
	c := startCaddy(t, endlessSite)
	client := &http.Client{Transport: &http.Transport{}}
	readEvent(t, context.Background(), client, c.URL("/?name=gone")).Body.Close()
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.exited:
	case <-time.After(10 * time.Second):
		t.Fatalf("caddy still running 10s after SIGTERM; its log:\n%s", c.Log)
	}
}

// TestClientGoneLongPollTimesOut: a cancelled long poll that never gets to
// its first event still holds its thread only until request_timeout: then
// the process is recycled, as for any request over it, and the next
// request is served by its replacement.
func TestClientGoneLongPollTimesOut(t *testing.T) {
	c := startCaddy(t, `:{http_port} {
	wsgi_script / {apps}/endless.wsgi {
		python {python}
		processes 1
		threads 1
		request_timeout 1s
		graceful_timeout 1s
	}
}`)
	_, pid := get(t, plainClient, "GET", c.URL("/pid"), nil)
	never := filepath.Join(caddyDir(t), "never")
	ctx, leave := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, "GET", c.URL("/?name=stuck&wait_for="+never), nil)
		_, err := (&http.Client{Transport: &http.Transport{}}).Do(req)
		done <- err
	}()
	waitFor(t, c, "stuck waiting for "+never)
	leave()
	<-done
	waitFor(t, c, "the client went away; cancelling the request", `"uri":"/?name=stuck`)
	waitFor(t, c, "request_timeout passed; recycling the worker process", `"uri":"/?name=stuck`)
	waitFor(t, c, "recycling worker process", `"pid":`+pid, `"reason":"request_timeout"`)
	if res, body := get(t, plainClient, "GET", c.URL("/pid"), nil); res.StatusCode != 200 || body == pid {
		t.Errorf("after the timeout: %d from pid %s (the stuck one was %s)", res.StatusCode, body, pid)
	}
}
