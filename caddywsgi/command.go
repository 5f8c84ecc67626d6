package caddywsgi

import (
	"errors"
	"fmt"
	"os"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"
	"go.uber.org/zap"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "wsgi-server",
		Usage: "[<script.wsgi | module:callable | config.ini>] [--application-type <type>] [--listen <addr> | --host <host> --port <port>] [--domain <example.com>] [--processes <n>] [--threads <n>] [--url-alias <url> <path>] [--print-caddyfile]",
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
  a Django project's      caddy wsgi-server mysite/wsgi.py (run from the
                          directory of manage.py)
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
interface). mod_wsgi-express's --host and --port set one half of it each:
--port 9000 alone serves localhost:9000, --host 0.0.0.0 every IPv4
interface. Given with --listen, they must name the same host or port.

With --domain example.com, the site is that domain with Caddy's automatic
HTTPS: a certificate for it, and HTTP redirected to HTTPS. The default
address then becomes :443, and --listen (or --host and --port) is the HTTPS
address. Caddy also listens on port 80 for the redirects. A public domain's
certificate comes from Let's Encrypt or ZeroSSL, so its DNS records must
point at this machine first. A name no public CA certifies (localhost,
*.internal, *.local...) gets one from Caddy's local CA, whose root
certificate Caddy adds to the system trust store; --no-trust leaves the
trust store alone (Caddy's skip_install_trust).

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
                       import (default: the current directory, as
                       mod_wsgi-express)
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
  --server-status      the status page (wsgi_status) at /server-status, for
                       clients on this machine only, as mod_wsgi-express's

Logs go to stderr, as with mod_wsgi-express's --log-to-terminal, which is
accepted and changes nothing: --access-log adds Caddy's access log, --debug
turns on Caddy's debug logging.

Once Caddy serves, the command prints a summary, as mod_wsgi-express does:
the server URL, what HTTPS does on this machine, the application, the
working directory and user of the workers, the request capacity (processes
* threads), the timeouts and the interpreter. It runs until interrupted
(Ctrl-C).

Examples:
  caddy wsgi-server app.wsgi
  caddy wsgi-server mysite/wsgi.py --port 8080
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
			fl.String("host", "", "The host or IP address to serve on, instead of --listen's (mod_wsgi-express)")
			fl.String("port", "", "The port to serve on, instead of --listen's (mod_wsgi-express)")
			fl.StringP("domain", "d", "", "Serve this domain name with automatic HTTPS")
			fl.Bool("no-trust", false, "Leave Caddy's local CA out of the system trust store (with --domain)")
			fl.String("document-root", "", "A directory whose files are served in front of the application")
			fl.StringArray("url-alias", nil, "Serve the file or directory PATH at the URL path URL, given as two words: `URL PATH`; repeatable")
			fl.Int("processes", 1, "Worker processes")
			fl.Int("threads", 5, "Request threads per process")
			fl.String("python", "", "The Python interpreter (default python3 from PATH)")
			fl.String("python-home", "", "A virtualenv whose interpreter and packages the workers use")
			fl.StringArray("python-path", nil, "A directory added to sys.path; repeatable")
			fl.String("working-directory", "", "The workers' working directory (default: the current directory)")
			fl.String("user", "", "The user the workers run as")
			fl.String("group", "", "The workers' group")
			fl.Int("maximum-requests", 0, "Recycle a process after this many requests (0: never)")
			fl.String("request-timeout", "60", "Seconds or duration a request may run; 0 for no limit")
			fl.String("queue-timeout", "45", "Seconds or duration a request may wait for a thread")
			fl.Bool("reload-on-changes", false, "Restart the workers when a module of the application changes")
			fl.Bool("server-status", false, "Serve the status page at /server-status to clients on this machine")
			fl.BoolP("access-log", "a", false, "Enable the access log")
			fl.Bool("log-to-terminal", false, "Accepted for mod_wsgi-express: the logs always go to stderr")
			fl.BoolP("debug", "v", false, "Enable verbose debug logs")
			fl.Bool("print-caddyfile", false, "Print the Caddyfile and exit instead of serving")
			// pflag gives a flag one value, but mod_wsgi-express's
			// --url-alias takes two words: the command parses its own
			// arguments, pairing those words first.
			cmd.DisableFlagParsing = true
			cmd.RunE = func(cmd *cobra.Command, args []string) error {
				if err := cmd.Flags().Parse(pairURLAliases(args)); err != nil {
					return unknownFlag(cmd.Flags(), err)
				}
				if help, _ := cmd.Flags().GetBool("help"); help {
					return cmd.Help()
				}
				return caddycmd.WrapCommandFuncForCobra(cmdWSGIServer)(cmd, cmd.Flags().Args())
			}
		},
	})
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
