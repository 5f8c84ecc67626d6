package caddywsgi_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"math/big"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig"
)

// example is how TestCaddyfileExamples runs one directory of
// caddyfile_examples/, and what it checks.
type example struct {
	// The example needs Flask or Django from python3 on PATH (its README
	// has the user activate a virtualenv): the test venv's bin goes first on
	// Caddy's PATH.
	packages bool
	// Caddy runs as root: the example starts workers as other users.
	root bool
	// The example serves HTTPS on $PORT. The test adds debug to its global
	// options, as the certificate cache only says at that level when
	// Caddy's certificate is ready to serve.
	https bool
	// setup does what the README has the user do before `caddy run`, and
	// returns environment variables for Caddy. root is the repository.
	setup func(t *testing.T, root string) []string
	check func(t *testing.T, c *caddy, root string)
}

// examples lists every directory in caddyfile_examples/: each must have an
// entry.
var examples = map[string]example{
	"hello":         {packages: true, check: checkHello},
	"django":        {packages: true, setup: setupDjango, check: checkDjango},
	"flask_subpath": {packages: true, check: checkFlaskSubpath},
	"two_users":     {root: true, setup: setupTwoUsers, check: checkTwoUsers},
	"mtls":          {https: true, check: checkMTLS},
	"virtualenv":    {setup: setupVirtualenv, check: checkVirtualenv},
}

// exampleDirs returns the names of the directories in caddyfile_examples/,
// and the repository's root.
func exampleDirs(t *testing.T) ([]string, string) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(filepath.Join(root, "caddyfile_examples"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if e.IsDir() {
			names = append(names, e.Name())
		}
	}
	if len(names) == 0 {
		t.Fatal("no examples")
	}
	return names, root
}

// TestCaddyfileExamples runs each example as its README says, from the
// repository root, with $PORT set, and checks that it serves what it should.
func TestCaddyfileExamples(t *testing.T) {
	names, root := exampleDirs(t)
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			ex, ok := examples[name]
			if !ok {
				t.Fatalf("caddyfile_examples/%s has no entry in examples", name)
			}
			if ex.root && os.Geteuid() != 0 {
				t.Skip("needs root")
			}
			port := freePort(t)
			env := []string{"PORT=" + strconv.Itoa(port)}
			if ex.packages && filepath.IsAbs(python()) {
				env = append(env, "PATH="+filepath.Dir(python())+":"+os.Getenv("PATH"))
			}
			if ex.setup != nil {
				env = append(env, ex.setup(t, root)...)
			}
			file := filepath.Join(root, "caddyfile_examples", name, "Caddyfile")
			if ex.https {
				file = withDebug(t, file)
			}
			c, err := runCaddyfile(t, file, root, env, ex.root)
			if err != nil {
				t.Fatal(err)
			}
			c.HTTPPort, c.HTTPSPort = port, port
			ex.check(t, c, root)
		})
	}
}

