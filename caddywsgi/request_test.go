package caddywsgi_test

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// appSite mounts the test application at /app, with a fallback that shows
// what the mount point does not cover.
const appSite = `:{http_port} {
	route {
		wsgi_script /app {apps}/app.wsgi {
			python {python}
			processes 2
			threads 2
		}
		respond "not the app" 404
	}
}`

// twoSingleThreadProcesses serves the test app from two processes of one
// thread each, so that which process a request reaches is observable.
const twoSingleThreadProcesses = `:{http_port} {
	wsgi_script / {apps}/app.wsgi {
		python {python}
		processes 2
		threads 1
	}
}`

func environOf(t *testing.T, res *http.Response, body string) map[string]any {
	t.Helper()
	if res.StatusCode != 200 {
		t.Fatalf("status %d: %s", res.StatusCode, body)
	}
	var env map[string]any
	if err := json.Unmarshal([]byte(body), &env); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	return env
}

func TestEnviron(t *testing.T) {
	c := startCaddy(t, appSite)
	req, _ := http.NewRequest("GET", c.URL("/app/env/caf%C3%A9%20x/?q=1&r=%20"), nil)
	req.Header.Set("X-Forwarded-For", "good")
	req.Header["X_Forwarded_For"] = []string{"evil"}
	req.Header.Add("X-Multi", "a")
	req.Header.Add("X-Multi", "b")
	req.Header.Set("Content-Type", "text/x-test")
	req.Header.Set("Proxy", "http://evil")
	res, err := plainClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	env := environOf(t, res, string(b))

	want := map[string]any{
		"REQUEST_METHOD":        "GET",
		"SCRIPT_NAME":           "/app",
		"PATH_INFO":             "/env/caf\u00c3\u00a9 x/", // UTF-8 bytes as latin-1 text, PEP 3333
		"QUERY_STRING":          "q=1&r=%20",
		"REQUEST_URI":           "/app/env/caf%C3%A9%20x/?q=1&r=%20",
		"SERVER_NAME":           "127.0.0.1",
		"SERVER_PORT":           strconv.Itoa(c.HTTPPort),
		"SERVER_PROTOCOL":       "HTTP/1.1",
		"REMOTE_ADDR":           "127.0.0.1",
		"HTTP_HOST":             "127.0.0.1:" + strconv.Itoa(c.HTTPPort),
		"HTTP_X_FORWARDED_FOR":  "good",
		"HTTP_X_MULTI":          "a, b",
		"CONTENT_TYPE":          "text/x-test",
		"wsgi.url_scheme":       "http",
		"wsgi.multithread":      true,
		"wsgi.multiprocess":     true,
		"wsgi.run_once":         false,
		"wsgi.input_terminated": true,
		"SCRIPT_FILENAME":       appsDir(t) + "/app.wsgi",
	}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("%s = %#v, want %#v", k, env[k], v)
		}
	}
	if v, ok := env["wsgi.version"].([]any); !ok || len(v) != 2 || v[0] != 1.0 || v[1] != 0.0 {
		t.Errorf("wsgi.version = %v, want (1, 0)", env["wsgi.version"])
	}
	for _, absent := range []string{"HTTPS", "CONTENT_LENGTH", "HTTP_PROXY", "HTTP_CONTENT_TYPE"} {
		if _, ok := env[absent]; ok {
			t.Errorf("%s present, want absent", absent)
		}
	}
	if port, err := strconv.Atoi(fmt.Sprint(env["REMOTE_PORT"])); err != nil || port == 0 {
		t.Errorf("REMOTE_PORT = %v", env["REMOTE_PORT"])
	}
	for k := range env {
		// The spoofing attempt: X_Forwarded_For must not produce any key.
		if strings.Contains(k, "X_FORWARDED") && k != "HTTP_X_FORWARDED_FOR" {
			t.Errorf("unexpected key %s", k)
		}
	}
}

