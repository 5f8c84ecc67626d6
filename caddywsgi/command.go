package caddywsgi

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/caddy-wsgi/caddy-wsgi/pool"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "wsgi-server",
		Usage: "[<script.wsgi | module:callable | config.ini>] [--application-type <type>] [--listen <addr>] [--domain <example.com>] [--processes <n>] [--threads <n>] [--url-alias <url> <path>] [--print-caddyfile]",
		Short: "Serves a Python WSGI application, as mod_wsgi-express start-server does",
		Long: `
Serves a Python WSGI application from a pool of Python worker processes, the
way mod_wsgi-express start-server does with Apache: one command, no
configuration file. Useful for development, demos and simple deployments.

The command writes a Caddyfile with the caddy-wsgi directives (wsgi_script,
wsgi_alias) and runs it. --print-caddyfile prints that Caddyfile instead of
running it: a starting point for a Caddyfile of your own, as
mod_wsgi-express setup-server is for an Apache configuration.

The application is the one argument:
  a WSGI script file      caddy wsgi-server site/app.wsgi
  a module                caddy wsgi-server mysite.wsgi:application
  a PasteDeploy .ini file caddy wsgi-server --application-type paste site.ini

--application-type says how to load it: script (loaded the way mod_wsgi
loads a script file), module (imported; module or module:callable), paste
(the interpreter needs the PasteDeploy package) or static (no Python: serve
--document-root alone, and take no application argument). Default: module
for module:callable, else script. --callable-object names the WSGI callable
(default application). --mount-point is the URL path the application serves,
and everything under it (default /).

--listen is the address to serve on (default localhost:8000; :8000 for every
interface). With --domain example.com, the site is that domain with Caddy's
automatic HTTPS: a certificate for it, and HTTP redirected to HTTPS. The
default address then becomes :443, and --listen, if given, is the HTTPS
address. The domain's DNS records must point at this machine first.

--document-root is a directory of static files in front of the
application: a request under the mount point that names a file in it gets
the file, and every other request goes to the application. --url-alias URL
PATH serves a file or directory at a URL path, before the application
(mod_wsgi-express's two words; --url-alias=URL PATH also works); repeat it
for more aliases.

The Python workers:
  --processes          worker processes (default 1)
  --threads            request threads per process (default 5, as
                       mod_wsgi-express; a Caddyfile's default is 15)
  --python             the interpreter (default python3 from PATH)
  --python-home        a virtualenv whose interpreter and packages are used
  --python-path        a directory added to sys.path (site.addsitedir, so
                       .pth files work); repeatable
  --working-directory  the workers' working directory, searched first on
                       import (default: the script's directory, or the
                       current directory for a module)
  --user, --group      the account the workers run as; Caddy must run as
                       root to switch. Run as root, the command needs
                       --user (--user root to really run Python as root).
  --maximum-requests   recycle a process after this many requests
  --request-timeout    a request running longer gets a 504 and its process
                       is recycled: seconds, or a duration such as 2m; 0 for
                       no limit (default 60, as mod_wsgi-express)
  --queue-timeout      a request waiting longer for a free thread gets a
                       503: seconds or a duration (default 45)
  --reload-on-changes  restart the workers gracefully when a Python module
                       the application imported changes (for development)

Logs go to stderr: --access-log adds Caddy's access log, --debug turns on
Caddy's debug logging.

Once Caddy serves, the command prints a summary, as mod_wsgi-express does:
the server URL, the application, the request capacity (processes * threads),
the timeouts and the interpreter. It runs until interrupted (Ctrl-C).

Examples:
  caddy wsgi-server app.wsgi
  caddy wsgi-server mysite.wsgi:application --python-home .venv --processes 2
  caddy wsgi-server app.wsgi --domain example.com --user www-data
  caddy wsgi-server app.wsgi --url-alias /static ./static --access-log
  caddy wsgi-server --application-type static --document-root ./public
  caddy wsgi-server app.wsgi --processes 4 --print-caddyfile > Caddyfile
`,
		CobraFunc: func(cmd *cobra.Command) {
			fl := cmd.Flags()
			fl.String("application-type", "", "How to load the application: script, module, paste or static")
			fl.String("callable-object", "application", "The name of the WSGI callable")
			fl.String("mount-point", "/", "The URL path the application serves")
			fl.StringP("listen", "l", "localhost:8000", "The address to serve on (with --domain: the HTTPS address, default :443)")
			fl.StringP("domain", "d", "", "Serve this domain name with automatic HTTPS")
			fl.String("document-root", "", "A directory whose files are served in front of the application")
			fl.StringArray("url-alias", nil, "Serve the file or directory PATH at the URL path URL, given as two words: `URL PATH`; repeatable")
			fl.Int("processes", 1, "Worker processes")
			fl.Int("threads", 5, "Request threads per process")
			fl.String("python", "", "The Python interpreter (default python3 from PATH)")
			fl.String("python-home", "", "A virtualenv whose interpreter and packages the workers use")
			fl.StringArray("python-path", nil, "A directory added to sys.path; repeatable")
			fl.String("working-directory", "", "The workers' working directory")
			fl.String("user", "", "The user the workers run as")
			fl.String("group", "", "The workers' group")
			fl.Int("maximum-requests", 0, "Recycle a process after this many requests (0: never)")
			fl.String("request-timeout", "60", "Seconds or duration a request may run; 0 for no limit")
			fl.String("queue-timeout", "45", "Seconds or duration a request may wait for a thread")
			fl.Bool("reload-on-changes", false, "Restart the workers when a module of the application changes")
			fl.BoolP("access-log", "a", false, "Enable the access log")
			fl.BoolP("debug", "v", false, "Enable verbose debug logs")
			fl.Bool("print-caddyfile", false, "Print the Caddyfile and exit instead of serving")
			// pflag gives a flag one value, but mod_wsgi-express's
			// --url-alias takes two words: the command parses its own
			// arguments, pairing those words first.
			cmd.DisableFlagParsing = true
			cmd.RunE = func(cmd *cobra.Command, args []string) error {
				if err := cmd.Flags().Parse(pairURLAliases(args)); err != nil {
					return err
				}
				if help, _ := cmd.Flags().GetBool("help"); help {
					return cmd.Help()
				}
				return caddycmd.WrapCommandFuncForCobra(cmdWSGIServer)(cmd, cmd.Flags().Args())
			}
		},
	})
}