// withDebug writes a copy of a Caddyfile with debug added to its global
// options, and returns the copy's path.
func withDebug(t *testing.T, file string) string {
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	// The global options block is the file's first line that is just "{".
	loc := regexp.MustCompile(`(?m)^\{$`).FindIndex(data)
	if loc == nil {
		t.Fatalf("%s has no global options block to add debug to", file)
	}
	config := string(data[:loc[1]]) + "\n\tdebug" + string(data[loc[1]:])
	copy := filepath.Join(caddyDir(t), "Caddyfile")
	if err := os.WriteFile(copy, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	return copy
}

// expectPage requests path and checks the status and that the body contains
// each of want; it returns the response and body.
func expectPage(t *testing.T, client *http.Client, url string, status int, want ...string) (*http.Response, string) {
	t.Helper()
	res, body := get(t, client, "GET", url, nil)
	if res.StatusCode != status {
		t.Errorf("%s: status %d, want %d; body %q", url, res.StatusCode, status, body)
	}
	for _, w := range want {
		if !strings.Contains(body, w) {
			t.Errorf("%s: the body lacks %q: %q", url, w, body)
		}
	}
	return res, body
}

func checkHello(t *testing.T, c *caddy, _ string) {
	expectPage(t, plainClient, c.URL("/"), 200, "Hello from caddy-wsgi!")
}

// setupDjango collects the project's static files into a new static root,
// as the README's `manage.py collectstatic` does, as the user Caddy runs as.
func setupDjango(t *testing.T, root string) []string {
	staticRoot := caddyDir(t)
	cmd := exec.Command(python(), "manage.py", "collectstatic", "--noinput")
	cmd.Dir = filepath.Join(root, "caddyfile_examples", "django")
	cmd.Env = append(os.Environ(), "DJANGO_STATIC_ROOT="+staticRoot, "PYTHONDONTWRITEBYTECODE=1")
	if caddyUser != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: caddyUser}
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("collectstatic: %v\n%s", err, out)
	}
	return []string{"DJANGO_STATIC_ROOT=" + staticRoot}
}

func checkDjango(t *testing.T, c *caddy, root string) {
	staticRoot := ""
	for _, kv := range c.cmd.Env {
		if v, ok := strings.CutPrefix(kv, "DJANGO_STATIC_ROOT="); ok {
			staticRoot = v
		}
	}
	expectPage(t, plainClient, c.URL("/"), 200,
		"Hello from Django under caddy-wsgi", `href="/static/mysite/style.css"`,
		fmt.Sprintf("<code>:%d/</code>; its stylesheet comes from Caddy", c.HTTPPort))
	expectPage(t, plainClient, c.URL("/admin/login/"), 200, "<title>Log in", `href="/static/admin/css/base.css"`)
	res, _ := get(t, direct, "GET", c.URL("/admin/"), nil)
	if loc := res.Header.Get("Location"); res.StatusCode != 302 || loc != "/admin/login/?next=/admin/" {
		t.Errorf("/admin/: %d %q, want a redirect to the login page", res.StatusCode, loc)
	}

	// The static files come from Caddy: Django, with DEBUG off, serves none.
	for url, file := range map[string]string{
		"/static/mysite/style.css":    filepath.Join(root, "caddyfile_examples/django/static/mysite/style.css"),
		"/static/admin/css/base.css":  filepath.Join(staticRoot, "admin/css/base.css"),
		"/static/admin/css/login.css": filepath.Join(staticRoot, "admin/css/login.css"),
	} {
		want, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		res, body := get(t, plainClient, "GET", c.URL(url), nil)
		if res.StatusCode != 200 || body != string(want) || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/css") {
			t.Errorf("%s: %d %s, %d bytes, want the %d bytes of %s", url, res.StatusCode, res.Header.Get("Content-Type"), len(body), len(want), file)
		}
	}
	// A missing static file is Caddy's empty 404, not Django's page.
	if res, body := get(t, plainClient, "GET", c.URL("/static/missing.css"), nil); res.StatusCode != 404 || body != "" {
		t.Errorf("/static/missing.css: %d %q, want Caddy's 404", res.StatusCode, body)
	}
}

func checkFlaskSubpath(t *testing.T, c *caddy, _ string) {
	expectPage(t, plainClient, c.URL("/flask/"), 200, "Flask, mounted at /flask", `href="/flask/hello/caddy"`)
	_, body := expectPage(t, plainClient, c.URL("/flask/hello/caddy"), 200)
	var got map[string]string
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	want := map[string]string{"hello": "caddy", "script_root": "/flask", "path": "/hello/caddy", "url": c.URL("/flask/hello/caddy")}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("/flask/hello/caddy: %s = %q, want %q", k, got[k], v)
		}
	}
	// Everything else belongs to the application at /, including paths
	// that merely begin with /flask.
	expectPage(t, plainClient, c.URL("/"), 200, "The main site", "You asked for /.")
	expectPage(t, plainClient, c.URL("/flaskx"), 200, "The main site", "You asked for /flaskx.")
	expectPage(t, plainClient, c.URL("/hello/caddy"), 200, "The main site")
}