func TestMountPoint(t *testing.T) {
	c := startCaddy(t, appSite)
	for _, tc := range []struct{ path, script, info string }{
		{"/app", "/app", ""},
		{"/app/", "/app", "/"},
		{"/app/env", "/app", "/env"},
		{"/app//env/./x/../y", "/app", "/env/y"},
	} {
		res, body := get(t, plainClient, "GET", c.URL(tc.path), nil)
		env := environOf(t, res, body)
		if env["SCRIPT_NAME"] != tc.script || env["PATH_INFO"] != tc.info {
			t.Errorf("%s: SCRIPT_NAME %q PATH_INFO %q, want %q %q", tc.path, env["SCRIPT_NAME"], env["PATH_INFO"], tc.script, tc.info)
		}
	}
	// The mount point matches case-sensitively, as WSGIScriptAlias does.
	for _, path := range []string{"/application", "/ap", "/", "/APP", "/App/", "/APP/env", "/app/../APP/env"} {
		res, body := get(t, plainClient, "GET", c.URL(path), nil)
		if res.StatusCode != 404 || body != "not the app" {
			t.Errorf("%s reached the app: %d %q", path, res.StatusCode, body)
		}
	}
}

// TestMountPointCaseGoesOn: a path that matches the mount point only
// ignoring case reaches the application mounted at / in the Caddyfile, and
// in a JSON config whose handler has no matcher, the routes after it.
func TestMountPointCaseGoesOn(t *testing.T) {
	adminPort := freePort(t)
	c, err := launchCaddy(t, fmt.Sprintf("admin localhost:%d", adminPort), `:{http_port} {
	wsgi_script /app {apps}/app.wsgi python={python}
	wsgi_script / {apps}/app.wsgi python={python}
}`)
	if err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(appsDir(t), "app.wsgi")
	site := ":" + strconv.Itoa(c.HTTPPort)
	for path, want := range map[string][3]string{
		"/app/env": {site + "/app", "/app", "/env"},
		"/APP/env": {site + "/", "", "/APP/env"},
		"/App":     {site + "/", "", "/App"},
	} {
		res, body := get(t, plainClient, "GET", c.URL(path), nil)
		env := environOf(t, res, body)
		if got := [3]string{fmt.Sprint(env["mod_wsgi.process_group"]), fmt.Sprint(env["SCRIPT_NAME"]), fmt.Sprint(env["PATH_INFO"])}; got != want {
			t.Errorf("%s: group, SCRIPT_NAME, PATH_INFO %q, want %q", path, got, want)
		}
	}

	config, _ := json.Marshal(map[string]any{
		"admin": map[string]any{"listen": fmt.Sprintf("localhost:%d", adminPort)},
		"apps": map[string]any{"http": map[string]any{"servers": map[string]any{"srv0": map[string]any{
			"listen": []string{fmt.Sprintf(":%d", c.HTTPPort)},
			"routes": []any{
				map[string]any{"handle": []any{map[string]any{"handler": "wsgi", "mount_point": "/app", "app": script, "python": python()}}},
				map[string]any{"handle": []any{map[string]any{"handler": "static_response", "status_code": 404, "body": "not the app"}}},
			},
		}}}},
	})
	res, err := plainClient.Post(fmt.Sprintf("http://localhost:%d/load", adminPort), "application/json", bytes.NewReader(config))
	if err != nil {
		t.Fatal(err)
	}
	if body, _ := io.ReadAll(res.Body); res.StatusCode != 200 {
		t.Fatalf("loading the JSON config: %d %s", res.StatusCode, body)
	}
	res.Body.Close()
	res, body := get(t, plainClient, "GET", c.URL("/app/env"), nil)
	// Without a site, the group is named after the mount point and the app.
	if env := environOf(t, res, body); env["SCRIPT_NAME"] != "/app" || env["PATH_INFO"] != "/env" || env["mod_wsgi.process_group"] != "/app "+script {
		t.Errorf("JSON config, /app/env: SCRIPT_NAME %v PATH_INFO %v group %v", env["SCRIPT_NAME"], env["PATH_INFO"], env["mod_wsgi.process_group"])
	}
	for _, path := range []string{"/APP/env", "/other"} {
		if res, body := get(t, plainClient, "GET", c.URL(path), nil); res.StatusCode != 404 || body != "not the app" {
			t.Errorf("JSON config, %s: %d %q, want the next route's 404", path, res.StatusCode, body)
		}
	}
}

