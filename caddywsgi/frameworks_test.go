package caddywsgi_test

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
)

// frameworkSite mounts a real framework's application at mount, both over
// plain HTTP and over HTTPS (where clients speak HTTP/2): the two handlers
// have the same configuration, so they share one pool of workers. {testdata}
// is caddywsgi/testdata; downloadEnv names the environment variable that
// tells the application where the files it serves are: downloads, a new
// temporary directory.
func frameworkSite(t *testing.T, mount, script, downloadEnv, options string) (site, downloads string) {
	t.Helper()
	testdata, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	downloads = t.TempDir()
	handler := `
		wsgi_script ` + mount + ` ` + script + ` {
			python {python}
			processes 2
			threads 4
			env ` + downloadEnv + ` {downloads}
			` + options + `
		}
		respond "not the app" 404`
	site = `:{http_port} {
	route {` + handler + `
	}
}
https://localhost:{https_port} {
	tls internal
	route {` + handler + `
	}
}`
	return strings.NewReplacer("{testdata}", testdata, "{downloads}", downloads).Replace(site), downloads
}

// jsonOf decodes a JSON response, failing the test unless its status is 200.
func jsonOf(t *testing.T, res *http.Response, body string) map[string]any {
	t.Helper()
	if res.StatusCode != 200 {
		t.Fatalf("%s %s: status %d: %s", res.Request.Method, res.Request.URL, res.StatusCode, body)
	}
	var v map[string]any
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatalf("%s %s: %v: %s", res.Request.Method, res.Request.URL, err, body)
	}
	return v
}

// expect compares the named fields of a decoded JSON object (compared in their
// JSON encoding, so that lists and objects compare too).
func expect(t *testing.T, what string, got map[string]any, want map[string]any) {
	t.Helper()
	for k, w := range want {
		g, _ := json.Marshal(got[k])
		wj, _ := json.Marshal(w)
		if !bytes.Equal(g, wj) {
			t.Errorf("%s: %s = %s, want %s", what, k, g, wj)
		}
	}
}

// testFile is deterministic content with every byte value, CR LF pairs and
// lines that look like multipart boundaries.
func testFile(size int) []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < size; i++ {
		b.WriteString("\r\n--boundary-ish " + strconv.Itoa(i) + "\r\n")
		for j := 0; j < 256; j++ {
			b.WriteByte(byte(i*31 + j))
		}
	}
	return b.Bytes()[:size]
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// postForm sends an urlencoded form.
func postForm(t *testing.T, client *http.Client, u string, form url.Values) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return do(t, client, req)
}

func do(t *testing.T, client *http.Client, req *http.Request) (*http.Response, string) {
	t.Helper()
	res, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", req.Method, req.URL, err)
	}
	return res, string(b)
}

// checkUpload posts a multipart form with a file field "file" and a text
// field, and checks the size and SHA-256 the application computed.
func checkUpload(t *testing.T, client *http.Client, u string, size int) map[string]any {
	t.Helper()
	data := testFile(size)
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	w.WriteField("note", "über")
	fw, _ := w.CreateFormFile("file", "data.bin")
	fw.Write(data)
	w.Close()
	req, _ := http.NewRequest("POST", u, &body)
	req.Header.Set("Content-Type", w.FormDataContentType())
	res, b := do(t, client, req)
	got := jsonOf(t, res, b)
	expect(t, "upload to "+u, got, map[string]any{"size": size, "sha256": sha256Hex(data), "fields": map[string]string{"note": "über"}})
	return got
}

// checkRaw posts a body, chunked if it has no length, and checks what the
// application read of it.
func checkRaw(t *testing.T, client *http.Client, u string, size int, isChunked bool) {
	t.Helper()
	data := testFile(size)
	var r io.Reader = bytes.NewReader(data)
	if isChunked {
		r = chunked{r}
	}
	req, _ := http.NewRequest("POST", u, r)
	req.Header.Set("Content-Type", "application/octet-stream")
	res, b := do(t, client, req)
	got := jsonOf(t, res, b)
	expect(t, "raw body to "+u, got, map[string]any{"size": size, "sha256": sha256Hex(data)})
}

