package caddywsgi

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/pflag"

	"github.com/caddy-wsgi/caddy-wsgi/pool"
)

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

// expressFlags are mod_wsgi-express start-server's flags that have another
// name here, with what to write instead.
var expressFlags = map[string]string{
	"server-name":       "--domain",
	"https-port":        "--port with --domain",
	"home":              "--working-directory",
	"log-level":         "--debug",
	"verbose-debugging": "--debug",
}

// unknownFlag adds to pflag's error for a flag that does not exist the one
// that was probably meant: mod_wsgi-express's name for it, or the closest
// spelling.
func unknownFlag(fs *pflag.FlagSet, err error) error {
	var notExist *pflag.NotExistError
	if !errors.As(err, &notExist) || notExist.GetSpecifiedShortnames() != "" {
		return err
	}
	name := notExist.GetSpecifiedName()
	if instead, ok := expressFlags[name]; ok {
		return fmt.Errorf("%w (mod_wsgi-express's --%s: use %s)", err, name, instead)
	}
	var names []string
	fs.VisitAll(func(f *pflag.Flag) { names = append(names, f.Name) })
	if guess := suggest(name, names); guess != "" {
		return fmt.Errorf("%w (did you mean --%s?)", err, guess)
	}
	return err
}

// typeStatic is --application-type static: the document root alone, no
// Python.
const typeStatic = "static"

// pythonFlags configure the Python application, which static does not have.
var pythonFlags = []string{
	"callable-object", "mount-point", "processes", "threads", "python", "python-home", "python-path",
	"working-directory", "user", "group", "maximum-requests", "request-timeout", "queue-timeout",
	"reload-on-changes", "server-status",
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

	domain  string
	host    string // the address to bind to; empty for every interface
	port    string
	noTrust bool // keep Caddy's local CA out of the system trust store

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

	serverStatus bool // the status page at /server-status, for this machine
	accessLog    bool
	debug        bool
}

// newWSGIServer checks the command's argument and flags.
func newWSGIServer(fs caddycmd.Flags) (*wsgiServer, error) {
	s := &wsgiServer{
		appType:         fs.String("application-type"),
		callable:        fs.String("callable-object"),
		mountPoint:      fs.String("mount-point"),
		domain:          fs.String("domain"),
		noTrust:         fs.Bool("no-trust"),
		processes:       fs.Int("processes"),
		threads:         fs.Int("threads"),
		python:          fs.String("python"),
		user:            fs.String("user"),
		group:           fs.String("group"),
		maximumRequests: fs.Int("maximum-requests"),
		reloadOnChanges: fs.Bool("reload-on-changes"),
		serverStatus:    fs.Bool("server-status"),
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
	// As mod_wsgi-express: the current directory, which is where a Django
	// project's package (mysite/wsgi.py imports mysite.settings) or a module
	// is found. Written out, the Caddyfile then means this one wherever
	// Caddy runs it later.
	if s.home == "" && s.loadedAs != typeStatic {
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

// setAddress reads --listen, --host, --port, --domain and --no-trust. With
// a domain, the address is the HTTPS one, :443 unless given, as in caddy
// file-server. --host and --port (mod_wsgi-express's) replace the halves of
// the default --listen; given with --listen, they must agree with it.
func (s *wsgiServer) setAddress(fs caddycmd.Flags) error {
	listen := fs.String("listen")
	if s.domain != "" {
		if !isHostName(s.domain) {
			return fmt.Errorf("--domain %q: want a host name such as example.com (--listen or --port gives the port)", s.domain)
		}
		if !fs.Changed("listen") {
			listen = ":443"
		}
	} else if s.noTrust {
		return errors.New("--no-trust concerns the certificate of --domain, and without --domain the server is plain HTTP")
	}
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return fmt.Errorf("--listen %q: want host:port or :port, such as localhost:8000", listen)
	}
	portFrom := "--listen " + strconv.Quote(listen)
	override := func(flag string, dst *string) error {
		if !fs.Changed(flag) {
			return nil
		}
		value := strings.TrimSuffix(strings.TrimPrefix(fs.String(flag), "["), "]")
		if fs.Changed("listen") && value != *dst {
			return fmt.Errorf("--%s %s contradicts --listen %s: give the address once, as --listen HOST:PORT or as --host HOST --port PORT", flag, value, listen)
		}
		*dst = value
		return nil
	}
	if err := override("host", &host); err != nil {
		return err
	}
	if err := override("port", &port); err != nil {
		return err
	}
	if fs.Changed("port") {
		portFrom = "--port " + strconv.Quote(port)
	}
	if strings.Contains(host, ":") && net.ParseIP(host) == nil {
		return fmt.Errorf("--host %q: want a host name or an IP address, without the port (--port gives it)", host)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("%s: the port must be a number from 1 to 65535", portFrom)
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