func TestRootMount(t *testing.T) {
	c := startCaddy(t, `:{http_port} {
	wsgi_script / {apps}/app.wsgi {
		python {python}
		threads 1
	}
}`)
	res, body := get(t, plainClient, "GET", c.URL("/env"), nil)
	env := environOf(t, res, body)
	if env["SCRIPT_NAME"] != "" || env["PATH_INFO"] != "/env" {
		t.Errorf("SCRIPT_NAME %q PATH_INFO %q", env["SCRIPT_NAME"], env["PATH_INFO"])
	}
	if env["wsgi.multithread"] != false || env["wsgi.multiprocess"] != false {
		t.Errorf("multithread %v multiprocess %v, want false false", env["wsgi.multithread"], env["wsgi.multiprocess"])
	}
}

func TestSmallPost(t *testing.T) {
	c := startCaddy(t, appSite)
	res, body := get(t, plainClient, "POST", c.URL("/app/echo"), strings.NewReader("a=1&b=2"))
	if res.StatusCode != 200 || body != "a=1&b=2" {
		t.Fatalf("%d %q", res.StatusCode, body)
	}
	// The app reads nothing of this body: the connection must stay in step.
	for i := 0; i < 10; i++ {
		res, body = get(t, plainClient, "POST", c.URL("/app/pid"), strings.NewReader(strings.Repeat("x", 200_000)))
		if res.StatusCode != 200 {
			t.Fatalf("unread body %d: %d %q", i, res.StatusCode, body)
		}
	}
	res, body = get(t, plainClient, "POST", c.URL("/app/echo"), strings.NewReader("after"))
	if body != "after" {
		t.Fatalf("after unread bodies: %d %q", res.StatusCode, body)
	}
}

// chunked hides the length of a body, so the client sends it chunked.
type chunked struct{ io.Reader }

func TestChunkedUpload(t *testing.T) {
	c := startCaddy(t, appSite)
	for _, size := range []int{0, 10, 64 << 10, 300_000} {
		data := strings.Repeat("z", size)
		res, body := get(t, plainClient, "POST", c.URL("/app/echo-digest"), chunked{strings.NewReader(data)})
		var got struct {
			Size          int     `json:"size"`
			SHA           string  `json:"sha256"`
			ContentLength *string `json:"content_length"`
		}
		if err := json.Unmarshal([]byte(body), &got); err != nil || res.StatusCode != 200 {
			t.Fatalf("size %d: %d %q", size, res.StatusCode, body)
		}
		sum := sha256.Sum256([]byte(data))
		if got.Size != size || got.SHA != hex.EncodeToString(sum[:]) {
			t.Errorf("size %d: got %d bytes, sha %s", size, got.Size, got.SHA)
		}
		// A chunked body that fits Caddy's first window gets its length;
		// a longer one has none and the application reads to the end.
		if size <= 64<<10 && (got.ContentLength == nil || *got.ContentLength != strconv.Itoa(size)) {
			t.Errorf("size %d: CONTENT_LENGTH %v", size, got.ContentLength)
		}
		if size > 64<<10 && got.ContentLength != nil {
			t.Errorf("size %d: CONTENT_LENGTH %v, want none", size, *got.ContentLength)
		}
	}
}

func TestValidatedApp(t *testing.T) {
	c := startCaddy(t, `:{http_port} {
	wsgi_script / {apps}/validated.wsgi {
		python {python}
	}
}`)
	for _, tc := range []struct{ method, path, body, want string }{
		{"GET", "/", "", "validated:"},
		{"POST", "/", "data", "validated:data"},
		{"POST", "/gen", "data", "gen-data"},
	} {
		res, body := get(t, plainClient, tc.method, c.URL(tc.path), strings.NewReader(tc.body))
		if res.StatusCode != 200 || body != tc.want {
			t.Errorf("%s %s: %d %q, want %q", tc.method, tc.path, res.StatusCode, body, tc.want)
		}
	}
	// wsgiref.validate reports violations as exceptions (500s) or warnings.
	// Stopping Caddy first makes the log complete.
	c.stop()
	if strings.Contains(c.Log.String(), "Warning") || strings.Contains(c.Log.String(), "AssertionError") {
		t.Errorf("wsgiref.validate complained:\n%s", c.Log)
	}
}

