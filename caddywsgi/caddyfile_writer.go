package caddywsgi

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

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
	if s.noTrust {
		w.line(1, "skip_install_trust")
	}
	w.line(0, "}")
	w.line(0, "")
	w.line(0, s.siteAddress(), "{")
	if s.host != "" {
		w.line(1, "bind", w.token(s.host))
	}
	if s.accessLog {
		w.line(1, "log")
	}
	if s.serverStatus {
		// As mod_wsgi-express's: the page shows the URIs being served,
		// query strings included, so only to this machine.
		w.line(1, "handle", serverStatusPath, "{")
		w.line(2, "@outside", "not", "remote_ip", "127.0.0.0/8", "::1")
		w.line(2, "respond", "@outside", "403")
		w.line(2, "wsgi_status")
		w.line(1, "}")
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

// serverStatusPath is where --server-status serves the status page.
const serverStatusPath = "/server-status"

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

// tokens is values as Caddyfile tokens; see caddyfileToken.
func (w *caddyfileWriter) tokens(values []string) []string {
	out := make([]string, len(values))
	for i, v := range values {
		out[i] = w.token(v)
	}
	return out
}
