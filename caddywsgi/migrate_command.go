package caddywsgi

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"
)

// exitUntranslated is wsgi-migrate's exit status when it wrote a Caddyfile
// but left some directives untranslated.
const exitUntranslated = 2

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "wsgi-migrate",
		Usage: "[--output <Caddyfile>] [--server-root <dir>] [--auto-https] <apache.conf>...",
		Short: "Translates an Apache mod_wsgi configuration into a Caddyfile",
		Long: `
Reads Apache httpd configuration files that serve Python applications with
mod_wsgi and writes a Caddyfile that serves them with caddy-wsgi, formatted
as caddy fmt formats it.

The files are read as Apache reads them: quoted words, lines continued with
a backslash, comment lines, ${VAR} from Define or the environment,
<IfModule> sections (taken as if the module were loaded), and Include and
IncludeOptional (file, directory or wildcard).
Relative paths, in Include and elsewhere, are relative to --server-root
(Apache's ServerRoot; default: the first file's directory).
The Caddyfile goes to stdout, or with --output to that file.

What is translated:
  <VirtualHost>, ServerName,     a site block for those names on the
  ServerAlias                    VirtualHost's ports (without VirtualHosts,
                                 one for any name on the Listen ports)
  SSLEngine, SSLCertificateFile, tls CERT KEY; with --auto-https, Caddy's
  SSLCertificateKeyFile          automatic HTTPS for the site's names instead
  SSLVerifyClient + SSLCA-       tls { client_auth { mode ... trust_pool
  CertificateFile                file CA } }
  WSGIDaemonProcess              global wsgi_daemon, each option checked as
                                 the Caddyfile's parser checks it; User and
                                 Group, WSGIPythonHome, WSGIPythonPath are
                                 the defaults of groups that lack them
  WSGIScriptAlias                wsgi_script, with process_group from its
                                 options or from the WSGIProcessGroup of the
                                 server, VirtualHost, Location, Directory or
                                 Files around it; WSGICallableObject,
                                 WSGIPassAuthorization, WSGIScriptReloading
                                 likewise
  WSGIImportScript               import_script on its group
  Alias                          wsgi_alias
  DocumentRoot                   root and file_server (nothing with an
                                 application at /, which takes every path)
  AuthType Basic, AuthUserFile,  basic_auth for the Location's paths or
  Require valid-user|user        where the Directory's files are served
                                 (bcrypt passwords only)
  LimitRequestBody               request_body max_size
  Redirect, RedirectMatch        redir with a path_regexp matcher

Everything else (mod_rewrite, WSGIAuthUserScript, access control other
than allowing everyone, other modules) is copied into the Caddyfile as
comments with the file and line it came from, and listed on stderr with the
reason. The exit status is 0 if everything was translated, 2 if the
Caddyfile was written with some directives left untranslated, 1 if the
configuration could not be read.

Examples:
  caddy wsgi-migrate /etc/apache2/sites-enabled/mysite.conf
  caddy wsgi-migrate --server-root /etc/apache2 --output Caddyfile /etc/apache2/apache2.conf
  caddy wsgi-migrate --auto-https /etc/apache2/sites-enabled/*.conf > Caddyfile
`,
		CobraFunc: func(cmd *cobra.Command) {
			fl := cmd.Flags()
			fl.StringP("output", "o", "", "Write the Caddyfile to this file instead of stdout")
			fl.String("server-root", "", "The directory relative paths are read from (Apache's ServerRoot; default: the first file's directory)")
			fl.Bool("auto-https", false, "Use Caddy's automatic HTTPS for SSL sites instead of their certificate files")
			cmd.Args = cobra.MinimumNArgs(1)
			cmd.RunE = func(cmd *cobra.Command, args []string) error {
				// The exit status says what was left untranslated; stderr
				// has said which.
				cmd.SilenceErrors = true
				return caddycmd.WrapCommandFuncForCobra(func(fs caddycmd.Flags) (int, error) {
					return cmdWSGIMigrate(fs, args)
				})(cmd, args)
			}
		},
	})
}

func cmdWSGIMigrate(fs caddycmd.Flags, files []string) (int, error) {
	m := migration{serverRoot: fs.String("server-root"), autoHTTPS: fs.Bool("auto-https")}
	if m.serverRoot == "" {
		m.serverRoot = filepath.Dir(files[0])
	}
	caddyfile, err := m.migrate(files)
	if err != nil {
		return caddy.ExitCodeFailedStartup, err
	}
	if out := fs.String("output"); out != "" {
		err = os.WriteFile(out, []byte(caddyfile), 0o644)
	} else {
		_, err = os.Stdout.WriteString(caddyfile)
	}
	if err != nil {
		return caddy.ExitCodeFailedStartup, err
	}
	for _, p := range m.problems {
		fmt.Fprintln(os.Stderr, p)
	}
	if len(m.problems) > 0 {
		fmt.Fprintf(os.Stderr, "%d directive(s) not translated: they are comments in the Caddyfile\n", len(m.problems))
		return exitUntranslated, nil
	}
	return caddy.ExitCodeSuccess, nil
}