// The users two_users's README has the reader create.
var twoUsers = map[string]string{"shop": "caddywsgi-shop", "blog": "caddywsgi-blog"}

// setupTwoUsers creates the users, and gives Caddy a PATH whose python3 is
// one they can run, as a system service's PATH does: root's own may lead
// to an interpreter under /root (pyenv's).
func setupTwoUsers(t *testing.T, _ string) []string {
	for _, name := range twoUsers {
		if _, err := ensureSystemUser(name); err != nil {
			t.Fatal(err)
		}
	}
	return []string{"PATH=" + filepath.Dir(systemPython) + ":" + os.Getenv("PATH")}
}

func checkTwoUsers(t *testing.T, c *caddy, _ string) {
	for app, name := range twoUsers {
		u, err := user.Lookup(name)
		if err != nil {
			t.Fatal(err)
		}
		_, body := expectPage(t, plainClient, c.URL("/"+app+"/"), 200)
		var got struct {
			Application  string `json:"application"`
			ProcessGroup string `json:"process_group"`
			User         string `json:"user"`
			UID          int    `json:"uid"`
		}
		if err := json.Unmarshal([]byte(body), &got); err != nil {
			t.Fatalf("%v: %s", err, body)
		}
		if got.Application != app || got.ProcessGroup != app || got.User != name || strconv.Itoa(got.UID) != u.Uid {
			t.Errorf("/%s/: %s, want application and process group %s, user %s (uid %s)", app, body, app, name, u.Uid)
		}
	}
}

// checkMTLS makes a client certificate with Caddy's local CA, whose root
// Caddy keeps in its data directory, and checks that the site serves only
// clients that present one, and that the application sees it.
func checkMTLS(t *testing.T, c *caddy, _ string) {
	url := c.HTTPSURL("/")
	ca := filepath.Join(c.dataDir, "caddy", "pki", "authorities", "local")
	rootCert, rootKey := readCA(t, filepath.Join(ca, "root.crt"), filepath.Join(ca, "root.key"))
	roots := x509.NewCertPool()
	roots.AddCert(rootCert)
	client := func(certs ...tls.Certificate) *http.Client {
		return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
			DisableKeepAlives: true,
			TLSClientConfig:   &tls.Config{RootCAs: roots, ServerName: "localhost", Certificates: certs},
		}}
	}

	signed := clientCert(t, "example client", rootCert, rootKey)
	_, body := expectPage(t, client(signed), url, 200)
	var env map[string]string
	if err := json.Unmarshal([]byte(body), &env); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	if env["HTTPS"] != "on" || env["wsgi.url_scheme"] != "https" || env["SSL_CLIENT_VERIFY"] != "SUCCESS" ||
		!strings.Contains(env["SSL_CLIENT_S_DN"], "CN=example client") || env["SSL_CLIENT_I_DN"] != rootCert.Subject.String() {
		t.Errorf("the application saw %s, want the verified client certificate CN=example client issued by %s", body, rootCert.Subject)
	}

	// Without a certificate, or with one from another CA, the handshake
	// fails and no request reaches the application.
	if _, _, err := fetch(client(), "GET", url, nil); err == nil || !strings.Contains(err.Error(), "certificate required") {
		t.Errorf("without a client certificate: %v, want the server's certificate required alert", err)
	}
	otherCert, otherKey := newCA(t)
	if _, _, err := fetch(client(clientCert(t, "stranger", otherCert, otherKey)), "GET", url, nil); err == nil || !strings.Contains(err.Error(), "tls: ") {
		t.Errorf("with a certificate from another CA: %v, want a TLS alert", err)
	}
}