// aliasSeparator joins the two words of a --url-alias into the flag's one
// value: no command-line argument can contain it.
const aliasSeparator = "\x00"

// pairURLAliases rewrites each --url-alias URL PATH (or --url-alias=URL PATH)
// in args as one --url-alias=URL<NUL>PATH argument.
func pairURLAliases(args []string) []string {
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if arg == "--" {
			return append(out, args[i:]...)
		}
		words := 0 // how many of the following arguments the alias takes
		switch {
		case arg == "--url-alias":
			words = 2
		case strings.HasPrefix(arg, "--url-alias="):
			words = 1
		}
		if words == 0 || i+words >= len(args) {
			out = append(out, arg)
			continue
		}
		if words == 2 {
			arg += "=" + args[i+1]
		}
		out = append(out, arg+aliasSeparator+args[i+words])
		i += words
	}
	return out
}

// typeStatic is --application-type static: the document root alone, no
// Python.
const typeStatic = "static"

// pythonFlags configure the Python application, which static does not have.
var pythonFlags = []string{
	"callable-object", "mount-point", "processes", "threads", "python", "python-home", "python-path",
	"working-directory", "user", "group", "maximum-requests", "request-timeout", "queue-timeout",
	"reload-on-changes",
}

// wsgiServer is what the command serves, from its argument and flags, with
// every path absolute.
type wsgiServer struct {
	app          string // empty for static
	appType      string // as given; empty to infer
	loadedAs     string // script, module, paste or static
	callable     string
	mountPoint   string
	documentRoot string
	aliases      [][2]string // URL, path

	domain string
	host   string // the address to bind to; empty for every interface
	port   string

	processes       int
	threads         int
	python          string
	pythonHome      string
	pythonPath      []string
	home            string
	user            string
	group           string
	maximumRequests int
	requestTimeout  time.Duration // 0: no limit
	queueTimeout    time.Duration
	reloadOnChanges bool

	accessLog bool
	debug     bool
}