func TestStreamingResponse(t *testing.T) {
	c := startCaddy(t, `:{http_port} {
	wsgi_script / {apps}/app.wsgi {
		python {python}
		threads 2
	}
}`)
	res, err := plainClient.Get(c.URL("/stream"))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	r := bufio.NewReader(res.Body)
	// The generator waits for /release after its first chunk: if the chunk
	// were held back until the end, this read would never return.
	line, err := r.ReadString('\n')
	if err != nil || line != "first\n" {
		t.Fatalf("first chunk: %q %v", line, err)
	}
	if _, body := get(t, plainClient, "GET", c.URL("/release"), nil); body != "released" {
		t.Fatalf("release: %q", body)
	}
	rest, err := io.ReadAll(r)
	if err != nil || string(rest) != "second\n" {
		t.Fatalf("rest: %q %v", rest, err)
	}
}

func TestApplicationErrors(t *testing.T) {
	c := startCaddy(t, appSite)
	pidBefore := pidOf(t, c)

	res, body := get(t, plainClient, "GET", c.URL("/app/error-before"), nil)
	if res.StatusCode != 500 || strings.Contains(body, "boom") {
		t.Errorf("error before the response: %d %q, want a 500 that does not leak the error", res.StatusCode, body)
	}
	c.waitLog("Exception while handling the request", "ValueError: boom-before", `"method":"GET"`, `"uri":"/app/error-before"`, "app.wsgi")

	for _, path := range []string{"/app/bad-header", "/app/bad-header-name", "/app/bad-status"} {
		res, body = get(t, plainClient, "GET", c.URL(path), nil)
		if res.StatusCode != 500 || res.Header.Get("Injected") != "" || strings.Contains(body, "never sent") {
			t.Errorf("%s: %d %v %q", path, res.StatusCode, res.Header, body)
		}
	}
	c.waitLog("contains CR, LF or NUL", `"uri":"/app/bad-header"`)
	c.waitLog("invalid response header name", `"uri":"/app/bad-header-name"`)
	c.waitLog(`invalid status \"200OK\"`, `"uri":"/app/bad-status"`)

	// After the response started, the client must see a broken response,
	// never a clean short one.
	res, err := plainClient.Get(c.URL("/app/error-after"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err == nil {
		t.Errorf("error after the response started: read %q cleanly, want a broken response", b)
	}
	c.waitLog("response aborted", "RuntimeError: boom-after", `"uri":"/app/error-after"`)

	res, body = get(t, plainClient, "GET", c.URL("/app/exc-info"), nil)
	if res.StatusCode != 503 || body != "error page" {
		t.Errorf("exc_info replacement: %d %q", res.StatusCode, body)
	}

	// The workers survived all of it.
	if pidAfter := pidOf(t, c); !samePool(pidBefore, pidAfter) {
		t.Errorf("worker pids changed from %v to %v", pidBefore, pidAfter)
	}
}

// pidOf returns the worker pids seen over a few requests.
func pidOf(t *testing.T, c *caddy) map[string]bool {
	pids := map[string]bool{}
	for i := 0; i < 6; i++ {
		_, body := get(t, plainClient, "GET", c.URL("/app/pid"), nil)
		pids[body] = true
	}
	return pids
}

func samePool(a, b map[string]bool) bool {
	for pid := range b {
		if !a[pid] {
			return false
		}
	}
	return true
}

func TestResponseShapes(t *testing.T) {
	c := startCaddy(t, appSite)

	res, body := get(t, plainClient, "GET", c.URL("/app/write"), nil)
	if body != "written returned" {
		t.Errorf("write(): %q", body)
	}
	res, body = get(t, plainClient, "GET", c.URL("/app/cookies"), nil)
	if got := res.Header.Values("Set-Cookie"); len(got) != 2 || got[0] != "a=1" || got[1] != "b=2" {
		t.Errorf("repeated headers: %v", got)
	}

	// More than Content-Length: truncated to it, as mod_wsgi does.
	res, body = get(t, plainClient, "GET", c.URL("/app/cl-long"), nil)
	if body != "toolo" {
		t.Errorf("longer than Content-Length: %q", body)
	}
	// Less than Content-Length: the client must not take it for complete.
	resp, err := plainClient.Get(c.URL("/app/cl-short"))
	if err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(resp.Body); err == nil {
		t.Errorf("shorter than Content-Length: read %q cleanly", b)
	}
	resp.Body.Close()
	c.waitLog("less than its Content-Length", `"uri":"/app/cl-short"`)

	// HEAD: headers, no body.
	res, body = get(t, plainClient, "HEAD", c.URL("/app/pid"), nil)
	if res.StatusCode != 200 || body != "" || res.ContentLength <= 0 {
		t.Errorf("HEAD: %d %q length %d", res.StatusCode, body, res.ContentLength)
	}

	// close() is called on the iterable, for GET and for HEAD.
	get(t, plainClient, "GET", c.URL("/app/closing?name=get"), nil)
	get(t, plainClient, "HEAD", c.URL("/app/closing?name=head"), nil)
	c.waitLog("close() called for get")
	c.waitLog("close() called for head")
}

func TestLogging(t *testing.T) {
	c := startCaddy(t, appSite)
	get(t, plainClient, "GET", c.URL("/app/logs"), nil)
	for _, tc := range []struct{ text, level string }{
		{"to-wsgi-errors", "error"}, {"to-stdout", "info"}, {"to-stderr", "error"},
	} {
		line := c.waitLog(tc.text, `"uri":"/app/logs"`, `"method":"GET"`)
		if !strings.Contains(line, `"level":"`+tc.level+`"`) {
			t.Errorf("%s logged as %s", tc.text, line)
		}
	}
}

func TestFileWrapper(t *testing.T) {
	c := startCaddy(t, appSite)
	path := t.TempDir() + "/data.bin"
	data := make([]byte, 3<<20+17)
	for i := range data {
		data[i] = byte(i * 7)
	}
	os.WriteFile(path, data, 0o644)
	res, body := get(t, plainClient, "GET", c.URL("/app/file?offset=100&path="+path), nil)
	if res.StatusCode != 200 || body != string(data[100:]) {
		t.Fatalf("file_wrapper: %d, %d bytes", res.StatusCode, len(body))
	}
	if res.ContentLength != int64(len(data)-100) {
		t.Errorf("Content-Length %d, want %d", res.ContentLength, len(data)-100)
	}
}

func TestIdleThreadDispatch(t *testing.T) {
	c := startCaddy(t, twoSingleThreadProcesses)
	// Two processes of one thread: while one sleeps, requests must go to
	// the idle one at once, not take turns with the busy one.
	sleeping := inBackground(c.URL("/sleep?ms=3000"))
	line := c.waitLog("sleeping for 3000 ms")
	for i := 0; i < 4; i++ {
		res, pid := get(t, plainClient, "GET", c.URL("/pid"), nil)
		if res.StatusCode != 200 || strings.Contains(line, "pid "+pid+" ") {
			t.Fatalf("request %d went to the busy process %s: %d", i, pid, res.StatusCode)
		}
	}
	select {
	case <-sleeping:
		t.Fatal("the requests were only served after the sleeping one finished")
	default:
	}
}

func TestQueueing(t *testing.T) {
	c := startCaddy(t, `:{http_port} {
	wsgi_script / {apps}/app.wsgi {
		python {python}
		processes 1
		threads 1
	}
}`)
	// One thread: a request that arrives while it is busy waits in line and
	// is served when the thread is free.
	sleeping := inBackground(c.URL("/sleep?ms=300"))
	c.waitLog("sleeping for 300 ms")
	res, body := get(t, plainClient, "GET", c.URL("/logs"), nil)
	if o := <-sleeping; o.body != "slept" {
		t.Fatalf("the busy request: %+v", o)
	}
	if res.StatusCode != 200 || body != "logged" {
		t.Fatalf("queued request: %d %q", res.StatusCode, body)
	}
	// The log shows the order in which the one thread ran them.
	c.waitLog("to-stdout", `"uri":"/logs"`)
	log := c.Log.String()
	if done, queued := strings.Index(log, "done sleeping"), strings.Index(log, "to-stdout"); done < 0 || queued < done {
		t.Errorf("the queued request ran before the busy thread was free:\n%s", log)
	}
}

func TestQueueTimeout(t *testing.T) {
	c := startCaddy(t, `:{http_port} {
	wsgi_script / {apps}/app.wsgi {
		python {python}
		threads 1
		queue_timeout 100ms
	}
}`)
	inBackground(c.URL("/sleep?ms=1000"))
	c.waitLog("sleeping for 1000 ms")
	res, _ := get(t, plainClient, "GET", c.URL("/pid"), nil)
	if res.StatusCode != 503 || res.Header.Get("Retry-After") != "1" {
		t.Errorf("request over the queue timeout: %d with Retry-After %q, want 503 with 1", res.StatusCode, res.Header.Get("Retry-After"))
	}
}

func TestRequestBodyTooLarge(t *testing.T) {
	c := startCaddy(t, `:{http_port} {
	request_body {
		max_size 100KB
	}
	wsgi_script / {apps}/app.wsgi {
		python {python}
	}
}`)
	// Over the limit within the first window, and past it while streaming.
	for _, size := range []int{50_000, 300_000} {
		for _, body := range []io.Reader{strings.NewReader(strings.Repeat("x", size)), chunked{strings.NewReader(strings.Repeat("x", size))}} {
			res, _ := get(t, plainClient, "POST", c.URL("/echo-digest"), body)
			want := 200
			if size > 100_000 {
				want = 413
			}
			if res.StatusCode != want {
				t.Errorf("%d-byte body (%T): %d, want %d", size, body, res.StatusCode, want)
			}
		}
	}
}

// TestAuthorization: the Authorization header reaches the application only
// with pass_authorization, as under mod_wsgi's WSGIPassAuthorization, and a
// user Caddy authenticated is REMOTE_USER.
func TestAuthorization(t *testing.T) {
	c := startCaddy(t, `:{http_port} {
	handle /passed/* {
		wsgi_script /passed {apps}/app.wsgi python={python} pass_authorization=on
	}
	handle /checked/* {
		# "open sesame", hashed with bcrypt at the lowest cost to keep the test fast.
		basic_auth {
			alice $2a$04$iN3VJ/qd.NRDrzf.U0r4zutB8wkZbnnGzPi6oUQG5T1MJCZCwcAgu
		}
		wsgi_script /checked {apps}/app.wsgi python={python}
	}
	wsgi_script / {apps}/app.wsgi python={python}
}`)
	environ := func(path string, auth func(*http.Request)) map[string]any {
		t.Helper()
		req, _ := http.NewRequest("GET", c.URL(path), nil)
		auth(req)
		res, err := plainClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		return environOf(t, res, string(body))
	}
	bearer := func(r *http.Request) { r.Header.Set("Authorization", "Bearer token-1") }
	if env := environ("/env", bearer); env["HTTP_AUTHORIZATION"] != nil || env["REMOTE_USER"] != nil {
		t.Errorf("by default: HTTP_AUTHORIZATION %v, REMOTE_USER %v; want neither", env["HTTP_AUTHORIZATION"], env["REMOTE_USER"])
	}
	if env := environ("/passed/env", bearer); env["HTTP_AUTHORIZATION"] != "Bearer token-1" {
		t.Errorf("with pass_authorization: HTTP_AUTHORIZATION %v", env["HTTP_AUTHORIZATION"])
	}
	env := environ("/checked/env", func(r *http.Request) { r.SetBasicAuth("alice", "open sesame") })
	if env["REMOTE_USER"] != "alice" || env["HTTP_AUTHORIZATION"] != nil {
		t.Errorf("behind basic_auth: REMOTE_USER %v, HTTP_AUTHORIZATION %v; want alice and none", env["REMOTE_USER"], env["HTTP_AUTHORIZATION"])
	}
}

// TestTrustedProxies: behind a proxy Caddy trusts (its trusted_proxies
// server option), REMOTE_ADDR is the client's address from X-Forwarded-For,
// what mod_wsgi's WSGITrustedProxies does; from anyone else, the header is
// not believed.
func TestTrustedProxies(t *testing.T) {
	site := `:{http_port} {
	wsgi_script / {apps}/app.wsgi python={python}
}`
	for trusted, want := range map[string]string{"127.0.0.1/32": "203.0.113.7", "192.0.2.0/24": "127.0.0.1"} {
		c, err := launchCaddy(t, "admin off\n\tservers {\n\t\ttrusted_proxies static "+trusted+"\n\t}", site)
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest("GET", c.URL("/env"), nil)
		req.Header.Set("X-Forwarded-For", "203.0.113.7")
		res, err := plainClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if env := environOf(t, res, string(body)); env["REMOTE_ADDR"] != want {
			t.Errorf("trusting %s: REMOTE_ADDR %v, want %s", trusted, env["REMOTE_ADDR"], want)
		}
	}
}
