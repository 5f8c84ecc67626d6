package caddywsgi_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
)

// secret is in a file beside the aliased directories and the document
// root, which no request may reach.
const secret = "the secret beside the served directories"

// staticTree writes, in a directory Caddy can read, the files the alias and
// document root tests serve:
//
//	static/style.css, static/sub/index.html, static/sub/page.txt
//	robots.txt
//	htdocs/style.css, htdocs/env (a file named like one of app.wsgi's paths), htdocs/dir/
//	secret.txt
func staticTree(t *testing.T) string {
	t.Helper()
	dir := caddyDir(t)
	for name, content := range map[string]string{
		"static/style.css":      "body { color: teal }\n",
		"static/sub/index.html": "<p>the sub index</p>\n",
		"static/sub/page.txt":   "a page in sub\n",
		"robots.txt":            "User-agent: *\nDisallow: /private/\n",
		"htdocs/style.css":      "h1 { color: olive }\n",
		"htdocs/env":            "a static file called env\n",
		"htdocs/dir/file.txt":   "in a directory of the document root\n",
		"secret.txt":            secret + "\n",
	} {
		file := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// direct shows redirects instead of following them.
var direct = noRedirects(plainClient)

// rawGet sends a GET with the request target exactly as given, which Go's
// HTTP client would clean or re-escape, and returns the response.
func rawGet(t *testing.T, c *caddy, target string) (int, string) {
	t.Helper()
	conn, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(c.HTTPPort))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "GET "+target+" HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("GET %s: %v", target, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", target, err)
	}
	return res.StatusCode, string(body)
}

// fromApp reports whether a response came from app.wsgi, which answers every
// path it does not know with its environ as JSON.
func fromApp(status int, body string) bool {
	return status == 200 && strings.Contains(body, `"SCRIPT_NAME"`)
}

// traversals are requests that would reach secret.txt if a .. segment, plain
// or percent-encoded, escaped the served directory; base is the URL path of
// that directory.
func traversals(base string) []string {
	return []string{
		base + "/../secret.txt",
		base + "/%2e%2e/secret.txt",
		base + "/%2E%2E/secret.txt",
		base + "/..%2fsecret.txt",
		base + "/%2e%2e%2fsecret.txt",
		base + "/sub/../../secret.txt",
		base + "//../secret.txt",
		base + "/..%5csecret.txt",
	}
}