// newWSGIServer checks the command's argument and flags.
func newWSGIServer(fs caddycmd.Flags) (*wsgiServer, error) {
	s := &wsgiServer{
		appType:         fs.String("application-type"),
		callable:        fs.String("callable-object"),
		mountPoint:      fs.String("mount-point"),
		domain:          fs.String("domain"),
		processes:       fs.Int("processes"),
		threads:         fs.Int("threads"),
		python:          fs.String("python"),
		user:            fs.String("user"),
		group:           fs.String("group"),
		maximumRequests: fs.Int("maximum-requests"),
		reloadOnChanges: fs.Bool("reload-on-changes"),
		accessLog:       fs.Bool("access-log"),
		debug:           fs.Bool("debug"),
	}
	var err error
	if s.documentRoot, err = absolute("--document-root", fs.String("document-root")); err != nil {
		return nil, err
	}
	args := fs.Args()
	if len(args) > 1 {
		return nil, fmt.Errorf("one application, not %d arguments: %q", len(args), args)
	}
	switch s.appType {
	case "", pool.TypeScript, pool.TypeModule, pool.TypePaste:
		if len(args) == 0 {
			return nil, errors.New("no application: caddy wsgi-server <script.wsgi | module:callable | config.ini>, or --application-type static to serve files alone")
		}
		app, err := resolveApp(args[0], s.callable, s.appType)
		if err != nil {
			return nil, err
		}
		s.app, s.loadedAs = app.Target, app.Type
	case typeStatic:
		if len(args) > 0 {
			return nil, fmt.Errorf("--application-type static serves --document-root and takes no application, not %q", args[0])
		}
		for _, name := range pythonFlags {
			if fs.Changed(name) {
				return nil, fmt.Errorf("--%s configures a Python application, and --application-type static has none", name)
			}
		}
		s.loadedAs = typeStatic
		// As caddy file-server: the current directory.
		if s.documentRoot == "" {
			if s.documentRoot, err = os.Getwd(); err != nil {
				return nil, err
			}
		}
	default:
		return nil, fmt.Errorf("--application-type %q: want script, module, paste or static", s.appType)
	}
	if s.documentRoot != "" {
		if info, err := os.Stat(s.documentRoot); err != nil {
			return nil, fmt.Errorf("--document-root: %w", err)
		} else if !info.IsDir() {
			return nil, fmt.Errorf("--document-root %s is not a directory", s.documentRoot)
		}
	}
	if !strings.HasPrefix(s.mountPoint, "/") {
		return nil, fmt.Errorf("--mount-point %q must start with /", s.mountPoint)
	}
	if err := s.setAliases(fs); err != nil {
		return nil, err
	}
	if err := s.setAddress(fs); err != nil {
		return nil, err
	}
	if s.processes < 1 || s.threads < 1 {
		return nil, fmt.Errorf("--processes and --threads must be at least 1, not %d and %d", s.processes, s.threads)
	}
	if s.maximumRequests < 0 {
		return nil, fmt.Errorf("--maximum-requests must be 0 (never) or more, not %d", s.maximumRequests)
	}
	if s.requestTimeout, err = seconds("--request-timeout", fs.String("request-timeout")); err != nil {
		return nil, err
	}
	if s.queueTimeout, err = seconds("--queue-timeout", fs.String("queue-timeout")); err != nil {
		return nil, err
	}
	if s.queueTimeout == 0 {
		return nil, errors.New("--queue-timeout must be more than 0")
	}
	// A bare interpreter name is looked up in PATH, as the pool does.
	if strings.Contains(s.python, "/") {
		if s.python, err = absolute("--python", s.python); err != nil {
			return nil, err
		}
	}
	if s.pythonHome, err = absolute("--python-home", fs.String("python-home")); err != nil {
		return nil, err
	}
	pythonPath, _ := fs.GetStringArray("python-path")
	for _, dir := range pythonPath {
		if dir, err = absolute("--python-path", dir); err != nil {
			return nil, err
		}
		s.pythonPath = append(s.pythonPath, dir)
	}
	if s.home, err = absolute("--working-directory", fs.String("working-directory")); err != nil {
		return nil, err
	}
	// A module is imported from Caddy's working directory: written out, the
	// Caddyfile then means this one wherever Caddy runs it later.
	if s.home == "" && s.loadedAs == pool.TypeModule {
		if s.home, err = os.Getwd(); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// absolute makes the path a flag gave absolute; empty stays empty.
func absolute(flag, path string) (string, error) {
	if path == "" {
		return "", nil
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", fmt.Errorf("%s: %w", flag, err)
	}
	return abs, nil
}

// setAliases reads the --url-alias pairs.
func (s *wsgiServer) setAliases(fs caddycmd.Flags) error {
	aliases, _ := fs.GetStringArray("url-alias")
	for _, alias := range aliases {
		url, path, ok := strings.Cut(alias, aliasSeparator)
		if !ok {
			return fmt.Errorf("--url-alias takes a URL path and a file or directory, as in --url-alias /static ./static; got only %q", alias)
		}
		if !strings.HasPrefix(url, "/") {
			return fmt.Errorf("--url-alias %s %s: the URL path must start with /", url, path)
		}
		abs, err := absolute("--url-alias", path)
		if err != nil {
			return err
		}
		if _, err := os.Stat(abs); err != nil {
			return fmt.Errorf("--url-alias %s: %w", url, err)
		}
		s.aliases = append(s.aliases, [2]string{url, abs})
	}
	return nil
}

// setAddress reads --listen and --domain. With a domain, --listen is the
// HTTPS address, :443 unless given, as in caddy file-server.
func (s *wsgiServer) setAddress(fs caddycmd.Flags) error {
	listen := fs.String("listen")
	if s.domain != "" {
		if !isHostName(s.domain) {
			return fmt.Errorf("--domain %q: want a host name such as example.com (--listen gives the port)", s.domain)
		}
		if !fs.Changed("listen") {
			listen = ":443"
		}
	}
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return fmt.Errorf("--listen %q: want host:port or :port, such as localhost:8000", listen)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("--listen %q: the port must be a number from 1 to 65535", listen)
	}
	s.host, s.port = host, port
	return nil
}

// isHostName reports whether name can be a site address on its own: a
// host name (international ones included) or a wildcard, with no scheme,
// port or path.
func isHostName(name string) bool {
	if name == "" {
		return false
	}
	for _, r := range name {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) && !strings.ContainsRune(".-_*", r) {
			return false
		}
	}
	return true
}