// checkStream reads a streamed response whose generator, after the first
// line, waits for a file to exist: the first line must arrive on its own,
// before the test creates the file.
func checkStream(t *testing.T, client *http.Client, u string, dir string) *http.Response {
	t.Helper()
	release := filepath.Join(dir, "release-"+strconv.Itoa(int(nextID())))
	res, err := client.Get(u + "?name=s&n=4&wait=" + url.QueryEscape(release))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 || res.ContentLength != -1 {
		t.Fatalf("stream: status %d, Content-Length %d", res.StatusCode, res.ContentLength)
	}
	r := bufio.NewReader(res.Body)
	line, err := r.ReadString('\n')
	if err != nil || line != "line 0 for s\n" {
		t.Fatalf("stream: first line %q %v", line, err)
	}
	if err := os.WriteFile(release, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(r)
	if want := "line 1 for s\nline 2 for s\nline 3 for s\n"; err != nil || string(rest) != want {
		t.Fatalf("stream: rest %q %v, want %q", rest, err, want)
	}
	return res
}

var idCounter atomic.Int64

func nextID() int64 { return idCounter.Add(1) }

// download writes a file to the directory the application serves files from
// and returns its content.
func download(t *testing.T, dir, name string, size int) []byte {
	t.Helper()
	data := testFile(size)
	if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
		t.Fatal(err)
	}
	return data
}

func checkFile(t *testing.T, client *http.Client, u string, data []byte) *http.Response {
	t.Helper()
	res, body := get(t, client, "GET", u, nil)
	if res.StatusCode != 200 || body != string(data) {
		t.Fatalf("file %s: status %d, %d bytes, want %d", u, res.StatusCode, len(body), len(data))
	}
	if res.ContentLength != int64(len(data)) {
		t.Errorf("file %s: Content-Length %d, want %d", u, res.ContentLength, len(data))
	}
	return res
}

// noRedirects returns client's settings without following redirects.
func noRedirects(client *http.Client) *http.Client {
	c := *client
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &c
}

func withJar(client *http.Client) *http.Client {
	c := *client
	c.Jar, _ = cookiejar.New(nil)
	return &c
}