// TestAlias: wsgi_alias serves files and directories with file_server ahead
// of the application mounted at /, as Apache's Alias does beside
// WSGIScriptAlias /, with Apache's trailing-slash rules.
func TestAlias(t *testing.T) {
	dir := staticTree(t)
	// The aliases come after the application in the Caddyfile: the
	// directive order, not the order written, puts them first.
	c := startCaddy(t, strings.ReplaceAll(`:{http_port} {
	wsgi_script / {apps}/app.wsgi python={python}
	wsgi_alias /static/ {dir}/static/
	wsgi_alias /media {dir}/static
	wsgi_alias /robots.txt {dir}/robots.txt
}`, "{dir}", dir))

	for _, tc := range []struct {
		path, want string
	}{
		{"/static/style.css", "body { color: teal }\n"},
		{"/static/sub/", "<p>the sub index</p>\n"},
		{"/static/sub/page.txt", "a page in sub\n"},
		{"/media/style.css", "body { color: teal }\n"},
		{"/media/", ""}, // a directory without index.html: 404 below
		{"/robots.txt", "User-agent: *\nDisallow: /private/\n"},
	} {
		res, body := get(t, direct, "GET", c.URL(tc.path), nil)
		if tc.want == "" {
			if res.StatusCode != 404 || fromApp(res.StatusCode, body) {
				t.Errorf("%s: %d %q, want a 404 from Caddy (a directory without an index)", tc.path, res.StatusCode, body)
			}
			continue
		}
		if res.StatusCode != 200 || body != tc.want {
			t.Errorf("%s: %d %q, want the file's %q", tc.path, res.StatusCode, body, tc.want)
		}
	}

	// A missing file under an alias is Caddy's 404; app.wsgi would have
	// answered 200 with its environ.
	for _, path := range []string{"/static/missing.css", "/media/missing.css", "/robots.txt/more"} {
		if res, body := get(t, direct, "GET", c.URL(path), nil); res.StatusCode != 404 || fromApp(res.StatusCode, body) {
			t.Errorf("%s: %d %q, want a 404 from Caddy", path, res.StatusCode, body)
		}
	}

	// The alias written without a trailing slash claims the directory's own
	// path, and redirects it to the path with the slash (Apache's mod_dir),
	// keeping the query. The one written with the slash leaves /static to
	// the application, as Apache's Alias /static/ does. Paths that only
	// begin with an alias's path are not the alias's.
	res, _ := get(t, direct, "GET", c.URL("/media?x=1"), nil)
	if loc := res.Header.Get("Location"); res.StatusCode != http.StatusPermanentRedirect || loc != "/media/?x=1" {
		t.Errorf("/media: %d Location %q, want 308 to /media/?x=1", res.StatusCode, loc)
	}
	res, _ = get(t, direct, "GET", c.URL("/static/sub"), nil)
	if loc := res.Header.Get("Location"); res.StatusCode != http.StatusPermanentRedirect || loc != "/static/sub/" {
		t.Errorf("/static/sub: %d Location %q, want file_server's redirect to /static/sub/", res.StatusCode, loc)
	}
	// URL paths match case-sensitively, as Apache's Alias does.
	for _, path := range []string{"/static", "/staticx/style.css", "/mediax", "/robots.txt.bak",
		"/STATIC/style.css", "/Media/style.css", "/MEDIA", "/ROBOTS.TXT"} {
		res, body := get(t, direct, "GET", c.URL(path), nil)
		if !fromApp(res.StatusCode, body) {
			t.Errorf("%s: %d %q, want the application's answer", path, res.StatusCode, body)
			continue
		}
		if env := environOf(t, res, body); env["PATH_INFO"] != path[:strings.IndexAny(path+"?", "?")] {
			t.Errorf("%s: the application saw PATH_INFO %v", path, env["PATH_INFO"])
		}
	}

	// Neither .. nor its encodings leave the aliased directory or file.
	for _, base := range []string{"/static", "/media", "/robots.txt"} {
		for _, target := range traversals(base) {
			if status, body := rawGet(t, c, target); strings.Contains(body, secret) {
				t.Errorf("GET %s: %d, served the file beside the alias", target, status)
			}
		}
	}
	// The check can see the secret: an alias of its directory serves it.
	_ = os.WriteFile(filepath.Join(dir, "static", "secret.txt"), []byte(secret), 0o644)
	if _, body := rawGet(t, c, "/static/secret.txt"); body != secret {
		t.Errorf("/static/secret.txt: %q, want the secret, or the traversal checks prove nothing", body)
	}
}

// TestDocumentRoot: with document_root, a request under the mount point for
// an existing regular file in the directory is served from it by
// file_server, and everything else reaches the application with its path
// unchanged.
func TestDocumentRoot(t *testing.T) {
	dir := staticTree(t)
	// route: respond would otherwise come first in the directive order.
	c := startCaddy(t, strings.ReplaceAll(`:{http_port} {
	route {
		wsgi_script /app {apps}/app.wsgi {
			python {python}
			document_root {dir}/htdocs
		}
		respond "outside the mount point" 404
	}
}`, "{dir}", dir))

	for path, want := range map[string]string{
		"/app/style.css": "h1 { color: olive }\n",
		// An existing file wins over the application's own path.
		"/app/env":                "a static file called env\n",
		"/app/dir/file.txt":       "in a directory of the document root\n",
		"/app/./dir/../style.css": "h1 { color: olive }\n",
	} {
		if status, body := rawGet(t, c, path); status != 200 || body != want {
			t.Errorf("%s: %d %q, want the file's %q", path, status, body, want)
		}
	}
	// Everything else goes to the application, which sees the path it
	// would without a document root: directories, missing files, the
	// mount point itself, the file with a trailing slash.
	for path, pathInfo := range map[string]string{
		"/app":               "",
		"/app/":              "/",
		"/app/dir":           "/dir",
		"/app/dir/":          "/dir/",
		"/app/missing.css":   "/missing.css",
		"/app/style.css/":    "/style.css/",
		"/app/style.css/x":   "/style.css/x",
		"/app/env/":          "/env/",
		"/app/secret.txt":    "/secret.txt",
		"/app/htdocs/env":    "/htdocs/env",
		"/app/dir/file.txt/": "/dir/file.txt/",
	} {
		res, body := get(t, direct, "GET", c.URL(path), nil)
		if !fromApp(res.StatusCode, body) {
			t.Errorf("%s: %d %q, want the application's answer", path, res.StatusCode, body)
			continue
		}
		env := environOf(t, res, body)
		if env["SCRIPT_NAME"] != "/app" || env["PATH_INFO"] != pathInfo {
			t.Errorf("%s: SCRIPT_NAME %v PATH_INFO %v, want /app %q", path, env["SCRIPT_NAME"], env["PATH_INFO"], pathInfo)
		}
	}
	// The document root is mapped at the mount point, not at /, which
	// matches case-sensitively, as Apache's WSGIScriptAlias does.
	for _, path := range []string{"/style.css", "/APP/style.css", "/App/env", "/APP"} {
		if res, body := get(t, direct, "GET", c.URL(path), nil); res.StatusCode != 404 || body != "outside the mount point" {
			t.Errorf("%s: %d %q, want the site's 404", path, res.StatusCode, body)
		}
	}
	for _, target := range traversals("/app/dir") {
		if status, body := rawGet(t, c, target); strings.Contains(body, secret) {
			t.Errorf("GET %s: %d, served the file beside the document root", target, status)
		}
	}
	for _, target := range traversals("/app") {
		if status, body := rawGet(t, c, target); strings.Contains(body, secret) {
			t.Errorf("GET %s: %d, served the file beside the document root", target, status)
		}
	}
}

