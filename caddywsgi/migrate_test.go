package caddywsgi_test

import (
	"bytes"
	"cmp"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"flag"
	"io"
	"io/fs"
	"maps"
	"math/big"
	"mime"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// After changing wsgi-migrate, rewrite the expected Caddyfiles and problem
// lists with
//
//	go test ./caddywsgi -run TestMigrate -update-migrate
var updateMigrate = flag.Bool("update-migrate", false, "rewrite testdata/migrate/*/Caddyfile.golden and migrate.stderr from wsgi-migrate's output")

// migrateRequest is a request made to Apache and to Caddy, and the status
// Apache answers it with.
type migrateRequest struct {
	method, host, path string
	body               string
	user, password     string
	header             [2]string
	noClientCert       bool // with TLS: make the request without the client certificate
	status             int  // Apache's answer; 0: the request fails (no TLS session)
}

// migrateDifference is a request whose answer is expected to differ, and
// why: Caddy answers it with status.
type migrateDifference struct {
	request int // index in the case's requests
	status  int
	why     string
}

// migrateCase is an Apache configuration in testdata/migrate/NAME, with the
// requests made to it.
type migrateCase struct {
	name string
	args []string // wsgi-migrate's flags besides --server-root
	tls  bool     // HTTPS with client certificates
	// translateOnly: the Caddyfile is only adapted, not run, nor the
	// configuration under Apache (public names, other users' paths).
	translateOnly bool
	// whileUp, if set, checks the running server (Apache or Caddy).
	whileUp func(t *testing.T, server string)
	// differentLines are the starts of the echo application's lines that
	// are expected to differ, and why: they are left out of the comparison.
	differentLines map[string]string
	requests       []migrateRequest
	differences    []migrateDifference
}

// embeddedMode is what differs for an application that runs in no daemon
// group (mod_wsgi's embedded mode).
var embeddedMode = map[string]string{
	"process_group=": "mod_wsgi.process_group is empty in embedded mode; caddy-wsgi runs the application in a group of its own, and names it",
}

var migrateCases = []migrateCase{{
	name:           "suburl",
	differentLines: embeddedMode,
	requests: []migrateRequest{
		{path: "/myapp", status: 200},
		{path: "/myapp/some/path?x=1&y=%20", status: 200},
		{path: "/myappx", status: 404},
		{path: "/other", status: 404},
		{path: "/", status: 200},
		{path: "/site.css", status: 200},
		{method: "POST", path: "/myapp/form", body: "a=1&b=2", status: 200},
	},
}, {
	name:           "root",
	differentLines: embeddedMode,
	requests: []migrateRequest{
		{path: "/", status: 200},
		{path: "/some/page?q=1", status: 200},
		{path: "/robots.txt", status: 200},
		{path: "/favicon.ico", status: 200},
		{path: "/media/site.css", status: 200},
		{path: "/media/missing.css", status: 404},
		{path: "/mediax", status: 200},
		{path: "/docs/", status: 200},
		{path: "/docs/page.txt", status: 200},
		{path: "/docs", status: 301},
	},
	differences: []migrateDifference{
		{9, 308, "wsgi_alias redirects a directory to its trailing slash with 308, mod_dir with 301"},
	},
}, {
	name: "daemon",
	requests: []migrateRequest{
		{host: "www.example.com", path: "/", status: 200},
		{host: "example.com", path: "/a/b", status: 200},
	},
	whileUp: func(t *testing.T, server string) {
		// display-name=%{GROUP}: both show the group's two processes as
		// (wsgi:example.com), which mod_wsgi cuts to the length of
		// Apache's argv[0] (/usr/sbin/apache2, one character short).
		if n := len(processesNamed("(wsgi:example.com")); n != 2 {
			var names []string
			for _, pid := range processesNamed("(wsgi") {
				cmdline, _ := os.ReadFile("/proc/" + pid + "/cmdline")
				names = append(names, string(cmdline))
			}
			t.Errorf("%s: %d processes show (wsgi:example.com), want 2: %q", server, n, names)
		}
	},
}, {
	name: "django",
	requests: []migrateRequest{
		{host: "mysite.example", path: "/", status: 200},
		{host: "mysite.example", path: "/admin/login/", status: 200},
		{host: "mysite.example", path: "/static/css/base.css", status: 200},
		{host: "mysite.example", path: "/static/css/missing.css", status: 404},
		{host: "mysite.example", path: "/media/upload.txt", status: 200},
		{host: "mysite.example", path: "/robots.txt", status: 200},
	},
}, {
	name: "twousers",
	requests: []migrateRequest{
		{host: "shop.example", path: "/cart", status: 200},
		{host: "blog.example", path: "/post/1", status: 200},
		{host: "www.blog.example", path: "/", status: 200},
	},
}, {
	name: "ssl",
	tls:  true,
	differentLines: map[string]string{
		"HTTPS=": "mod_wsgi 4.9 leaves HTTPS out of the environ (wsgi.url_scheme says https); caddy-wsgi sets HTTPS=on",
	},
	requests: []migrateRequest{
		{host: "localhost", path: "/secure?x=1", status: 200},
		{host: "localhost", path: "/", noClientCert: true},
	},
}, {
	name:           "access",
	differentLines: embeddedMode,
	requests: []migrateRequest{
		{host: "access.example", path: "/", status: 200},
		{host: "access.example", path: "/static/site.css", status: 200},
		{host: "access.example", path: "/static/.htpasswd", status: 403},
		{host: "access.example", path: "/private/notes.txt", status: 403},
		{host: "access.example", path: "/admin", status: 403},
		{host: "access.example", path: "/admin/users", status: 403},
		{host: "access.example", path: "/admin/public/page", status: 200},
		{host: "access.example", path: "/status", status: 200},
		{host: "access.example", path: "/closed/x", status: 403},
		{host: "access.example", path: "/server-status", status: 200},
	},
	differences: []migrateDifference{
		{9, 200, "SetHandler server-status becomes caddy-wsgi's status page (wsgi_status), not mod_status's"},
	},
}, {
	name: "include",
	requests: []migrateRequest{
		{host: "include.example", path: "/app/x", status: 200},
		{host: "include.example", path: "/app", header: [2]string{"Authorization", "Bearer token"}, status: 200},
		{host: "include.example", path: "/old/page?a=b", status: 301},
		{host: "include.example", path: "/docs/intro.html", status: 302},
		{host: "include.example", path: "/nothing", status: 404},
	},
}, {
	name: "untranslatable",
	requests: []migrateRequest{
		{host: "legacy.example", path: "/", status: 200},
		{host: "legacy.example", path: "/private/page", status: 401},
		{host: "legacy.example", path: "/private/page", user: "alice", password: "secret", status: 200},
		{host: "legacy.example", path: "/private/page", user: "alice", password: "wrong", status: 401},
		{host: "legacy.example", method: "POST", path: "/upload", body: strings.Repeat("x", 2000), status: 413},
		{host: "legacy.example", method: "POST", path: "/upload", body: strings.Repeat("x", 1000), status: 200},
		{host: "legacy.example", path: "/admin", status: 403},
		{host: "legacy.example", path: "/old", status: 301},
	},
	differences: []migrateDifference{
		{7, 200, "RewriteRule is not translated: the application gets /old"},
	},
}, {
	name:          "autohttps",
	args:          []string{"--auto-https"},
	translateOnly: true,
}}

// TestMigrate runs caddy wsgi-migrate on each configuration of
// testdata/migrate, checks the Caddyfile and the problems it reports against
// the golden files, and makes the same requests to Apache with mod_wsgi
// running the configuration and to Caddy running the Caddyfile: they must
// give the same answers (status, and the body and media type of a success,
// the Location of a redirect), except for the differences each case lists.
// Error pages are not compared: Apache's have HTML bodies, Caddy's none.
func TestMigrate(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: Apache and Caddy start workers as other users")
	}
	for _, bin := range []string{"/usr/sbin/apache2", "/usr/lib/apache2/modules/mod_wsgi.so"} {
		if _, err := os.Stat(bin); err != nil {
			t.Fatalf("%v: the test needs Debian's apache2 and libapache2-mod-wsgi-py3 (scripts/test installs them)", err)
		}
	}
	tree := migrateTree(t)
	// A virtualenv for python-home, made from the interpreter that Debian's
	// mod_wsgi is built for.
	venv := filepath.Join(tree, "venv")
	if out, err := exec.Command(systemPython, "-m", "venv", "--without-pip", venv).CombinedOutput(); err != nil {
		t.Fatalf("making a virtualenv: %v\n%s", err, out)
	}
	for _, tc := range migrateCases {
		t.Run(tc.name, func(t *testing.T) {
			testMigrateCase(t, tc, tree, venv)
		})
	}
}

