package caddywsgi

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/certmagic"

	"github.com/caddy-wsgi/caddy-wsgi/pool"
)

// banner is the summary printed once Caddy serves, modelled on
// mod_wsgi-express's.
func (s *wsgiServer) banner() string {
	var b strings.Builder
	field := func(name, value string) {
		fmt.Fprintf(&b, "%-19s: %s\n", name, value)
	}
	field("Server URL", s.url())
	if s.domain != "" {
		s.httpsFields(field)
	}
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
		field("Working Directory", s.home)
		field("User", workerUser(s.user))
		if s.group != "" {
			field("Group", s.group)
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
		if s.serverStatus {
			field("Server Status", strings.TrimSuffix(s.url(), "/")+serverStatusPath+" (this machine only)")
		}
	}
	accessLog := "off"
	if s.accessLog {
		accessLog = "stderr"
	}
	field("Access Log", accessLog)
	field("Error Log", "stderr (Caddy's log)")
	return b.String()
}

// httpsFields say what Caddy's automatic HTTPS does on this machine beyond
// serving the Server URL: it listens on port 80 too, and for a name no
// public CA certifies it signs the certificate with its own local CA and
// adds that CA's root to the system trust store.
func (s *wsgiServer) httpsFields(field func(name, value string)) {
	public := certmagic.SubjectQualifiesForPublicCert(s.domain)
	if s.port != "80" {
		also := "redirects HTTP to HTTPS"
		if public {
			also += " and answers ACME HTTP challenges"
		}
		field("HTTP Redirect", "port 80 (Caddy listens there too: it "+also+")")
	}
	switch {
	case public:
		field("Certificate", "from Let's Encrypt or ZeroSSL by ACME (the domain's DNS must point at this machine)")
	case s.noTrust:
		root := filepath.Join(caddy.AppDataDir(), "pki", "authorities", "local", "root.crt")
		field("Certificate", "from Caddy's local CA, left out of the system trust store (--no-trust): clients must trust "+root)
	default:
		field("Certificate", "from Caddy's local CA, whose root certificate Caddy adds to the system trust store (--no-trust leaves it out)")
	}
}

// interpreter is the Python the workers run, found as the pool finds it,
// with its path when it is found in PATH.
func (s *wsgiServer) interpreter() string {
	python, err := pool.Interpreter(s.python, s.pythonHome)
	if err != nil {
		// Not once Caddy serves: the pool has found it.
		return err.Error()
	}
	if path, err := exec.LookPath(python); err == nil {
		return path
	}
	return python
}

// workerUser is the account the workers run as: the one --user names, or
// Caddy's own.
func workerUser(name string) string {
	if name != "" {
		return name
	}
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return strconv.Itoa(os.Geteuid())
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
