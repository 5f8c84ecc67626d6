package caddywsgi_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestStatusPage: wsgi_status serves a page that a browser (headless
// Chromium) renders with each group, its processes and their state, and the
// request a busy thread serves; ?format=json and Accept: application/json
// give what the admin API gives.
func TestStatusPage(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("renders the page in Debian's chromium package, which scripts/test installs")
	}
	c, admin := adminCaddy(t, "", `:{http_port} {
	wsgi_status /server-status
	wsgi_script / {apps}/app.wsgi python={python} threads=2
}`)
	group := ":" + strconv.Itoa(c.HTTPPort) + "/"

	// A request that a thread serves until /release.
	res, err := plainClient.Get(c.URL("/stream?client=status-test"))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	held := bufio.NewReader(res.Body)
	if line, err := held.ReadString('\n'); line != "first\n" {
		t.Fatalf("the held request: %q, %v", line, err)
	}

	fromAdmin := decodeGroups(t, admin+"/wsgi/groups", nil)
	asked := decodeGroups(t, c.URL("/server-status?format=json"), nil)
	accepted := decodeGroups(t, c.URL("/server-status"), http.Header{"Accept": {"text/html;q=0.9, application/json"}})
	for _, groups := range []map[string]groupJSON{fromAdmin, asked, accepted} {
		g := groups[group]
		if len(groups) != 1 || len(g.Workers) != 1 || g.Workers[0].BusyThreads != 1 || len(g.Serving) != 1 {
			t.Fatalf("groups: %+v", groups)
		}
		if s := g.Serving[0]; s.PID != g.Workers[0].PID || s.Method != "GET" || s.URI != "/stream?client=status-test" || s.Elapsed <= 0 {
			t.Errorf("serving: %+v", s)
		}
	}
	pid := strconv.Itoa(fromAdmin[group].Workers[0].PID)
	if a, b := fromAdmin[group].pids("serving"), asked[group].pids("serving"); !slices.Equal(a, b) {
		t.Errorf("the admin API's processes %v, the status page's %v", a, b)
	}

	page := c.URL("/server-status")
	dom := runChromium(t, chromium, "--dump-dom", page)
	for _, want := range []string{
		`<meta name="viewport" content="width=device-width, initial-scale=1">`,
		"<h2>" + group + "</h2>",
		"1 process × 2 threads",
		`<td class="n">` + pid + `</td><td class="serving">serving</td>`,
		`<td class="n">1/1</td>`, // busy/idle threads
		`<td>GET</td><td class="uri">/stream?client=status-test</td>`,
	} {
		if !strings.Contains(dom, want) {
			t.Errorf("the page has no %q:\n%s", want, dom)
		}
	}
	if strings.Contains(dom, "<script") {
		t.Errorf("the page has a script:\n%s", dom)
	}

	if res, body := get(t, plainClient, "POST", page, nil); res.StatusCode != 405 || res.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST: %s %q", res.Status, body)
	}
	get(t, plainClient, "GET", c.URL("/release"), nil)
	if rest, err := io.ReadAll(held); string(rest) != "second\n" {
		t.Errorf("the held request's end: %q, %v", rest, err)
	}
}

// TestStatusPageClientGone: a request whose client has gone stays on the
// page, marked so, while its application finishes it for no one (here it
// waits for /release, so it cannot see the cancellation), and leaves the
// page when it ends.
func TestStatusPageClientGone(t *testing.T) {
	c, _ := adminCaddy(t, "", `:{http_port} {
	wsgi_status /server-status
	wsgi_script / {apps}/app.wsgi python={python} threads=2
}`)
	group := ":" + strconv.Itoa(c.HTTPPort) + "/"
	res, err := plainClient.Get(c.URL("/stream?client=gone"))
	if err != nil {
		t.Fatal(err)
	}
	if line, err := bufio.NewReader(res.Body).ReadString('\n'); line != "first\n" {
		t.Fatalf("the held request: %q, %v", line, err)
	}
	res.Body.Close() // mid-response: the connection closes

	serving := func() string {
		g := decodeGroups(t, c.URL("/server-status?format=json"), nil)[group]
		return fmt.Sprintf("%+v", g.Serving)
	}
	waitUntil(t, "the request is shown with its client gone", func() bool {
		return strings.Contains(serving(), "URI:/stream?client=gone Elapsed:") && strings.Contains(serving(), "ClientGone:true")
	})
	if _, page := get(t, plainClient, "GET", c.URL("/server-status"), nil); !strings.Contains(page,
		`<td class="uri">/stream?client=gone <span class="note">(client gone)</span></td>`) {
		t.Errorf("the page does not mark the request:\n%s", page)
	}
	get(t, plainClient, "GET", c.URL("/release"), nil)
	waitUntil(t, "the request leaves the page", func() bool { return serving() == "[]" })
}

// runChromium runs headless Chromium with args, and returns what it prints.
func runChromium(t *testing.T, chromium string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	args = append([]string{"--headless", "--disable-gpu", "--user-data-dir=" + t.TempDir()}, args...)
	if os.Geteuid() == 0 {
		// Chromium's sandbox refuses to run as root.
		args = append([]string{"--no-sandbox"}, args...)
	}
	cmd := exec.CommandContext(ctx, chromium, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

// waitUntil polls cond, for a state that nothing announces, for up to 20s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within 20s: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