// seconds parses a timeout given as mod_wsgi-express does, in seconds, or
// as a duration such as 1m30s.
func seconds(flag, value string) (time.Duration, error) {
	d, err := parseSeconds(value)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%s %q: want a number of seconds or a duration such as 90s", flag, value)
	}
	return d, nil
}

// caddyfile is the Caddyfile the command runs.
func (s *wsgiServer) caddyfile() (string, error) {
	var w caddyfileWriter
	// What caddy file-server does too: the command line is the whole
	// configuration, so there is nothing to change through the admin API
	// and nothing to resume from.
	w.line(0, "{")
	if s.debug {
		w.line(1, "debug")
	}
	w.line(1, "admin", "off")
	w.line(1, "persist_config", "off")
	w.line(0, "}")
	w.line(0, "")
	w.line(0, s.siteAddress(), "{")
	if s.host != "" {
		w.line(1, "bind", w.token(s.host))
	}
	if s.accessLog {
		w.line(1, "log")
	}
	for _, alias := range s.aliases {
		w.line(1, "wsgi_alias", w.token(alias[0]), w.token(alias[1]))
	}
	if s.loadedAs == typeStatic {
		w.line(1, "root", "*", w.token(s.documentRoot))
		w.line(1, "file_server")
	} else {
		s.writeScript(&w)
	}
	w.line(0, "}")
	return w.b.String(), w.err
}

