package caddywsgi_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/caddy-wsgi/caddy-wsgi/caddywsgi"
)

// printCaddyfile runs `caddy wsgi-server --print-caddyfile ARGS...`, as the
// tests' own user, in the package's directory, and returns its stdout; the
// error carries its stderr.
func printCaddyfile(t *testing.T, args ...string) (string, error) {
	t.Helper()
	return wsgiServerOutput(t, append([]string{"--print-caddyfile"}, args...)...)
}

// wsgiServerOutput runs `caddy wsgi-server ARGS...` to its end, as the
// tests' own user, in the package's directory, and returns its stdout; the
// error carries its stderr.
func wsgiServerOutput(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := caddyCommand(t.TempDir(), true, append([]string{"wsgi-server"}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := runToEnd(t, cmd); err != nil {
		return stdout.String(), fmt.Errorf("%v: %s", err, logMessages(stderr.String()))
	}
	return stdout.String(), nil
}

// logMessages is the text of Caddy's log lines, which are JSON when they do
// not go to a terminal.
func logMessages(log string) string {
	var messages []string
	for _, line := range strings.Split(strings.TrimSpace(log), "\n") {
		var entry struct{ Msg string }
		if json.Unmarshal([]byte(line), &entry) == nil {
			line = entry.Msg
		}
		messages = append(messages, line)
	}
	return strings.Join(messages, "\n")
}

// runToEnd runs a command that is expected to exit by itself, failing the
// test if it serves instead.
func runToEnd(t *testing.T, cmd *exec.Cmd) error {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("%s did not exit within 30s", cmd)
		return nil
	}
}

// fixtures makes a directory of files and directories for the command's
// paths, including names that need quoting in a Caddyfile.
func fixtures(t *testing.T) string {
	t.Helper()
	dir := caddyDir(t)
	for _, sub := range []string{"public", "media", `my "docs" {1}`, `back\slash`} {
		if err := os.Mkdir(filepath.Join(dir, sub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, content := range map[string]string{
		"site.ini":          "[app:main]\n",
		"public/robots.txt": "from the document root",
		"media/a.txt":       "from the alias",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestWSGIServerCaddyfile: the Caddyfile the command writes for its flags.
func TestWSGIServerCaddyfile(t *testing.T) {
	cwd, _ := os.Getwd()
	tmp := fixtures(t)
	placeholders := strings.NewReplacer("{dir}", cwd, "{tmp}", tmp)
	const globals = "{\n\tadmin off\n\tpersist_config off\n}\n\n"
	// The wsgi_script block of testdata/apps/app.wsgi with every default.
	const script = `	wsgi_script / {dir}/testdata/apps/app.wsgi {
		processes 1
		threads 5
		home {dir}
		request_timeout 60s
		queue_timeout 45s
	}
}
`
	for _, tc := range []struct {
		name string
		args string // split on spaces, after the placeholders are replaced
		want string
	}{
		{"defaults", "testdata/apps/app.wsgi", globals + `http://:8000 {
	bind localhost
	wsgi_script / {dir}/testdata/apps/app.wsgi {
		processes 1
		threads 5
		home {dir}
		request_timeout 60s
		queue_timeout 45s
	}
}
`},
		{"every setting", "testdata/apps/app.wsgi --mount-point /app --callable-object app --document-root {tmp}/public " +
			"--url-alias /static {tmp}/media --url-alias=/ini {tmp}/site.ini --processes 2 --threads 8 " +
			"--python-home {tmp} --python-path {tmp}/public --python-path {tmp}/media --working-directory {tmp} " +
			"--user www-data --group www-data --maximum-requests 100 --request-timeout 1m30s --queue-timeout 10 " +
			"--reload-on-changes --access-log --debug --listen 0.0.0.0:9000", `{
	debug
	admin off
	persist_config off
}

http://:9000 {
	bind 0.0.0.0
	log
	wsgi_alias /static {tmp}/media
	wsgi_alias /ini {tmp}/site.ini
	wsgi_script /app {dir}/testdata/apps/app.wsgi {
		callable_object app
		document_root {tmp}/public
		processes 2
		threads 8
		python_home {tmp}
		python_path {tmp}/public {tmp}/media
		home {tmp}
		user www-data
		group www-data
		maximum_requests 100
		request_timeout 90s
		queue_timeout 10s
		reload_on_changes on
	}
}
`},
		{"no request timeout, interpreter by name", "testdata/apps/app.wsgi --request-timeout 0 --python python3.11 --queue-timeout 1.5s",
			globals + `http://:8000 {
	bind localhost
	wsgi_script / {dir}/testdata/apps/app.wsgi {
		processes 1
		threads 5
		python python3.11
		home {dir}
		queue_timeout 1.5s
	}
}
`},
		{"domain", "testdata/apps/app.wsgi --domain example.com", globals + `example.com {
	wsgi_script / {dir}/testdata/apps/app.wsgi {
		processes 1
		threads 5
		home {dir}
		request_timeout 60s
		queue_timeout 45s
	}
}
`},
		{"domain on another address", "--domain example.com --listen 192.0.2.1:8443 testdata/apps/app.wsgi", globals + `example.com:8443 {
	bind 192.0.2.1
	wsgi_script / {dir}/testdata/apps/app.wsgi {
		processes 1
		threads 5
		home {dir}
		request_timeout 60s
		queue_timeout 45s
	}
}
`},
		{"every interface", "testdata/apps/app.wsgi -l :9000", globals + `http://:9000 {
	wsgi_script / {dir}/testdata/apps/app.wsgi {
		processes 1
		threads 5
		home {dir}
		request_timeout 60s
		queue_timeout 45s
	}
}
`},
		{"IPv6", "testdata/apps/app.wsgi --listen [::1]:8000", globals + `http://:8000 {
	bind ::1
	wsgi_script / {dir}/testdata/apps/app.wsgi {
		processes 1
		threads 5
		home {dir}
		request_timeout 60s
		queue_timeout 45s
	}
}
`},
		// A module is imported from the directory the command runs in.
		{"module:callable", "hello:app", globals + `http://:8000 {
	bind localhost
	wsgi_script / hello:app {
		processes 1
		threads 5
		home {dir}
		request_timeout 60s
		queue_timeout 45s
	}
}
`},
		{"module", "--application-type module hello --callable-object app", globals + `http://:8000 {
	bind localhost
	wsgi_script / hello {
		application_type module
		callable_object app
		processes 1
		threads 5
		home {dir}
		request_timeout 60s
		queue_timeout 45s
	}
}
`},
		{"paste", "--application-type paste {tmp}/site.ini", globals + `http://:8000 {
	bind localhost
	wsgi_script / {tmp}/site.ini {
		application_type paste
		processes 1
		threads 5
		home {dir}
		request_timeout 60s
		queue_timeout 45s
	}
}
`},
		// mod_wsgi-express's --host and --port set the halves of --listen.
		{"--port", "testdata/apps/app.wsgi --port 9000 --log-to-terminal", globals + `http://:9000 {
	bind localhost
` + script},
		{"--host and --port", "testdata/apps/app.wsgi --host 0.0.0.0 --port 9000", globals + `http://:9000 {
	bind 0.0.0.0
` + script},
		{"--listen and an agreeing --port", "testdata/apps/app.wsgi --listen 127.0.0.1:9000 --port 9000", globals + `http://:9000 {
	bind 127.0.0.1
` + script},
		{"--host in IPv6 brackets", "testdata/apps/app.wsgi --host [::1]", globals + `http://:8000 {
	bind ::1
` + script},
		{"domain, HTTPS --port, --no-trust", "testdata/apps/app.wsgi --domain wsgi.localhost --port 8443 --no-trust", `{
	admin off
	persist_config off
	skip_install_trust
}

wsgi.localhost:8443 {
` + script},
		{"static", "--application-type static --document-root {tmp}/public --url-alias /media {tmp}/media -a", globals + `http://:8000 {
	bind localhost
	log
	wsgi_alias /media {tmp}/media
	root * {tmp}/public
	file_server
}
`},
		{"static from the current directory", "--application-type static", globals + `http://:8000 {
	bind localhost
	root * {dir}
	file_server
}
`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := printCaddyfile(t, strings.Fields(placeholders.Replace(tc.args))...)
			if err != nil {
				t.Fatal(err)
			}
			if want := placeholders.Replace(tc.want); got != want {
				t.Errorf("got:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

// TestWSGIServerCaddyfileQuoting: values the Caddyfile lexer would split or
// read differently are quoted; a value no quoting can express is an error.
func TestWSGIServerCaddyfileQuoting(t *testing.T) {
	tmp := fixtures(t)
	got, err := printCaddyfile(t, "testdata/apps/app.wsgi", "--document-root", filepath.Join(tmp, `my "docs" {1}`),
		"--python-path", filepath.Join(tmp, `back\slash`), "--callable-object", "an app")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"\t\tdocument_root \"" + tmp + `/my \"docs\" {1}"` + "\n",
		"\t\tpython_path `" + tmp + `/back\slash` + "`\n",
		"\t\tcallable_object \"an app\"\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("no line %q in:\n%s", want, got)
		}
	}

	both := filepath.Join(tmp, "a\\b`c")
	if err := os.Mkdir(both, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := printCaddyfile(t, "testdata/apps/app.wsgi", "--document-root", both); err == nil ||
		!strings.Contains(err.Error(), "cannot be written in a Caddyfile") {
		t.Errorf("a value with a backslash and a backquote: %v", err)
	}
}

// TestWSGIServerCaddyfileAdapts: what --print-caddyfile prints is a
// Caddyfile the directives accept, formatted as caddy fmt would, whose
// values are the command's, quoted ones included.
func TestWSGIServerCaddyfileAdapts(t *testing.T) {
	tmp := fixtures(t)
	weird := []string{filepath.Join(tmp, `my "docs" {1}`), filepath.Join(tmp, `back\slash`)}
	for _, args := range [][]string{
		{"testdata/apps/app.wsgi", "--mount-point", "/app", "--callable-object", "app", "--document-root", weird[0],
			"--url-alias", "/static", weird[1], "--url-alias", "/media", filepath.Join(tmp, "media"),
			"--processes", "2", "--threads", "8", "--python-home", tmp, "--python-path", weird[0], "--python-path", weird[1],
			"--working-directory", tmp, "--user", "www-data", "--group", "www-data", "--maximum-requests", "100",
			"--request-timeout", "1m30s", "--queue-timeout", "10", "--reload-on-changes", "--server-status", "--access-log", "--debug",
			"--domain", "example.com"},
		{"--application-type", "module", "hello", "--callable-object", "app"},
		{"--application-type", "static", "--document-root", weird[0], "--url-alias", "/static", weird[1]},
		{"--application-type", "static", "--domain", "wsgi.localhost", "--no-trust"},
	} {
		caddyfile, err := printCaddyfile(t, args...)
		if err != nil {
			t.Fatal(err)
		}
		adapted, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(caddyfile), nil)
		if err != nil {
			t.Fatalf("%v\n%s", err, caddyfile)
		}
		if len(warnings) > 0 {
			t.Errorf("warnings %v for:\n%s", warnings, caddyfile)
		}
		var config any
		if err := json.Unmarshal(adapted, &config); err != nil {
			t.Fatal(err)
		}
		handlers := map[string]map[string]any{}
		collectHandlers(config, handlers)
		if slices.Contains(args, "--no-trust") {
			pki, _ := config.(map[string]any)["apps"].(map[string]any)["pki"].(map[string]any)
			local, _ := pki["certificate_authorities"].(map[string]any)["local"].(map[string]any)
			if local["install_trust"] != false {
				t.Errorf("--no-trust: the local CA is %v in %s", local, adapted)
			}
			continue
		}
		if args[0] == "--application-type" && args[1] == "static" {
			if root := handlers["vars"]["root"]; root != weird[0] {
				t.Errorf("root %q, want %q", root, weird[0])
			}
			continue
		}
		wsgi := handlers["wsgi"]
		if wsgi == nil {
			t.Fatalf("no wsgi handler in %s", adapted)
		}
		if args[0] == "testdata/apps/app.wsgi" {
			if path := fmt.Sprint(wsgi["python_path"]); path != fmt.Sprint(weird) {
				t.Errorf("python_path %s, want %s", path, weird)
			}
		} else if wsgi["app"] != "hello" || wsgi["application_type"] != "module" || wsgi["callable_object"] != "app" {
			t.Errorf("module handler: %v", wsgi)
		}
	}
}

// collectHandlers finds the HTTP handlers in an adapted configuration, by
// name.
func collectHandlers(v any, into map[string]map[string]any) {
	switch v := v.(type) {
	case map[string]any:
		if name, ok := v["handler"].(string); ok {
			into[name] = v
		}
		for _, child := range v {
			collectHandlers(child, into)
		}
	case []any:
		for _, child := range v {
			collectHandlers(child, into)
		}
	}
}

// TestWSGIServerErrors: arguments the command refuses, and why it says so.
func TestWSGIServerErrors(t *testing.T) {
	const app = "testdata/apps/app.wsgi"
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "no application"},
		{[]string{app, app}, "one application, not 2 arguments"},
		{[]string{"testdata/apps/missing.wsgi"}, "WSGI script"},
		{[]string{"--application-type", "fastcgi", app}, `--application-type "fastcgi": want script, module, paste or static`},
		{[]string{"--application-type", "paste", "missing.ini"}, "PasteDeploy configuration"},
		{[]string{app, "--url-alias", "/static"}, "--url-alias takes a URL path and a file or directory"},
		{[]string{app, "--url-alias=/static"}, "--url-alias takes a URL path and a file or directory"},
		{[]string{app, "--url-alias", "static", "testdata"}, "the URL path must start with /"},
		{[]string{app, "--url-alias", "/static", "testdata/missing"}, "--url-alias /static: stat"},
		{[]string{"--application-type", "static", app}, "takes no application"},
		{[]string{"--application-type", "static", "--processes", "2"}, "--processes configures a Python application"},
		{[]string{app, "--document-root", app}, "is not a directory"},
		{[]string{app, "--document-root", "testdata/missing"}, "--document-root: stat"},
		{[]string{app, "--mount-point", "app"}, `--mount-point "app" must start with /`},
		{[]string{app, "--listen", "8000"}, `--listen "8000": want host:port`},
		{[]string{app, "--listen", "localhost:http"}, "the port must be a number"},
		{[]string{app, "--domain", "https://example.com"}, "--domain"},
		{[]string{app, "--threads", "0"}, "must be at least 1"},
		{[]string{app, "--maximum-requests", "-1"}, "--maximum-requests must be 0"},
		{[]string{app, "--request-timeout", "soon"}, `--request-timeout "soon"`},
		{[]string{app, "--queue-timeout", "0"}, "--queue-timeout must be more than 0"},
		{[]string{app, "--processes", "two"}, `invalid argument "two"`},
		{[]string{app, "--no-such-flag"}, "unknown flag: --no-such-flag\n"},
		{[]string{app, "--proceses", "2"}, "unknown flag: --proceses (did you mean --processes?)"},
		{[]string{app, "--thread=4"}, "unknown flag: --thread (did you mean --threads?)"},
		{[]string{app, "--server-name", "example.com"}, "unknown flag: --server-name (mod_wsgi-express's --server-name: use --domain)"},
		{[]string{app, "--https-port", "8443"}, "unknown flag: --https-port (mod_wsgi-express's --https-port: use --port with --domain)"},
		{[]string{app, "--port", "9000", "--listen", "localhost:8000"}, "--port 9000 contradicts --listen localhost:8000: give the address once, as --listen HOST:PORT or as --host HOST --port PORT"},
		{[]string{app, "--host", "0.0.0.0", "-l", "localhost:8000"}, "--host 0.0.0.0 contradicts --listen localhost:8000"},
		{[]string{app, "--port", "http"}, `--port "http": the port must be a number from 1 to 65535`},
		{[]string{app, "--host", "localhost:8000"}, `--host "localhost:8000": want a host name or an IP address, without the port (--port gives it)`},
		{[]string{app, "--no-trust"}, "--no-trust concerns the certificate of --domain"},
	} {
		_, err := printCaddyfile(t, tc.args...)
		if err == nil || !strings.Contains(err.Error()+"\n", tc.want) {
			t.Errorf("%q: got %v, want an error with %q", tc.args, err, tc.want)
		}
	}
}

// TestWSGIServerHelp: the help documents every flag in its text, not only
// in the flag list.
func TestWSGIServerHelp(t *testing.T) {
	help, err := wsgiServerOutput(t, "--help")
	if err != nil {
		t.Fatal(err)
	}
	checkHelpDescribesFlags(t, help, 20)
}

// server is a running `caddy wsgi-server`, with its standard output (the
// banner) apart from Caddy's log.
type server struct {
	*caddy
	Stdout *logLines
}

// checkHelpDescribesFlags checks that a command's help text describes each
// flag in its flag list, of which there are at least atLeast.
func checkHelpDescribesFlags(t *testing.T, help string, atLeast int) {
	t.Helper()
	text, flags, ok := strings.Cut(help, "\nFlags:\n")
	text, _, ok2 := strings.Cut(text, "\nUsage:")
	if !ok || !ok2 {
		t.Fatalf("no usage and flag list in:\n%s", help)
	}
	names := regexp.MustCompile(`--([a-z-]+)`).FindAllStringSubmatch(flags, -1)
	if len(names) < atLeast {
		t.Fatalf("only %d flags listed:\n%s", len(names), flags)
	}
	for _, name := range names {
		if name[1] != "help" && !regexp.MustCompile(`--`+name[1]+`([^a-z-]|$)`).MatchString(text) {
			t.Errorf("--%s is not described in the help text", name[1])
		}
	}
}

// startWSGIServer runs `caddy wsgi-server --listen 127.0.0.1:PORT ARGS...`
// in workDir as the other tests run Caddy (as caddyUser when they run as
// root, unless root), and waits for the banner it prints once it serves.
// "{port}" in ARGS is PORT.
func startWSGIServer(t *testing.T, workDir string, root bool, args ...string) *server {
	t.Helper()
	dir := caddyDir(t)
	port := freePort(t)
	s := &server{
		caddy:  &caddy{t: t, Log: newLogLines(), exited: make(chan struct{}), dataDir: dir, HTTPPort: port},
		Stdout: newLogLines(),
	}
	command := []string{"wsgi-server", "--listen", "127.0.0.1:" + strconv.Itoa(port)}
	for _, arg := range args {
		command = append(command, strings.ReplaceAll(arg, "{port}", strconv.Itoa(port)))
	}
	s.cmd = caddyCommand(dir, root, command...)
	s.cmd.Dir = workDir
	s.cmd.Stdout, s.cmd.Stderr = s.Stdout, s.Log
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		s.cmd.Wait()
		s.Stdout.close()
		s.Log.close()
		close(s.exited)
	}()
	t.Cleanup(s.stop)
	if _, ok := s.Stdout.wait("Error Log", 60*time.Second); !ok {
		s.stop()
		t.Fatalf("caddy wsgi-server did not start (%s); its output:\n%s\n%s", s.cmd.ProcessState, s.Stdout, s.Log)
	}
	return s
}

// TestWSGIServerServes: the command serves a WSGI script as given, and
// prints mod_wsgi-express's banner for it.
func TestWSGIServerServes(t *testing.T) {
	s := startWSGIServer(t, "", false, "testdata/apps/app.wsgi", "--python", python(),
		"--processes", "2", "--threads", "3", "--request-timeout", "0", "--access-log")
	interpreter, err := exec.LookPath(python())
	if err != nil {
		t.Fatal(err)
	}
	cwd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf(`Server URL         : http://127.0.0.1:%d/
Server Root        : %s/caddy
Application        : %s/app.wsgi (script)
Working Directory  : %s
User               : %s
Operating Mode     : daemon
Request Capacity   : 6 (2 processes * 3 threads)
Request Timeout    : none
Queue Timeout      : 45 (seconds)
Python Interpreter : %s
Access Log         : stderr
Error Log          : stderr (Caddy's log)`, s.HTTPPort, s.dataDir, appsDir(t), cwd, caddyUserName(t), interpreter)
	if banner := s.Stdout.String(); banner != want {
		t.Errorf("banner:\n%s\nwant:\n%s", banner, want)
	}

	res, body := get(t, plainClient, "GET", s.URL("/env?x=1"), nil)
	var environ map[string]any
	if err := json.Unmarshal([]byte(body), &environ); res.StatusCode != 200 || err != nil {
		t.Fatalf("%d %s", res.StatusCode, body)
	}
	if environ["SCRIPT_NAME"] != "" || environ["PATH_INFO"] != "/env" || environ["QUERY_STRING"] != "x=1" {
		t.Errorf("environ: %v", environ)
	}
	s.waitLog("http.log.access", `"uri":"/env?x=1"`)
}

// caddyUserName is the name of the user the tests run Caddy as.
func caddyUserName(t *testing.T) string {
	t.Helper()
	if caddyUser != nil {
		return testUser
	}
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	return u.Username
}

// TestWSGIServerDjangoProject: `caddy wsgi-server mysite/wsgi.py`, run in
// the directory of a project as django-admin startproject makes it, serves
// the project: as in mod_wsgi-express, the workers' working directory is
// the current one, from which mysite.settings imports.
func TestWSGIServerDjangoProject(t *testing.T) {
	dir := caddyDir(t)
	if out, err := exec.Command(python(), "-m", "django", "startproject", "mysite", dir).CombinedOutput(); err != nil {
		t.Fatalf("django-admin startproject (Django is in the test virtualenv): %v\n%s", err, out)
	}
	s := startWSGIServer(t, dir, false, "mysite/wsgi.py", "--python", python())
	if res, body := get(t, plainClient, "GET", s.URL("/"), nil); res.StatusCode != 200 || !strings.Contains(body, "The install worked successfully!") {
		t.Errorf("%d %.500s", res.StatusCode, body)
	}
	for _, want := range []string{
		"Application        : " + dir + "/mysite/wsgi.py (script)",
		"Working Directory  : " + dir,
		"User               : " + caddyUserName(t),
	} {
		if line, _ := s.Stdout.wait(want, 0); line != want {
			t.Errorf("banner line %q, want %q", line, want)
		}
	}
}

// TestWSGIServerMountPoint: --mount-point is SCRIPT_NAME, and the
// application serves nothing outside it.
func TestWSGIServerMountPoint(t *testing.T) {
	s := startWSGIServer(t, "", false, appsDir(t)+"/app.wsgi", "--python", python(), "--mount-point", "/app")
	if line, _ := s.Stdout.wait("Mount Point", 0); line != "Mount Point        : /app" {
		t.Errorf("banner line %q", line)
	}
	_, body := get(t, plainClient, "GET", s.URL("/app/env"), nil)
	var environ map[string]any
	if err := json.Unmarshal([]byte(body), &environ); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	if environ["SCRIPT_NAME"] != "/app" || environ["PATH_INFO"] != "/env" {
		t.Errorf("SCRIPT_NAME %v, PATH_INFO %v", environ["SCRIPT_NAME"], environ["PATH_INFO"])
	}
	if _, body := get(t, plainClient, "GET", s.URL("/application"), nil); body != "" {
		t.Errorf("/application reached the application: %s", body)
	}
}

// TestWSGIServerURLAlias: --url-alias URL PATH serves a directory and a
// file beside the application.
func TestWSGIServerURLAlias(t *testing.T) {
	tmp := fixtures(t)
	s := startWSGIServer(t, "", false, "testdata/apps/app.wsgi", "--python", python(),
		"--url-alias", "/media", filepath.Join(tmp, "media"), "--url-alias", "/robots.txt", filepath.Join(tmp, "public/robots.txt"))
	for path, want := range map[string]string{"/media/a.txt": "from the alias", "/robots.txt": "from the document root"} {
		if res, body := get(t, plainClient, "GET", s.URL(path), nil); res.StatusCode != 200 || body != want {
			t.Errorf("%s: %d %q, want %q", path, res.StatusCode, body, want)
		}
	}
	if _, body := get(t, plainClient, "GET", s.URL("/pid"), nil); body == "" {
		t.Error("the application does not answer beside the aliases")
	}
}

// TestWSGIServerDocumentRoot: with --document-root, a file that exists is
// served in place of the application.
func TestWSGIServerDocumentRoot(t *testing.T) {
	tmp := fixtures(t)
	s := startWSGIServer(t, "", false, "testdata/apps/app.wsgi", "--python", python(), "--document-root", filepath.Join(tmp, "public"))
	if res, body := get(t, plainClient, "GET", s.URL("/robots.txt"), nil); res.StatusCode != 200 || body != "from the document root" {
		t.Errorf("/robots.txt: %d %q", res.StatusCode, body)
	}
	if _, body := get(t, plainClient, "GET", s.URL("/pid"), nil); body == "" {
		t.Error("the application does not serve what the document root lacks")
	}
}

// TestWSGIServerStatic: --application-type static serves files with no
// Python at all.
func TestWSGIServerStatic(t *testing.T) {
	tmp := fixtures(t)
	s := startWSGIServer(t, "", false, "--application-type", "static", "--document-root", filepath.Join(tmp, "public"))
	if res, body := get(t, plainClient, "GET", s.URL("/robots.txt"), nil); res.StatusCode != 200 || body != "from the document root" {
		t.Errorf("/robots.txt: %d %q", res.StatusCode, body)
	}
	if res, _ := get(t, plainClient, "GET", s.URL("/missing"), nil); res.StatusCode != 404 {
		t.Errorf("a missing file: %d", res.StatusCode)
	}
	if line, _ := s.Stdout.wait("Application", 0); line != "Application        : none (static files)" {
		t.Errorf("banner line %q", line)
	}
}

// TestWSGIServerModule: --application-type module imports the application
// from the directory the command runs in.
func TestWSGIServerModule(t *testing.T) {
	dir := caddyDir(t)
	hello := "def app(environ, start_response):\n" +
		"    start_response('200 OK', [('Content-Type', 'text/plain')])\n" +
		"    return [b'hello from a module']\n"
	if err := os.WriteFile(filepath.Join(dir, "hello.py"), []byte(hello), 0o644); err != nil {
		t.Fatal(err)
	}
	s := startWSGIServer(t, dir, false, "--application-type", "module", "hello", "--callable-object", "app", "--python", python())
	if res, body := get(t, plainClient, "GET", s.URL("/"), nil); res.StatusCode != 200 || body != "hello from a module" {
		t.Errorf("%d %q", res.StatusCode, body)
	}
	if line, _ := s.Stdout.wait("Application", 0); line != "Application        : hello (module)" {
		t.Errorf("banner line %q", line)
	}
}

// TestWSGIServerReloadOnChanges: with --reload-on-changes, editing a module
// the application imported restarts the workers on the new code.
func TestWSGIServerReloadOnChanges(t *testing.T) {
	dir := caddyDir(t)
	files := map[string]string{
		"app.wsgi": "import greeting\n\n\ndef application(environ, start_response):\n" +
			"    start_response('200 OK', [('Content-Type', 'text/plain')])\n" +
			"    return [greeting.TEXT.encode()]\n",
		"greeting.py": "TEXT = 'before'\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Run in the application's directory, from which it imports greeting.
	s := startWSGIServer(t, dir, false, "app.wsgi", "--python", python(), "--reload-on-changes")
	if _, body := get(t, plainClient, "GET", s.URL("/"), nil); body != "before" {
		t.Fatalf("before the change: %q", body)
	}

	module := filepath.Join(dir, "greeting.py")
	if err := os.WriteFile(module, []byte("TEXT = 'after'\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Newer by more than any file system's timestamp granularity.
	later := time.Now().Add(time.Minute)
	if err := os.Chtimes(module, later, later); err != nil {
		t.Fatal(err)
	}
	s.waitLog("reloading the application")
	// The reload is graceful: the old processes serve until the new ones
	// have loaded the new code.
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, body := get(t, plainClient, "GET", s.URL("/"), nil)
		if body == "after" {
			break
		}
		if body != "before" || time.Now().After(deadline) {
			t.Fatalf("after the change: %q", body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestWSGIServerRootNeedsUser: run as root, the command refuses to start
// Python as root unless --user says whom to run it as.
func TestWSGIServerRootNeedsUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	_, err := wsgiServerOutput(t, "testdata/apps/app.wsgi", "--listen", "127.0.0.1:"+strconv.Itoa(freePort(t)))
	if err == nil || !strings.Contains(err.Error(), "pass --user") {
		t.Fatalf("as root without --user: %v", err)
	}

	u, err := user.Lookup(testUser)
	if err != nil {
		t.Fatal(err)
	}
	s := startWSGIServer(t, "", true, "testdata/apps/app.wsgi", "--python", python(), "--user", testUser)
	if me := askWhoami(t, s.caddy); strconv.Itoa(me.UID) != u.Uid {
		t.Errorf("the worker runs as uid %d, want %s", me.UID, u.Uid)
	}
}

// TestWSGIServerServerStatus: --server-status serves the status page at
// /server-status to clients on this machine, and 403 to any other, as
// mod_wsgi-express's --server-status does.
func TestWSGIServerServerStatus(t *testing.T) {
	outside := nonLoopbackIP(t)
	s := startWSGIServer(t, "", false, "testdata/apps/app.wsgi", "--python", python(),
		"--listen", "0.0.0.0:{port}", "--server-status")
	want := fmt.Sprintf("Server Status      : http://localhost:%d/server-status (this machine only)\n", s.HTTPPort)
	if banner := s.Stdout.String(); !strings.Contains(banner, want) {
		t.Errorf("banner:\n%s\nwant a line:\n%s", banner, want)
	}
	res, body := get(t, plainClient, "GET", s.URL("/server-status?format=json"), nil)
	if res.StatusCode != 200 || !strings.Contains(body, fmt.Sprintf(`"name":"http://:%d/"`, s.HTTPPort)) {
		t.Errorf("from this machine: %d %s", res.StatusCode, body)
	}
	res, body = get(t, plainClient, "GET", fmt.Sprintf("http://%s/server-status", net.JoinHostPort(outside, strconv.Itoa(s.HTTPPort))), nil)
	if res.StatusCode != 403 {
		t.Errorf("from %s: %d %s, want 403", outside, res.StatusCode, body)
	}
	// Other paths still reach the application from anywhere.
	if res, body := get(t, plainClient, "GET", fmt.Sprintf("http://%s/env", net.JoinHostPort(outside, strconv.Itoa(s.HTTPPort))), nil); res.StatusCode != 200 {
		t.Errorf("the application from %s: %d %s", outside, res.StatusCode, body)
	}
}

// nonLoopbackIP is an address of this machine that is not a loopback one:
// a client connecting to it is not "this machine" by its address.
func nonLoopbackIP(t *testing.T) string {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, addr := range addrs {
		if ipnet, ok := addr.(*net.IPNet); ok && !ipnet.IP.IsLoopback() && ipnet.IP.To4() != nil {
			return ipnet.IP.String()
		}
	}
	t.Skip("this machine has no address but loopback")
	return ""
}