// TestDocumentRootAtRoot: the inline form, with the application at /.
func TestDocumentRootAtRoot(t *testing.T) {
	dir := staticTree(t)
	c := startCaddy(t, strings.ReplaceAll(`:{http_port} {
	wsgi_script / {apps}/app.wsgi python={python} document_root={dir}/htdocs
}`, "{dir}", dir))
	if res, body := get(t, direct, "GET", c.URL("/style.css"), nil); res.StatusCode != 200 || body != "h1 { color: olive }\n" {
		t.Errorf("/style.css: %d %q", res.StatusCode, body)
	}
	res, body := get(t, direct, "GET", c.URL("/dir/"), nil)
	if env := environOf(t, res, body); env["SCRIPT_NAME"] != "" || env["PATH_INFO"] != "/dir/" {
		t.Errorf("/dir/: SCRIPT_NAME %v PATH_INFO %v", env["SCRIPT_NAME"], env["PATH_INFO"])
	}
	for _, target := range traversals("/dir") {
		if status, body := rawGet(t, c, target); strings.Contains(body, secret) {
			t.Errorf("GET %s: %d, served the file beside the document root", target, status)
		}
	}
}

// TestAliasErrors: wsgi_alias's mistakes stop the adapter with the
// directive's name and its form.
func TestAliasErrors(t *testing.T) {
	for input, want := range map[string]string{
		"wsgi_alias":                                               "wsgi_alias takes a URL path and a file or directory, got 0 argument(s): want wsgi_alias <url-path> <file-or-directory>",
		"wsgi_alias /static/":                                      "wsgi_alias takes a URL path and a file or directory, got 1 argument(s): want wsgi_alias <url-path> <file-or-directory>",
		"wsgi_alias /static/ /srv/static/ x":                       "got 3 argument(s): want wsgi_alias <url-path> <file-or-directory>",
		"wsgi_alias static/ /srv/static/":                          `wsgi_alias: the URL path "static/" must start with /: want wsgi_alias <url-path> <file-or-directory>`,
		"wsgi_alias /static/* /srv/static/":                        `wsgi_alias: the URL path "/static/*" must not contain *`,
		`wsgi_alias /static/ ""`:                                   "wsgi_alias: empty file or directory",
		"wsgi_alias /s /srv/s {\n\thide x\n}":                      "wsgi_alias takes no block: want wsgi_alias <url-path> <file-or-directory>",
		"wsgi_script / app.wsgi document_root=/a document_root=/b": "wsgi_script: document_root is set twice",
		"wsgi_script / app.wsgi {\n\tdocument_root\n}":             "wsgi_script: document_root takes one directory",
		"wsgi_script / app.wsgi {\n\tdocument_root /a /b\n}":       "wsgi_script: document_root takes one directory",
		"wsgi_script / app.wsgi document_root=":                    "wsgi_script: document_root takes one directory",
	} {
		_, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(":80 {\n"+input+"\n}\n"), nil)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want one containing %q", input, err, want)
		}
	}
}