// concurrentUploads sends n multipart uploads of different sizes at once
// (more than the pool's threads), so that the framework serves requests on
// every thread of both processes while others are queued.
func concurrentUploads(t *testing.T, client *http.Client, u string, n int) {
	t.Helper()
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		go func(size int) {
			data := testFile(size)
			var body bytes.Buffer
			w := multipart.NewWriter(&body)
			w.WriteField("note", strconv.Itoa(size))
			fw, _ := w.CreateFormFile("file", "data.bin")
			fw.Write(data)
			w.Close()
			req, _ := http.NewRequest("POST", u, &body)
			req.Header.Set("Content-Type", w.FormDataContentType())
			res, err := client.Do(req)
			if err != nil {
				errs <- err
				return
			}
			defer res.Body.Close()
			var got struct {
				Size   int               `json:"size"`
				SHA    string            `json:"sha256"`
				Fields map[string]string `json:"fields"`
			}
			if err := json.NewDecoder(res.Body).Decode(&got); err != nil || res.StatusCode != 200 {
				errs <- fmt.Errorf("upload of %d bytes: status %d, %v", size, res.StatusCode, err)
				return
			}
			if got.Size != size || got.SHA != sha256Hex(data) || got.Fields["note"] != strconv.Itoa(size) {
				errs <- fmt.Errorf("upload of %d bytes: got %+v", size, got)
				return
			}
			errs <- nil
		}(100_000 + 7919*i)
	}
	for i := 0; i < n; i++ {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

func checkH2(t *testing.T, res *http.Response) {
	t.Helper()
	if res.ProtoMajor != 2 {
		t.Errorf("%s: %s, want HTTP/2", res.Request.URL, res.Proto)
	}
}

func TestFlask(t *testing.T) {
	site, downloads := frameworkSite(t, "/flask", "{testdata}/flaskapp/flaskapp.wsgi", "FLASKAPP_DOWNLOAD_DIR", "")
	c := startCaddy(t, site)
	h2 := h2Client()
	// Before Caddy stops: it would wait 5s for a connection that the client
	// dialled but never sent a request on.
	t.Cleanup(func() { plainClient.CloseIdleConnections(); h2.CloseIdleConnections() })
	port := strconv.Itoa(c.HTTPPort)
	streamDir := t.TempDir()
	file := download(t, downloads, "data.bin", 1<<20+5)

	// request.path is the path inside the application, request.script_root
	// the mount point.
	req, _ := http.NewRequest("GET", c.URL("/flask/info/caf%C3%A9%20x?a=1&a=2&b=%C3%BC"), nil)
	req.Header.Set("X-Custom", "custom value")
	res, body := do(t, plainClient, req)
	info := jsonOf(t, res, body)
	expect(t, "info", info, map[string]any{
		"path":        "/info/café x",
		"script_root": "/flask",
		"rest":        "café x",
		"url":         "http://127.0.0.1:" + port + "/flask/info/café%20x?a=1&a=2&b=ü", // Werkzeug 3 gives an IRI
		"scheme":      "http",
		"is_secure":   false,
		"https":       nil,
		"args":        map[string][]string{"a": {"1", "2"}, "b": {"ü"}},
	})
	if h, _ := info["headers"].(map[string]any); h["X-Custom"] != "custom value" || h["Host"] != "127.0.0.1:"+port {
		t.Errorf("headers: %v", info["headers"])
	}
	for _, path := range []string{"/flask", "/flask/"} {
		res, body = get(t, plainClient, "GET", c.URL(path), nil)
		expect(t, path, jsonOf(t, res, body), map[string]any{"path": "/", "script_root": "/flask"})
	}
	if res, body = get(t, plainClient, "GET", c.URL("/flaskapp"), nil); res.StatusCode != 404 || body != "not the app" {
		t.Errorf("/flaskapp reached the app: %d %q", res.StatusCode, body)
	}

	// request.form
	res, body = postForm(t, plainClient, c.URL("/flask/form"), url.Values{"name": {"Zoë & co"}, "tag": {"a", "b"}})
	expect(t, "form", jsonOf(t, res, body), map[string]any{
		"form": map[string][]string{"name": {"Zoë & co"}, "tag": {"a", "b"}}})

	// request.files, larger than Werkzeug keeps in memory.
	got := checkUpload(t, plainClient, c.URL("/flask/upload"), 1<<20+3)
	if got["filename"] != "data.bin" {
		t.Errorf("upload filename %v", got["filename"])
	}
	// Werkzeug reads a body without a length to its end (wsgi.input_terminated).
	checkRaw(t, plainClient, c.URL("/flask/raw"), 1000, true)
	checkRaw(t, plainClient, c.URL("/flask/raw"), 300_000, true)

	// stream_with_context
	checkStream(t, plainClient, c.URL("/flask/stream"), streamDir)

	// send_file hands Flask's response the server's wsgi.file_wrapper.
	res = checkFile(t, plainClient, c.URL("/flask/files/data.bin"), file)
	if got := res.Header.Get("X-Body-Type"); got != "caddy_wsgi.worker.FileWrapper" {
		t.Errorf("send_file's body is a %s, want the server's wsgi.file_wrapper", got)
	}
	// ... and conditional requests: a range, and an unchanged ETag.
	req, _ = http.NewRequest("GET", c.URL("/flask/files/data.bin"), nil)
	req.Header.Set("Range", "bytes=1000-1999")
	res, body = do(t, plainClient, req)
	if res.StatusCode != 206 || body != string(file[1000:2000]) || res.ContentLength != 1000 {
		t.Errorf("range: %d, %d bytes, Content-Length %d", res.StatusCode, len(body), res.ContentLength)
	}
	req, _ = http.NewRequest("GET", c.URL("/flask/files/data.bin"), nil)
	req.Header.Set("If-None-Match", res.Header.Get("ETag"))
	if res, body = do(t, plainClient, req); res.StatusCode != 304 || body != "" {
		t.Errorf("If-None-Match: %d %q", res.StatusCode, body)
	}

	// Flask's own error pages.
	for _, path := range []string{"/flask/missing", "/flask/no-such-route", "/flask/files/no-such-file"} {
		res, body = get(t, plainClient, "GET", c.URL(path), nil)
		if res.StatusCode != 404 || !strings.Contains(body, "<h1>Not Found</h1>") {
			t.Errorf("%s: %d %q", path, res.StatusCode, body)
		}
	}
	res, body = get(t, plainClient, "GET", c.URL("/flask/error"), nil)
	if res.StatusCode != 500 || !strings.Contains(body, "<h1>Internal Server Error</h1>") || strings.Contains(body, "flask-boom") {
		t.Errorf("error: %d %q", res.StatusCode, body)
	}
	// app.logger writes to wsgi.errors: one log entry, tied to the request,
	// a record of Python's logging with its logger.
	line := c.waitLog("Exception on /error [GET]", "Traceback", "ZeroDivisionError: flask-boom", `"uri":"/flask/error"`)
	if !strings.Contains(line, `"level":"error"`) || !strings.Contains(line, `"python_logger":"flaskapp"`) {
		t.Errorf("the traceback was not logged as an error of the logger flaskapp: %s", line)
	}

	// url_for includes the mount point.
	noFollow := noRedirects(plainClient)
	res, _ = get(t, noFollow, "GET", c.URL("/flask/go"), nil)
	if loc := res.Header.Get("Location"); res.StatusCode != 302 || loc != "/flask/info/target?q=1" {
		t.Errorf("redirect: %d to %q", res.StatusCode, loc)
	}
	res, _ = get(t, noFollow, "GET", c.URL("/flask/go?external"), nil)
	if loc := res.Header.Get("Location"); res.StatusCode != 302 || loc != "http://127.0.0.1:"+port+"/flask/info/target?q=1" {
		t.Errorf("external redirect: %d to %q", res.StatusCode, loc)
	}
	res, body = get(t, plainClient, "GET", c.URL("/flask/go"), nil)
	expect(t, "redirect followed", jsonOf(t, res, body), map[string]any{"path": "/info/target", "args": map[string][]string{"q": {"1"}}})

	// The session cookie, signed with the app's key, works in every worker.
	jar := withJar(plainClient)
	res, body = get(t, jar, "GET", c.URL("/flask/session/set/hello"), nil)
	if res.StatusCode != 200 || !strings.Contains(res.Header.Get("Set-Cookie"), "session=") {
		t.Fatalf("session set: %d %v %q", res.StatusCode, res.Header, body)
	}
	for i := 0; i < 4; i++ {
		res, body = get(t, jar, "GET", c.URL("/flask/session/get"), nil)
		expect(t, "session", jsonOf(t, res, body), map[string]any{"value": "hello"})
	}
	res, body = get(t, plainClient, "GET", c.URL("/flask/session/get"), nil)
	expect(t, "no session", jsonOf(t, res, body), map[string]any{"value": nil})

	// The main routes again over HTTPS and HTTP/2.
	res, body = get(t, h2, "GET", c.HTTPSURL("/flask/info/x?a=1"), nil)
	checkH2(t, res)
	expect(t, "https info", jsonOf(t, res, body), map[string]any{
		"path":        "/info/x",
		"script_root": "/flask",
		"url":         "https://localhost:" + strconv.Itoa(c.HTTPSPort) + "/flask/info/x?a=1",
		"scheme":      "https",
		"is_secure":   true,
		"https":       "on",
		"protocol":    "HTTP/2.0",
		"args":        map[string][]string{"a": {"1"}},
	})
	res, body = postForm(t, h2, c.HTTPSURL("/flask/form"), url.Values{"name": {"h2"}})
	checkH2(t, res)
	expect(t, "https form", jsonOf(t, res, body), map[string]any{"form": map[string][]string{"name": {"h2"}}})
	checkUpload(t, h2, c.HTTPSURL("/flask/upload"), 700_001)
	concurrentUploads(t, plainClient, c.URL("/flask/upload"), 16)
	concurrentUploads(t, h2, c.HTTPSURL("/flask/upload"), 16)
	checkRaw(t, h2, c.HTTPSURL("/flask/raw"), 300_000, true)
	checkH2(t, checkStream(t, h2, c.HTTPSURL("/flask/stream"), streamDir))
	checkH2(t, checkFile(t, h2, c.HTTPSURL("/flask/files/data.bin"), file))
	res, _ = get(t, h2, "GET", c.HTTPSURL("/flask/missing"), nil)
	if res.StatusCode != 404 {
		t.Errorf("https missing: %d", res.StatusCode)
	}
	res, _ = get(t, h2, "GET", c.HTTPSURL("/flask/error"), nil)
	if res.StatusCode != 500 {
		t.Errorf("https error: %d", res.StatusCode)
	}
	res, _ = get(t, noRedirects(h2), "GET", c.HTTPSURL("/flask/go?external"), nil)
	if loc := res.Header.Get("Location"); res.StatusCode != 302 || loc != c.HTTPSURL("/flask/info/target?q=1") {
		t.Errorf("https external redirect: %d to %q", res.StatusCode, loc)
	}
	jar = withJar(h2)
	get(t, jar, "GET", c.HTTPSURL("/flask/session/set/secure"), nil)
	res, body = get(t, jar, "GET", c.HTTPSURL("/flask/session/get"), nil)
	expect(t, "https session", jsonOf(t, res, body), map[string]any{"value": "secure"})
}

// djangoSite mounts the Django project at /django. The project's directory
// goes on sys.path through home, as mod_wsgi's python-path would put
// it; the settings module comes from env.
func djangoSite(t *testing.T) (site, downloads string) {
	return frameworkSite(t, "/django", "{testdata}/djangoproject/djangoproject/wsgi.py", "DJANGOPROJECT_DOWNLOAD_DIR", `
			home {testdata}/djangoproject
			env DJANGO_SETTINGS_MODULE djangoproject.settings`)
}

// TestDjangoMountedTwice: the Django project at two mount points of one
// site renders each one's own prefix: each runs in its own processes, where
// Django keeps the prefix it read from the first request (STATIC_URL).
func TestDjangoMountedTwice(t *testing.T) {
	testdata, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	mount := func(path string) string {
		return `
	wsgi_script ` + path + ` ` + testdata + `/djangoproject/djangoproject/wsgi.py {
		python {python}
		home ` + testdata + `/djangoproject
		env DJANGO_SETTINGS_MODULE djangoproject.settings
	}`
	}
	c := startCaddy(t, ":{http_port} {"+mount("/one")+mount("/two")+"\n}")
	for range 2 {
		for _, prefix := range []string{"/one", "/two"} {
			res, body := get(t, plainClient, "GET", c.URL(prefix+"/info/x"), nil)
			expect(t, prefix, jsonOf(t, res, body), map[string]any{
				"script_name": prefix,
				"reverse":     prefix + "/info/a/b",
				"static":      prefix + "/static/",
			})
		}
	}
}

func TestDjango(t *testing.T) {
	site, downloads := djangoSite(t)
	c := startCaddy(t, site)
	h2 := h2Client()
	// Before Caddy stops: it would wait 5s for a connection that the client
	// dialled but never sent a request on.
	t.Cleanup(func() { plainClient.CloseIdleConnections(); h2.CloseIdleConnections() })
	port := strconv.Itoa(c.HTTPPort)
	streamDir := t.TempDir()
	file := download(t, downloads, "data.bin", 1<<20+5)

	// request.path includes the mount point, request.path_info does not, and
	// reverse() puts it in front of every URL.
	res, body := get(t, plainClient, "GET", c.URL("/django/info/caf%C3%A9%20x?a=1&a=2&b=%C3%BC"), nil)
	expect(t, "info", jsonOf(t, res, body), map[string]any{
		"path":        "/django/info/café x",
		"path_info":   "/info/café x",
		"script_name": "/django",
		"rest":        "café x",
		"reverse":     "/django/info/a/b",
		"absolute":    "http://127.0.0.1:" + port + "/django/",
		"scheme":      "http",
		"is_secure":   false,
		"host":        "127.0.0.1:" + port,
		"get":         map[string][]string{"a": {"1", "2"}, "b": {"ü"}},
	})
	for _, path := range []string{"/django", "/django/"} {
		res, body = get(t, plainClient, "GET", c.URL(path), nil)
		expect(t, path, jsonOf(t, res, body), map[string]any{"path": "/django/", "path_info": "/", "script_name": "/django"})
	}

	// request.POST (CSRF-exempt view)
	res, body = postForm(t, plainClient, c.URL("/django/form"), url.Values{"name": {"Zoë & co"}, "tag": {"a", "b"}})
	expect(t, "form", jsonOf(t, res, body), map[string]any{
		"post": map[string][]string{"name": {"Zoë & co"}, "tag": {"a", "b"}}})
	// request.FILES, larger than Django keeps in memory (2.5 MB).
	got := checkUpload(t, plainClient, c.URL("/django/upload"), 3<<20+3)
	if got["name"] != "data.bin" {
		t.Errorf("upload name %v", got["name"])
	}
	// Django reads CONTENT_LENGTH bytes of the body: a chunked body that fits
	// Caddy's first window has one.
	checkRaw(t, plainClient, c.URL("/django/raw"), 10_000, true)
	checkRaw(t, plainClient, c.URL("/django/raw"), 200_000, false)

	// StreamingHttpResponse
	checkStream(t, plainClient, c.URL("/django/stream"), streamDir)
	// FileResponse, which Django hands to wsgi.file_wrapper.
	checkFile(t, plainClient, c.URL("/django/files/data.bin"), file)

	for _, path := range []string{"/django/missing", "/django/no-such-route", "/django/files/no-such-file"} {
		res, body = get(t, plainClient, "GET", c.URL(path), nil)
		if res.StatusCode != 404 || !strings.Contains(body, "<h1>Not Found</h1>") {
			t.Errorf("%s: %d %q", path, res.StatusCode, body)
		}
	}
	res, body = get(t, plainClient, "GET", c.URL("/django/error"), nil)
	if res.StatusCode != 500 || !strings.Contains(body, "Server Error (500)") || strings.Contains(body, "django-boom") {
		t.Errorf("error: %d %q", res.StatusCode, body)
	}
	c.waitLog("Internal Server Error: /django/error")
	c.waitLog("ZeroDivisionError: django-boom")

	// The main routes again over HTTPS and HTTP/2.
	res, body = get(t, h2, "GET", c.HTTPSURL("/django/info/x?a=1"), nil)
	checkH2(t, res)
	expect(t, "https info", jsonOf(t, res, body), map[string]any{
		"path":        "/django/info/x",
		"path_info":   "/info/x",
		"script_name": "/django",
		"reverse":     "/django/info/a/b",
		"absolute":    c.HTTPSURL("/django/"),
		"scheme":      "https",
		"is_secure":   true,
		"protocol":    "HTTP/2.0",
		"get":         map[string][]string{"a": {"1"}},
	})
	res, body = postForm(t, h2, c.HTTPSURL("/django/form"), url.Values{"name": {"h2"}})
	checkH2(t, res)
	expect(t, "https form", jsonOf(t, res, body), map[string]any{"post": map[string][]string{"name": {"h2"}}})
	checkUpload(t, h2, c.HTTPSURL("/django/upload"), 700_001)
	concurrentUploads(t, plainClient, c.URL("/django/upload"), 16)
	concurrentUploads(t, h2, c.HTTPSURL("/django/upload"), 16)
	checkRaw(t, h2, c.HTTPSURL("/django/raw"), 10_000, true)
	checkH2(t, checkStream(t, h2, c.HTTPSURL("/django/stream"), streamDir))
	checkH2(t, checkFile(t, h2, c.HTTPSURL("/django/files/data.bin"), file))
	res, _ = get(t, h2, "GET", c.HTTPSURL("/django/missing"), nil)
	if res.StatusCode != 404 {
		t.Errorf("https missing: %d", res.StatusCode)
	}
	res, _ = get(t, h2, "GET", c.HTTPSURL("/django/error"), nil)
	if res.StatusCode != 500 {
		t.Errorf("https error: %d", res.StatusCode)
	}
}

// TestDjangoErrorLogTiedToRequest: Django configures its logging while the
// application loads, and a logging.StreamHandler() binds the sys.stderr of
// that moment. The traceback it logs during a request must still be one log
// entry tied to the request, as Flask's (which writes to wsgi.errors) is, not
// one unattributed entry per line that concurrent requests interleave.
func TestDjangoErrorLogTiedToRequest(t *testing.T) {
	site, _ := djangoSite(t)
	c := startCaddy(t, site)
	if res, _ := get(t, plainClient, "GET", c.URL("/django/error"), nil); res.StatusCode != 500 {
		t.Fatalf("status %d", res.StatusCode)
	}
	c.waitLog("Internal Server Error: /django/error", "Traceback", "ZeroDivisionError: django-boom",
		`"method":"GET"`, `"uri":"/django/error"`)
}