// siteAddress is the Caddyfile's site address: a domain gets Caddy's
// automatic HTTPS; anything else is plain HTTP on the port, for any Host
// (bind restricts the interface), as mod_wsgi-express serves.
func (s *wsgiServer) siteAddress() string {
	switch {
	case s.domain == "":
		return "http://:" + s.port
	case s.port == "443":
		return s.domain
	}
	return s.domain + ":" + s.port
}

// writeScript writes the wsgi_script directive. Threads, request_timeout
// and queue_timeout are written even at their defaults, which are
// mod_wsgi-express's and not all a Caddyfile's.
func (s *wsgiServer) writeScript(w *caddyfileWriter) {
	w.line(1, "wsgi_script", w.token(s.mountPoint), w.token(s.app), "{")
	if s.appType != "" {
		w.line(2, "application_type", s.appType)
	}
	if s.callable != "application" {
		w.line(2, "callable_object", w.token(s.callable))
	}
	if s.documentRoot != "" {
		w.line(2, "document_root", w.token(s.documentRoot))
	}
	w.line(2, "processes", strconv.Itoa(s.processes))
	w.line(2, "threads", strconv.Itoa(s.threads))
	if s.pythonHome != "" {
		w.line(2, "python_home", w.token(s.pythonHome))
	}
	if s.python != "" {
		w.line(2, "python", w.token(s.python))
	}
	if len(s.pythonPath) > 0 {
		args := []string{"python_path"}
		for _, dir := range s.pythonPath {
			args = append(args, w.token(dir))
		}
		w.line(2, args...)
	}
	if s.home != "" {
		w.line(2, "home", w.token(s.home))
	}
	if s.user != "" {
		w.line(2, "user", w.token(s.user))
	}
	if s.group != "" {
		w.line(2, "group", w.token(s.group))
	}
	if s.maximumRequests > 0 {
		w.line(2, "maximum_requests", strconv.Itoa(s.maximumRequests))
	}
	if s.requestTimeout > 0 {
		w.line(2, "request_timeout", caddyDuration(s.requestTimeout))
	}
	w.line(2, "queue_timeout", caddyDuration(s.queueTimeout))
	if s.reloadOnChanges {
		w.line(2, "reload_on_changes", "on")
	}
	w.line(1, "}")
}

// caddyDuration writes d as the Caddyfile reads it: whole seconds as 60s
// rather than Go's 1m0s.
func caddyDuration(d time.Duration) string {
	if d%time.Second == 0 {
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	}
	return d.String()
}

// caddyfileWriter writes a Caddyfile as caddy fmt formats one, so that the
// adapter has no formatting to warn about.
type caddyfileWriter struct {
	b   strings.Builder
	err error // the first value that could not be written
}

// line writes tokens on a line, indented depth tabs.
func (w *caddyfileWriter) line(depth int, tokens ...string) {
	w.b.WriteString(strings.Repeat("\t", depth))
	w.b.WriteString(strings.Join(tokens, " "))
	w.b.WriteByte('\n')
}

// token is a value as one Caddyfile token; see caddyfileToken.
func (w *caddyfileWriter) token(value string) string {
	token, err := caddyfileToken(value)
	if err != nil && w.err == nil {
		w.err = err
	}
	return token
}