func testMigrateCase(t *testing.T, tc migrateCase, tree, venv string) {
	dir, shared := filepath.Join(tree, tc.name), filepath.Join(tree, "shared")
	port := strconv.Itoa(freePort(t))
	placeholders := strings.NewReplacer("{dir}", dir, "{shared}", shared, "{venv}", venv, "{port}", port)
	// The other way, for the golden files.
	unplace := strings.NewReplacer(dir, "{dir}", shared, "{shared}", venv, "{venv}", port, "{port}")
	err := filepath.WalkDir(dir, func(file string, e fs.DirEntry, err error) error {
		if err != nil || !strings.HasSuffix(file, ".conf") {
			return err
		}
		data, err := os.ReadFile(file)
		if err != nil {
			return err
		}
		return os.WriteFile(file, []byte(placeholders.Replace(string(data))), 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	clients := migrateClients{scheme: "http://", client: migrateClient(nil)}
	if tc.tls {
		clients = tlsClients(t, dir)
	}

	// The translation, against the golden files.
	args := append([]string{"wsgi-migrate", "--server-root", dir}, tc.args...)
	cmd := caddyCommand(caddyDir(t), true, append(args, filepath.Join(dir, "apache.conf"))...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatal(err)
	}
	wantExit := 0
	if golden(t, filepath.Join(dir, "migrate.stderr"), unplace.Replace(stderr.String())) != "" {
		wantExit = 2
	}
	if code := cmd.ProcessState.ExitCode(); code != wantExit {
		t.Errorf("wsgi-migrate exited with %d, want %d; stderr:\n%s", code, wantExit, stderr.String())
	}
	golden(t, filepath.Join(dir, "Caddyfile.golden"), unplace.Replace(stdout.String()))
	caddyfile := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(caddyfile, stdout.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	// caddy adapt warns of a Caddyfile that caddy fmt would change.
	adapt := caddyCommand(caddyDir(t), true, "adapt", "--config", caddyfile)
	if out, err := adapt.CombinedOutput(); err != nil || bytes.Contains(out, []byte("WARN")) {
		t.Fatalf("caddy adapt: %v\n%s", err, out)
	}

	if tc.translateOnly {
		return
	}
	whileUp := func(server string) func() {
		return func() {
			if tc.whileUp != nil {
				tc.whileUp(t, server)
			}
		}
	}
	apache := requestAll(t, clients, port, tc.requests, func() func() { return startApache(t, tree, dir, port) }, whileUp("Apache"))
	caddy := requestAll(t, clients, port, tc.requests, func() func() {
		// For the test: no admin endpoint, and Caddy's own HTTP and HTTPS
		// ports (for the redirects of automatic HTTPS) where nothing else
		// listens.
		globals := "admin off\npersist_config off\nhttp_port " + strconv.Itoa(freePort(t)) +
			"\nhttps_port " + strconv.Itoa(freePort(t)) + "\nskip_install_trust\n"
		config := stdout.String()
		if rest, ok := strings.CutPrefix(config, "{\n"); ok {
			config = "{\n" + globals + rest
		} else {
			config = "{\n" + globals + "}\n" + config
		}
		file := filepath.Join(dir, "Caddyfile.test")
		if err := os.WriteFile(file, []byte(config), 0o644); err != nil {
			t.Fatal(err)
		}
		// Root's PATH here may lead to an interpreter under /root, which
		// the workers' users cannot run.
		c, err := runCaddyfile(t, file, "", []string{"PATH=/usr/bin:/bin"}, true)
		if err != nil {
			t.Fatal(err)
		}
		return c.stop
	}, whileUp("Caddy"))

	for i, req := range tc.requests {
		what := req.method + " " + req.host + req.path
		a, c := apache[i], caddy[i]
		if a.status != req.status {
			t.Errorf("%s: Apache answered %d, want %d (%v)\n%s", what, a.status, req.status, a.err, a.body)
			continue
		}
		a.body, c.body = withoutLines(a.body, tc.differentLines), withoutLines(c.body, tc.differentLines)
		if d := differenceFor(tc.differences, i); d != nil {
			if c.status != d.status {
				t.Errorf("%s: Caddy answered %d, want %d: %s", what, c.status, d.status, d.why)
			}
			continue
		}
		switch {
		case c.status != a.status:
			t.Errorf("%s: Caddy answered %d (%v), Apache %d\nCaddy's body:\n%s", what, c.status, c.err, a.status, c.body)
		case c.status/100 == 2 && (c.body != a.body || c.mediaType != a.mediaType):
			t.Errorf("%s: Caddy answered\n%s (%s)\nApache\n%s (%s)", what, c.body, c.mediaType, a.body, a.mediaType)
		case c.status/100 == 3 && c.location != a.location:
			t.Errorf("%s: Caddy redirected to %q, Apache to %q", what, c.location, a.location)
		}
	}
}

// withoutLines is the echo application's body without the lines that start
// with one of starts.
func withoutLines(body string, starts map[string]string) string {
	var kept []string
	for _, line := range strings.SplitAfter(body, "\n") {
		if !slices.ContainsFunc(slices.Collect(maps.Keys(starts)), func(s string) bool { return strings.HasPrefix(line, s) }) {
			kept = append(kept, line)
		}
	}
	return strings.Join(kept, "")
}

// differenceFor is the difference listed for the request, if any.
func differenceFor(ds []migrateDifference, request int) *migrateDifference {
	for i := range ds {
		if ds[i].request == request {
			return &ds[i]
		}
	}
	return nil
}

// golden compares got with the golden file, or rewrites it with
// -update-migrate, and returns got. An empty stderr has no file.
func golden(t *testing.T, file, got string) string {
	t.Helper()
	src := filepath.Join("testdata", "migrate", filepath.Base(filepath.Dir(file)), filepath.Base(file))
	if *updateMigrate {
		if got == "" {
			os.Remove(src)
		} else if err := os.WriteFile(src, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return got
	}
	want, err := os.ReadFile(src)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("%s differs (rewrite it with -update-migrate); got:\n%s\nwant:\n%s", src, got, want)
	}
	return got
}

// migrateAnswer is what a server answered.
type migrateAnswer struct {
	status    int
	body      string
	mediaType string
	location  string
	err       error
}

// migrateClients make the requests: over HTTPS with and without a client
// certificate, or over HTTP.
type migrateClients struct {
	scheme               string
	client, noClientCert *http.Client
}

// requestAll starts a server with start, makes the requests to it on port,
// and stops it with the function start returns.
func requestAll(t *testing.T, clients migrateClients, port string, requests []migrateRequest, start func() func(), whileUp func()) []migrateAnswer {
	stop := start()
	defer stop()
	defer whileUp()
	answers := make([]migrateAnswer, len(requests))
	for i, r := range requests {
		req, err := http.NewRequest(cmp.Or(r.method, "GET"), clients.scheme+cmp.Or(r.host, "127.0.0.1")+":"+port+r.path, strings.NewReader(r.body))
		if err != nil {
			t.Fatal(err)
		}
		if r.user != "" {
			req.SetBasicAuth(r.user, r.password)
		}
		if r.header[0] != "" {
			req.Header.Set(r.header[0], r.header[1])
		}
		if r.body != "" {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		client := clients.client
		if r.noClientCert {
			client = clients.noClientCert
		}
		res, err := client.Do(req)
		if err != nil {
			answers[i] = migrateAnswer{err: err}
			continue
		}
		body, err := io.ReadAll(res.Body)
		res.Body.Close()
		if err != nil {
			t.Fatalf("%s %s: %v", req.Method, req.URL, err)
		}
		mediaType, _, _ := mime.ParseMediaType(res.Header.Get("Content-Type"))
		answers[i] = migrateAnswer{status: res.StatusCode, body: string(body), mediaType: mediaType, location: res.Header.Get("Location")}
	}
	return answers
}

// migrateTree copies testdata/migrate to a directory that the servers'
// unprivileged users can read.
func migrateTree(t *testing.T) string {
	tree := filepath.Join(t.TempDir(), "migrate")
	// t.TempDir's parent is private to root.
	if err := os.Chmod(filepath.Dir(filepath.Dir(tree)), 0o711); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Dir(tree), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.CopyFS(tree, os.DirFS("testdata/migrate")); err != nil {
		t.Fatal(err)
	}
	err := filepath.WalkDir(tree, func(file string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() {
			return os.Chmod(file, 0o755)
		}
		return os.Chmod(file, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return tree
}

// migrateClient makes requests to 127.0.0.1 whatever the URL's host (which
// is the Host header), and does not follow redirects.
func migrateClient(tlsConfig *tls.Config) *http.Client {
	var d net.Dialer
	return &http.Client{
		Timeout: 60 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig: tlsConfig,
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				_, port, _ := net.SplitHostPort(addr)
				return d.DialContext(ctx, network, "127.0.0.1:"+port)
			},
			DisableKeepAlives: true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// tlsClients writes a CA, a certificate for localhost and its key into dir
// (ca.pem, server.pem, server.key), and returns clients that trust the CA,
// one of them with a client certificate the CA issued.
func tlsClients(t *testing.T, dir string) migrateClients {
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Migration Test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caKey, caDER := issue(t, ca, ca, nil)
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	server := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "localhost"}, DNSNames: []string{"localhost"},
		NotBefore: ca.NotBefore, NotAfter: ca.NotAfter,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	serverKey, serverDER := issue(t, server, caCert, caKey)
	client := &x509.Certificate{
		SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: "alice", Organization: []string{"Example"}},
		NotBefore: ca.NotBefore, NotAfter: ca.NotAfter,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	clientKey, clientDER := issue(t, client, caCert, caKey)
	keyDER, err := x509.MarshalECPrivateKey(serverKey)
	if err != nil {
		t.Fatal(err)
	}
	for name, block := range map[string]*pem.Block{
		"ca.pem":     {Type: "CERTIFICATE", Bytes: caDER},
		"server.pem": {Type: "CERTIFICATE", Bytes: serverDER},
		"server.key": {Type: "EC PRIVATE KEY", Bytes: keyDER},
	} {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(block), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	roots := x509.NewCertPool()
	roots.AddCert(caCert)
	cert := tls.Certificate{Certificate: [][]byte{clientDER}, PrivateKey: clientKey}
	return migrateClients{
		scheme:       "https://",
		client:       migrateClient(&tls.Config{RootCAs: roots, Certificates: []tls.Certificate{cert}}),
		noClientCert: migrateClient(&tls.Config{RootCAs: roots}),
	}
}

// issue makes a key for template and a certificate for it that parent
// (with parentKey; nil for a self-signed one) signs.
func issue(t *testing.T, template, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*ecdsa.PrivateKey, []byte) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificate(rand.Reader, template, parent, &key.PublicKey, cmp.Or(parentKey, key))
	if err != nil {
		t.Fatal(err)
	}
	return key, der
}

// apacheModules are the modules the test's Apache loads, as Debian's
// a2enmod would for these sites.
var apacheModules = []string{
	"mpm_event", "authz_core", "authz_host", "authn_core", "authn_file", "authz_user", "auth_basic",
	"alias", "mime", "dir", "rewrite", "headers", "socache_shmcb", "ssl", "wsgi", "status", "filter", "deflate",
}

// startApache runs Apache with mod_wsgi on dir's apache.conf, included by a
// main configuration as Debian's apache2.conf includes a site, and waits
// until it serves. It returns the function that stops it.
func startApache(t *testing.T, tree, dir, port string) func() {
	run := filepath.Join(tree, "httpd-"+filepath.Base(dir))
	for _, d := range []string{run, filepath.Join(run, "htdocs")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	var conf strings.Builder
	for _, m := range apacheModules {
		conf.WriteString("LoadModule " + m + "_module /usr/lib/apache2/modules/mod_" + m + ".so\n")
	}
	// An empty DocumentRoot, as Debian's default site has one of its own.
	conf.WriteString(strings.NewReplacer("{run}", run, "{dir}", dir).Replace(`ServerRoot {dir}
ServerName localhost
PidFile {run}/httpd.pid
DefaultRuntimeDir {run}
Mutex file:{run} default
WSGISocketPrefix {run}/wsgi
ErrorLog /dev/stderr
LogLevel notice
TypesConfig /etc/mime.types
DocumentRoot {run}/htdocs
Include {dir}/apache.conf
`))
	file := filepath.Join(run, "httpd.conf")
	if err := os.WriteFile(file, []byte(conf.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	log := newLogLines()
	cmd := exec.Command("/usr/sbin/apache2", "-f", file, "-DFOREGROUND")
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		log.close()
		close(exited)
	}()
	stop := func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			t.Errorf("apache did not exit within 15s of SIGTERM; killing it")
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("apache's log:\n%s", log)
		}
		waitPortFree(t, port)
	}
	if _, ok := log.wait("resuming normal operations", 30*time.Second); !ok {
		stop()
		t.Fatalf("apache did not start; its log:\n%s", log)
	}
	return stop
}

// TestMigrateUnreadable: a configuration that cannot be read writes no
// Caddyfile, says why and exits with 1.
func TestMigrateUnreadable(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "apache.conf")
	if err := os.WriteFile(conf, []byte("<VirtualHost *:80>\nInclude missing/*.conf\n</VirtualHost>\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "Caddyfile")
	cmd := caddyCommand(caddyDir(t), true, "wsgi-migrate", "--output", out, conf)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.Run()
	if code := cmd.ProcessState.ExitCode(); code != 1 || !strings.Contains(stderr.String(), "apache.conf:2: Include missing/*.conf: no file matches") {
		t.Errorf("exit status %d, stderr:\n%s", code, stderr.String())
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("a Caddyfile was written: %v", err)
	}
}

// processesNamed are the processes whose command line starts with name.
func processesNamed(name string) []string {
	var pids []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && bytes.HasPrefix(cmdline, []byte(name)) {
			pids = append(pids, e.Name())
		}
	}
	return pids
}

// TestMigrateHelp: every flag of wsgi-migrate is described in its help text.
func TestMigrateHelp(t *testing.T) {
	out, err := caddyCommand(caddyDir(t), true, "wsgi-migrate", "--help").Output()
	if err != nil {
		t.Fatal(err)
	}
	checkHelpDescribesFlags(t, string(out), 3)
}

// waitPortFree waits until nothing listens on port any more: Caddy is to
// listen there next, and Apache's children may outlive it for a moment.
// Nothing signals that, so it tries.
func waitPortFree(t *testing.T, port string) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		l, err := net.Listen("tcp", ":"+port)
		if err == nil {
			l.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("port %s is still in use 10s after Apache exited: %v", port, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