// readCA reads a CA's certificate and private key from PEM files.
func readCA(t *testing.T, certFile, keyFile string) (*x509.Certificate, any) {
	t.Helper()
	block := readPEM(t, certFile)
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	block = readPEM(t, keyFile)
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		if key, err = x509.ParseECPrivateKey(block.Bytes); err != nil {
			t.Fatalf("%s: %v", keyFile, err)
		}
	}
	return cert, key
}

func readPEM(t *testing.T, file string) *pem.Block {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		t.Fatalf("%s: no PEM data", file)
	}
	return block
}

// newCA makes a self-signed CA that Caddy does not trust.
func newCA(t *testing.T) (*x509.Certificate, any) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Another CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return cert, key
}

// clientCert issues a client certificate for name, signed by the CA.
func clientCert(t *testing.T, name string, caCert *x509.Certificate, caKey any) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name, Organization: []string{"caddy-wsgi tests"}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// setupVirtualenv points the example at the test venv, which has Django, in
// place of the one its README has the user create.
func setupVirtualenv(t *testing.T, _ string) []string {
	if !filepath.IsAbs(python()) {
		t.Fatal("CADDY_WSGI_TEST_PYTHON must name the test virtualenv's interpreter (scripts/test sets it)")
	}
	return []string{"VENV=" + filepath.Dir(filepath.Dir(python()))}
}

func checkVirtualenv(t *testing.T, c *caddy, _ string) {
	venv := filepath.Dir(filepath.Dir(python()))
	_, body := expectPage(t, plainClient, c.URL("/"), 200, "Django ")
	if !strings.HasSuffix(body, " from the virtualenv "+venv+"\n") {
		t.Errorf("%q, want Django imported from %s", body, venv)
	}
}

var updateExamples = flag.Bool("update-examples", false, "rewrite caddyfile_examples/*/Caddyfile.json from the Caddyfiles")

// envPlaceholder is a Caddyfile environment placeholder, {$NAME} or
// {$NAME:default}.
var envPlaceholder = regexp.MustCompile(`\{\$([A-Za-z_][A-Za-z0-9_]*)(:[^}]*)?\}`)

// TestCaddyfileExamplesAdapt checks each example's Caddyfile.json against
// what its Caddyfile adapts to, from the repository root, as `caddy adapt
// --config caddyfile_examples/NAME/Caddyfile --pretty` prints it with none
// of the example's environment variables set: every one has a default, so
// the JSON is what the README's command runs. -update-examples rewrites the
// files.
func TestCaddyfileExamplesAdapt(t *testing.T) {
	names, root := exampleDirs(t)
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			rel := filepath.Join("caddyfile_examples", name, "Caddyfile")
			body, err := os.ReadFile(filepath.Join(root, rel))
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range envPlaceholder.FindAllStringSubmatch(string(body), -1) {
				if m[2] == "" {
					t.Errorf("%s: %s has no default, so the adapted JSON would depend on the environment", rel, m[0])
				}
				t.Setenv(m[1], "") // restored after the test
				os.Unsetenv(m[1])
			}
			adapted, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt(body, map[string]any{"filename": rel})
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range warnings {
				t.Errorf("%s: warning: %s", rel, w)
			}
			var pretty bytes.Buffer
			if err := json.Indent(&pretty, adapted, "", "\t"); err != nil {
				t.Fatal(err)
			}
			pretty.WriteByte('\n')
			jsonFile := filepath.Join(root, "caddyfile_examples", name, "Caddyfile.json")
			if *updateExamples {
				if err := os.WriteFile(jsonFile, pretty.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(jsonFile)
			if err != nil {
				t.Fatalf("%v (go test -run TestCaddyfileExamplesAdapt -update-examples writes it)", err)
			}
			if !bytes.Equal(want, pretty.Bytes()) {
				t.Errorf("%s is not what %s adapts to; it adapts to:\n%s", jsonFile, rel, pretty.Bytes())
			}
		})
	}
}