// caddyfileToken quotes value so that the Caddyfile lexer reads it back as
// one token, unchanged. Inside double quotes only \" is an escape, so a
// value with a backslash (which might precede a quote or end the value) goes
// in backquotes, inside which nothing is an escape.
func caddyfileToken(value string) (string, error) {
	switch {
	case value != "" && !strings.ContainsAny(value, " \t\r\n\"'`\\{}#<"):
		return value, nil
	case !strings.Contains(value, `\`):
		return `"` + strings.ReplaceAll(value, `"`, `\"`) + `"`, nil
	case !strings.Contains(value, "`"):
		return "`" + value + "`", nil
	}
	return "", fmt.Errorf("%q cannot be written in a Caddyfile: it has both a backslash and a backquote", value)
}

// banner is the summary printed once Caddy serves, modelled on
// mod_wsgi-express's.
func (s *wsgiServer) banner() string {
	var b strings.Builder
	field := func(name, value string) {
		fmt.Fprintf(&b, "%-19s: %s\n", name, value)
	}
	field("Server URL", s.url())
	field("Server Root", caddy.AppDataDir())
	if s.loadedAs == typeStatic {
		field("Application", "none (static files)")
		field("Document Root", s.documentRoot)
	} else {
		field("Application", fmt.Sprintf("%s (%s)", s.app, s.loadedAs))
		if s.mountPoint != "/" {
			field("Mount Point", s.mountPoint)
		}
		if s.documentRoot != "" {
			field("Document Root", s.documentRoot)
		}
		field("Operating Mode", "daemon")
		field("Request Capacity", fmt.Sprintf("%d (%s * %s)", s.processes*s.threads,
			plural(s.processes, "process", "processes"), plural(s.threads, "thread", "threads")))
		requestTimeout := "none"
		if s.requestTimeout > 0 {
			requestTimeout = inSeconds(s.requestTimeout)
		}
		field("Request Timeout", requestTimeout)
		field("Queue Timeout", inSeconds(s.queueTimeout))
		field("Python Interpreter", s.interpreter())
	}
	accessLog := "off"
	if s.accessLog {
		accessLog = "stderr"
	}
	field("Access Log", accessLog)
	field("Error Log", "stderr (Caddy's log)")
	return b.String()
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

func inSeconds(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + " (seconds)"
}

// url is where the server is reached.
func (s *wsgiServer) url() string {
	if s.domain != "" {
		if s.port == "443" {
			return "https://" + s.domain + "/"
		}
		return "https://" + net.JoinHostPort(s.domain, s.port) + "/"
	}
	host := s.host
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, s.port) + "/"
}

// interpreter is the Python the workers run, found as the pool finds it.
func (s *wsgiServer) interpreter() string {
	name := "python3"
	switch {
	case s.pythonHome != "":
		for _, name := range []string{"python", "python3"} {
			path := filepath.Join(s.pythonHome, "bin", name)
			if _, err := os.Stat(path); err == nil {
				return path
			}
		}
	case s.python != "":
		name = s.python
	}
	if path, err := exec.LookPath(name); err == nil {
		return path
	}
	return name
}

func cmdWSGIServer(fs caddycmd.Flags) (int, error) {
	s, err := newWSGIServer(fs)
	if err != nil {
		return caddy.ExitCodeFailedStartup, err
	}
	caddyfile, err := s.caddyfile()
	if err != nil {
		return caddy.ExitCodeFailedStartup, err
	}
	if fs.Bool("print-caddyfile") {
		_, err := os.Stdout.WriteString(caddyfile)
		return caddy.ExitCodeSuccess, err
	}
	// Caddy would refuse too (pool.ErrRoot), but only once it had started,
	// and in a Caddyfile's terms.
	if os.Geteuid() == 0 && s.user == "" && s.loadedAs != typeStatic {
		return caddy.ExitCodeFailedStartup, errors.New("caddy wsgi-server runs as root, and the Python workers would too: pass --user with the account they should run as (such as www-data), or --user root if that is really meant")
	}

	caddy.TrapSignals()

	cfgJSON, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(caddyfile), nil)
	if err != nil {
		return caddy.ExitCodeFailedStartup, fmt.Errorf("the generated Caddyfile (see --print-caddyfile): %v", err)
	}
	for _, warning := range warnings {
		caddy.Log().Warn(warning.String(), zap.String("adapter", "caddyfile"))
	}
	if err := caddy.Load(cfgJSON, true); err != nil {
		return caddy.ExitCodeFailedStartup, err
	}
	fmt.Print(s.banner())

	select {}
}
