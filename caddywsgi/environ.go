package caddywsgi

import (
	"crypto/tls"
	"encoding/pem"
	"net"
	"net/http"
	"path"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-wsgi/caddy-wsgi/protocol"
)

// encodeEnviron begins a REQUEST for the handler's application in buf and
// adds r's environ to it: the CGI variables of the request as mod_wsgi sets
// them, with the SCRIPT_NAME and PATH_INFO splitPath gave; the worker adds
// the keys that never change. contentLength is the body's length, or -1 if
// it is not known yet.
func (h *Handler) encodeEnviron(e *protocol.RequestEncoder, buf []byte, r *http.Request, scriptName, pathInfo string, contentLength int64) {
	line := protocol.RequestLine{
		Method:         r.Method,
		ScriptName:     scriptName,
		PathInfo:       pathInfo,
		QueryString:    r.URL.RawQuery,
		RequestURI:     r.RequestURI,
		ServerProtocol: r.Proto,
		URLScheme:      "http",
	}
	if orig, ok := r.Context().Value(caddyhttp.OriginalRequestCtxKey).(http.Request); ok {
		line.RequestURI = orig.RequestURI
	}

	host, port := splitHost(r.Host)
	if port == "" {
		if addr, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
			var localHost string
			localHost, port, _ = net.SplitHostPort(addr.String())
			if host == "" {
				host = localHost
			}
		}
	}
	line.ServerName, line.ServerPort = host, port

	remoteAddr, remotePort, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		remoteAddr = r.RemoteAddr
	}
	// The client's address as Caddy determined it, which honours the server's
	// trusted_proxies setting.
	if ip, ok := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string); ok && ip != "" {
		remoteAddr = ip
	}
	line.RemoteAddr, line.RemotePort = remoteAddr, remotePort
	if r.TLS != nil {
		line.URLScheme = "https"
	}
	e.Begin(buf, h.appIndex, &line)

	if contentLength >= 0 {
		e.Pair("CONTENT_LENGTH", strconv.FormatInt(contentLength, 10))
	}
	if r.TLS != nil {
		e.Pair("HTTPS", "on")
		addTLS(e, r.TLS)
	}

	if r.Host != "" {
		e.Pair("HTTP_HOST", r.Host)
	}
	for name, values := range r.Header {
		if name == "Authorization" && !h.PassAuthorization {
			continue
		}
		addHeader(e, name, values)
	}
	// The user Caddy authenticated (its authentication handler), as Apache
	// sets REMOTE_USER for mod_wsgi.
	if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		if user, ok := repl.GetString("http.auth.user.id"); ok && user != "" {
			e.Pair("REMOTE_USER", user)
		}
	}
}

// addTLS adds the variables Apache's mod_ssl sets with SSLOptions
// +StdEnvVars +ExportCertData, by which applications behind mod_wsgi learn
// about the connection and the client's certificate. Cipher names are
// IANA's (TLS_AES_128_GCM_SHA256), not OpenSSL's.
func addTLS(e *protocol.RequestEncoder, cs *tls.ConnectionState) {
	e.Pair("SSL_PROTOCOL", strings.Replace(tls.VersionName(cs.Version), "TLS ", "TLSv", 1))
	e.Pair("SSL_CIPHER", tls.CipherSuiteName(cs.CipherSuite))
	if cs.ServerName != "" {
		e.Pair("SSL_TLS_SNI", cs.ServerName)
	}
	if len(cs.PeerCertificates) == 0 {
		e.Pair("SSL_CLIENT_VERIFY", "NONE")
		return
	}
	// Caddy's client_auth modes that do not verify accept any certificate:
	// Apache's optional_no_ca, which it reports as GENEROUS.
	verify := "GENEROUS"
	if len(cs.VerifiedChains) > 0 {
		verify = "SUCCESS"
	}
	cert := cs.PeerCertificates[0]
	e.Pair("SSL_CLIENT_VERIFY", verify)
	e.Pair("SSL_CLIENT_S_DN", cert.Subject.String())
	e.Pair("SSL_CLIENT_I_DN", cert.Issuer.String())
	e.Pair("SSL_CLIENT_M_SERIAL", strings.ToUpper(cert.SerialNumber.Text(16)))
	e.Pair("SSL_CLIENT_V_START", cert.NotBefore.UTC().Format("Jan _2 15:04:05 2006 GMT"))
	e.Pair("SSL_CLIENT_V_END", cert.NotAfter.UTC().Format("Jan _2 15:04:05 2006 GMT"))
	e.Pair("SSL_CLIENT_CERT", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})))
}

// addHeader adds one request header as CGI does (see
// protocol.RequestEncoder.Header), but those CGI leaves out or names
// otherwise.
func addHeader(e *protocol.RequestEncoder, name string, values []string) {
	switch name {
	case "Content-Type":
		e.Pair("CONTENT_TYPE", strings.Join(values, ", "))
		return
	case "Content-Length":
		// CONTENT_LENGTH comes from the body Caddy actually read.
		return
	case "Proxy":
		// httpoxy: HTTP_PROXY would pose as the proxy setting of the same
		// name. Apache drops it too.
		return
	}
	// A name with an underscore could pose as another header once dashes
	// become underscores (X_Forwarded_For as X-Forwarded-For): drop it, as
	// Apache does.
	if strings.IndexByte(name, '_') >= 0 {
		return
	}
	e.Header(name, values)
}

// splitPath divides a request path at the mount point into SCRIPT_NAME and
// PATH_INFO, after resolving dot segments and doubled slashes as Apache does
// before it maps a URL to a WSGIScriptAlias. ok is false for a path not
// under the mount point, compared case-sensitively as Apache does: Caddy's
// path matcher ignores case, and a hand-written JSON config may have none.
func (h *Handler) splitPath(p string) (scriptName, pathInfo string, ok bool) {
	if strings.Contains(p, "//") || strings.Contains(p, "/.") {
		cleaned := path.Clean(p)
		if strings.HasSuffix(p, "/") && cleaned != "/" {
			cleaned += "/"
		}
		p = cleaned
	}
	switch {
	case h.scriptName == "":
		return "", p, true
	case p == h.scriptName:
		return h.scriptName, "", true
	case strings.HasPrefix(p, h.scriptName) && p[len(h.scriptName)] == '/':
		return h.scriptName, p[len(h.scriptName):], true
	}
	return "", "", false
}

// splitHost splits a Host header into host and port; unlike net.SplitHostPort
// it accepts a host without a port.
func splitHost(hostport string) (host, port string) {
	if h, p, err := net.SplitHostPort(hostport); err == nil {
		return h, p
	}
	return strings.TrimSuffix(strings.TrimPrefix(hostport, "["), "]"), ""
}
