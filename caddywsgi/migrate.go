package caddywsgi

import (
	"bufio"
	"cmp"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-wsgi/caddy-wsgi/apacheconf"
)

// A migration turns an Apache mod_wsgi configuration into a Caddyfile; see
// the wsgi-migrate command. What it cannot translate it keeps as comments
// and lists in problems.
type migration struct {
	serverRoot string
	autoHTTPS  bool

	// From the server config: Apache's User and Group, WSGIPythonHome and
	// WSGIPythonPath, the defaults of every group; Listen's ports.
	user, group string
	pythonHome  string
	pythonPath  []string
	ports       []string

	groups   []*migratedGroup
	sites    []*migratedSite
	comments []string // untranslated server-wide directives
	problems []migrationProblem
	reported map[string]bool // file:line: text of the problems
}

// A migrationProblem is a directive that was not translated, and why.
type migrationProblem struct {
	d      *apacheconf.Directive
	reason string
}

func (p migrationProblem) String() string {
	return fmt.Sprintf("%s:%d: %s: %s", p.d.File, p.d.Line, p.d.Name, p.reason)
}

// A migratedGroup is a WSGIDaemonProcess: a wsgi_daemon's settings, as
// Caddyfile lines of name and values.
type migratedGroup struct {
	name     string
	settings [][]string
}

// has says whether the group sets the setting.
func (g *migratedGroup) has(name string) bool {
	return slices.ContainsFunc(g.settings, func(s []string) bool { return s[0] == name })
}

// A migratedSite is a VirtualHost, or the main server when there is none.
type migratedSite struct {
	vhost    *apacheconf.Directive
	names    []string
	ssl      bool
	cert     string
	key      string
	clientCA string
	verify   string // SSLVerifyClient
	docRoot  string
	aliases  [][2]string
	scripts  []*migratedScript
	base     scopeProps // the site's own WSGIProcessGroup and the like
	sections []*scopeSection
	redirs   [][]string // Caddyfile lines, two a redirect
	comments []string
	deflate  bool // AddOutputFilterByType DEFLATE: Caddy's encode
	// path_regexp patterns of the files a <FilesMatch> denies to all.
	deniedFiles []string
}

// A migratedScript is a WSGIScriptAlias.
type migratedScript struct {
	mount, file string
	inline      scopeProps // its process-group= and other options
}

// scopeProps are the directives that a server, VirtualHost, Location or
// Directory sets for the requests in it; "" is unset.
type scopeProps struct {
	processGroup, callable, passAuth, reloading string
	limitBody                                   string
	auth                                        *basicAuth
	// Order allow,deny, which lets everyone in only with Allow from all.
	denyOrder *apacheconf.Directive
	allowAll  bool
	access    *accessRule // Require all, ip and local
}

// accessRule is who the Require all, ip and local lines of a scope let in:
// any one of them is enough, as in Apache's implicit <RequireAny>.
type accessRule struct {
	d   *apacheconf.Directive // the first of them, for the problems
	all bool                  // Require all granted: everyone
	ips []string              // else clients from these, as remote_ip takes them; none for Require all denied
}

// restricts says whether the rule keeps anyone out.
func (a *accessRule) restricts() bool {
	return a != nil && !a.all
}

// checkAccess reports an Order allow,deny that lets nobody in, and drops
// address rules beside authentication: which of the two is enough is not
// translated.
func (m *migration) checkAccess(s *migratedSite, p *scopeProps) {
	if p.denyOrder != nil && !p.allowAll {
		m.problem(s, p.denyOrder, "without Allow from all it lets nobody in, which is not translated")
	}
	if p.auth != nil && p.access.restricts() {
		m.problem(s, p.access.d, "Require by address beside authentication in one section is not translated")
		p.access = nil
	}
}

// daemonMode says whether p runs an application in a daemon group.
func (p scopeProps) daemonMode() bool {
	return p.processGroup != "" && p.processGroup != "%{GLOBAL}"
}

// merge is p with q's settings over it, as Apache merges an inner scope.
func (p scopeProps) merge(q scopeProps) scopeProps {
	p.processGroup = cmp.Or(q.processGroup, p.processGroup)
	p.callable = cmp.Or(q.callable, p.callable)
	p.passAuth = cmp.Or(q.passAuth, p.passAuth)
	p.reloading = cmp.Or(q.reloading, p.reloading)
	p.limitBody = cmp.Or(q.limitBody, p.limitBody)
	p.auth = cmp.Or(q.auth, p.auth)
	p.access = cmp.Or(q.access, p.access)
	return p
}

// A scopeSection is a Location, Directory or Files section.
type scopeSection struct {
	d     *apacheconf.Directive
	kind  string // location, directory or files
	path  string // the URL path or directory (the enclosing one for Files)
	file  string // for Files, the file's name
	props scopeProps
	// SetHandler server-status: the status page at the Location's path.
	status bool
}

// basicAuth is what AuthType Basic, AuthName, AuthUserFile and Require set.
type basicAuth struct {
	d        *apacheconf.Directive // the first of them, for the problems
	basic    bool
	realm    string
	userFile string
	require  []string // nil: no Require; empty: valid-user; else the users
}

// migrate reads the Apache configuration files and returns the Caddyfile.
func (m *migration) migrate(files []string) (string, error) {
	m.reported = map[string]bool{}
	ds, err := apacheconf.Parse(m.serverRoot, files...)
	if err != nil {
		return "", err
	}
	main := &migratedSite{}
	var vhosts []*apacheconf.Directive
	for _, d := range m.enabled(ds) {
		switch {
		case strings.EqualFold(d.Name, "VirtualHost"):
			vhosts = append(vhosts, d)
		case m.serverDirective(d):
		default:
			m.siteDirective(main, d)
		}
	}
	for _, vh := range vhosts {
		s := &migratedSite{vhost: vh}
		for _, d := range m.enabled(vh.Block) {
			if !m.serverDirective(d) {
				m.siteDirective(s, d)
			}
		}
		m.checkAccess(s, &s.base)
		// What the main server sets, a VirtualHost inherits.
		s.docRoot = cmp.Or(s.docRoot, main.docRoot)
		s.aliases = append(s.aliases, main.aliases...)
		s.scripts = append(s.scripts, main.scripts...)
		s.sections = append(s.sections, main.sections...)
		s.base = main.base.merge(s.base)
		s.redirs = append(s.redirs, main.redirs...)
		s.deflate = s.deflate || main.deflate
		s.deniedFiles = append(s.deniedFiles, main.deniedFiles...)
		m.sites = append(m.sites, s)
	}
	m.checkAccess(main, &main.base)
	if len(vhosts) == 0 {
		m.sites = []*migratedSite{main}
	} else {
		m.comments = append(m.comments, main.comments...)
	}
	return m.write()
}

// enabled is ds with <IfModule> sections replaced by what they hold, as if
// every module were loaded (<IfModule !...> holds what is used without one,
// so it is left out).
func (m *migration) enabled(ds []*apacheconf.Directive) []*apacheconf.Directive {
	var out []*apacheconf.Directive
	for _, d := range ds {
		if !strings.EqualFold(d.Name, "IfModule") || !d.IsSection() {
			out = append(out, d)
			continue
		}
		if len(d.Args) == 1 && !strings.HasPrefix(d.Args[0], "!") {
			out = append(out, m.enabled(d.Block)...)
		}
	}
	return out
}

// ignoredDirectives change nothing a Caddyfile says: Apache's own
// housekeeping; mod_wsgi's settings for what caddy-wsgi does not have
// (embedded mode, socket files); and the presentation settings that Debian
// enables for every server, which are no site's own: language and charset
// negotiation (Caddy serves a file with its extension's type), directory
// listing icons (listings are reported with Options Indexes), workarounds
// for old browsers, log formats (CustomLog is reported), mod_status's.
var ignoredDirectives = []string{
	"AddLanguage", "AddCharset", "LanguagePriority", "ForceLanguagePriority", "RemoveType", "AddIcon", "AddIconByType",
	"AddIconByEncoding", "AddAlt", "AddAltByType", "AddAltByEncoding", "AddDescription", "DefaultIcon", "IndexOptions",
	"IndexIgnore", "IndexOrderDefault", "ReadmeName", "HeaderName", "BrowserMatch", "BrowserMatchNoCase", "LogFormat",
	"ExtendedStatus", "ProxyStatus",
	"AcceptFilter", "AccessFileName", "AddDefaultCharset", "DefaultRuntimeDir", "Define", "EnableSendfile", "EnableMMAP",
	"GracefulShutdownTimeout", "HostnameLookups", "KeepAlive", "KeepAliveTimeout", "LoadModule", "LogLevel",
	"MaxConnectionsPerChild", "MaxKeepAliveRequests", "MaxRequestWorkers", "MaxSpareServers", "MaxSpareThreads",
	"MinSpareServers", "MinSpareThreads", "Mutex", "PidFile", "ServerAdmin", "ServerLimit", "ServerRoot",
	"ServerSignature", "ServerTokens", "StartServers", "ThreadLimit", "ThreadsPerChild", "Timeout", "TraceEnable",
	"TypesConfig", "UseCanonicalName", "WSGIChunkedRequest", "WSGILazyInitialization", "WSGIRestrictEmbedded",
	"WSGIRestrictStdout", "WSGIRestrictStdin", "WSGIRestrictSignal", "WSGISocketPrefix", "WSGIPythonOptimize",
	"SSLRandomSeed", "SSLSessionCache", "SSLSessionCacheTimeout", "SSLPassPhraseDialog", "SSLVerifyDepth", "SSLOptions",
}

// serverDirective handles a directive that is server-wide wherever it is
// written; false if d is none.
func (m *migration) serverDirective(d *apacheconf.Directive) bool {
	if strings.Contains(d.Raw, "${") && !ignored(d) {
		// Debian's apache2ctl sets User's and Group's from
		// /etc/apache2/envvars.
		m.problem(nil, d, "uses a variable that neither Define nor the environment defines (for Debian's, run `. /etc/apache2/envvars` first)")
		return true
	}
	switch strings.ToLower(d.Name) {
	case "wsgidaemonprocess":
		m.daemonProcess(d)
	case "wsgipythonhome":
		if m.oneArg(d) {
			m.pythonHome = m.path(d.Args[0])
		}
	case "wsgipythonpath":
		if m.oneArg(d) {
			for _, dir := range strings.Split(d.Args[0], ":") {
				m.pythonPath = append(m.pythonPath, m.path(dir))
			}
		}
	case "user":
		if m.oneArg(d) {
			m.user = d.Args[0]
		}
	case "group":
		if m.oneArg(d) {
			m.group = d.Args[0]
		}
	case "listen":
		if len(d.Args) > 0 {
			addr := d.Args[0]
			m.ports = append(m.ports, addr[strings.LastIndex(addr, ":")+1:])
		}
	case "wsgiimportscript":
		m.importScript(d)
	default:
		return ignored(d)
	}
	return true
}

// ignored says whether d is one of ignoredDirectives.
func ignored(d *apacheconf.Directive) bool {
	return slices.ContainsFunc(ignoredDirectives, func(name string) bool { return strings.EqualFold(name, d.Name) })
}

// siteDirective handles a directive of a VirtualHost or of the main server.
func (m *migration) siteDirective(s *migratedSite, d *apacheconf.Directive) {
	switch strings.ToLower(d.Name) {
	case "servername":
		if m.oneArg(d) {
			// A port in ServerName only names the server in redirects.
			host := d.Args[0]
			if h, _, ok := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(host, "https://"), "http://"), ":"); ok {
				host = h
			}
			s.names = append([]string{host}, s.names...)
		}
	case "serveralias":
		s.names = append(s.names, d.Args...)
	case "documentroot":
		if m.oneArg(d) {
			s.docRoot = m.path(d.Args[0])
		}
	case "alias":
		if len(d.Args) != 2 {
			m.problem(s, d, "takes a URL path and a file or directory")
			return
		}
		s.aliases = append(s.aliases, [2]string{d.Args[0], m.path(d.Args[1])})
	case "wsgiscriptalias":
		m.scriptAlias(s, d)
	case "redirect", "redirectmatch", "redirectpermanent", "redirecttemp":
		m.redirect(s, d)
	case "sslengine":
		s.ssl = len(d.Args) == 1 && strings.EqualFold(d.Args[0], "on")
	case "sslcertificatefile":
		if m.oneArg(d) {
			s.cert = m.path(d.Args[0])
		}
	case "sslcertificatekeyfile":
		if m.oneArg(d) {
			s.key = m.path(d.Args[0])
		}
	case "sslcacertificatefile":
		if m.oneArg(d) {
			s.clientCA = m.path(d.Args[0])
		}
	case "sslverifyclient":
		if m.oneArg(d) {
			s.verify = strings.ToLower(d.Args[0])
		}
	case "addoutputfilterbytype":
		if len(d.Args) < 2 || !slices.Contains(strings.Split(strings.ToUpper(d.Args[0]), ";"), "DEFLATE") {
			m.untranslated(s, d)
			return
		}
		// Caddy's encode compresses its own list of compressible types.
		s.deflate = true
	case "filesmatch":
		m.filesMatch(s, d)
	case "location", "directory", "files":
		if !d.IsSection() {
			m.problem(s, d, "is a section")
			return
		}
		m.section(s, d, "")
	default:
		if !m.scopeDirective(s, &s.base, d) {
			m.untranslated(s, d)
		}
	}
}

// section reads a Location, Directory or Files section; dir is the
// directory of the Directory section around a Files section.
func (m *migration) section(s *migratedSite, d *apacheconf.Directive, dir string) {
	if len(d.Args) != 1 {
		m.problem(s, d, "takes one path")
		return
	}
	sec := &scopeSection{d: d, kind: strings.ToLower(d.Name), path: d.Args[0]}
	switch sec.kind {
	case "directory":
		sec.path = filepath.Clean(m.path(sec.path))
	case "files":
		sec.path, sec.file = dir, d.Args[0]
	}
	if strings.ContainsAny(d.Args[0], "*?[") || strings.HasPrefix(d.Args[0], "~") {
		m.problem(s, d, "a section with a wildcard or regular expression is not translated")
		return
	}
	for _, inner := range m.enabled(d.Block) {
		switch {
		case sec.kind == "directory" && strings.EqualFold(inner.Name, "Files") && inner.IsSection():
			m.section(s, inner, sec.path)
		case sec.kind == "location" && strings.EqualFold(inner.Name, "SetHandler") && len(inner.Args) == 1 &&
			strings.EqualFold(inner.Args[0], "server-status"):
			// mod_status's page becomes caddy-wsgi's, with the
			// section's access rules.
			sec.status = true
		case !m.scopeDirective(s, &sec.props, inner):
			m.untranslated(s, inner)
		}
	}
	m.checkAccess(s, &sec.props)
	s.sections = append(s.sections, sec)
}

// accessAllowed are access-control lines that let everyone in, which is what
// Caddy does.
var accessAllowed = []string{"order deny,allow", "satisfy any", "allowoverride none"}

// scopeDirective handles a directive that may be written in any scope;
// false if d is none.
func (m *migration) scopeDirective(s *migratedSite, p *scopeProps, d *apacheconf.Directive) bool {
	line := strings.ToLower(strings.Join(append([]string{d.Name}, d.Args...), " "))
	if slices.Contains(accessAllowed, line) {
		return true
	}
	auth := func() *basicAuth {
		if p.auth == nil {
			p.auth = &basicAuth{d: d}
		}
		return p.auth
	}
	access := func() *accessRule {
		if p.access == nil {
			p.access = &accessRule{d: d}
		}
		return p.access
	}
	switch line {
	case "order allow,deny":
		p.denyOrder = d
		return true
	case "allow from all":
		p.allowAll = true
		return true
	}
	switch strings.ToLower(d.Name) {
	case "wsgiprocessgroup":
		if m.oneArg(d) {
			p.processGroup = d.Args[0]
		}
	case "wsgiapplicationgroup":
		m.applicationGroup(s, d, d.Args)
	case "wsgicallableobject":
		if m.oneArg(d) {
			p.callable = d.Args[0]
		}
	case "wsgipassauthorization":
		if m.oneArg(d) {
			p.passAuth = strings.ToLower(d.Args[0])
		}
	case "wsgiscriptreloading":
		if m.oneArg(d) {
			p.reloading = strings.ToLower(d.Args[0])
		}
	case "limitrequestbody":
		if m.oneArg(d) {
			p.limitBody = d.Args[0]
		}
	case "options":
		for _, o := range d.Args {
			if strings.Contains(strings.ToLower(o), "indexes") && !strings.HasPrefix(o, "-") {
				m.problem(s, d, "directory listings (Indexes) are not translated: Caddy's file_server browse would list them")
				return true
			}
		}
	case "authtype":
		auth().basic = len(d.Args) == 1 && strings.EqualFold(d.Args[0], "Basic")
		if !auth().basic {
			m.problem(s, d, "only AuthType Basic is translated")
		}
	case "authname":
		if m.oneArg(d) {
			auth().realm = d.Args[0]
		}
	case "authuserfile":
		if m.oneArg(d) {
			auth().userFile = m.path(d.Args[0])
		}
	case "authbasicprovider":
		if len(d.Args) != 1 || !strings.EqualFold(d.Args[0], "file") {
			m.problem(s, d, "only the file provider (AuthUserFile) is translated")
		}
	case "require":
		switch {
		case len(d.Args) == 1 && strings.EqualFold(d.Args[0], "valid-user"):
			auth().require = []string{}
		case len(d.Args) > 1 && strings.EqualFold(d.Args[0], "user"):
			auth().require = d.Args[1:]
		case line == "require all granted":
			access().all = true
		case line == "require all denied":
			access()
		case line == "require local":
			// Apache's local also takes a client connecting from the
			// server's own address to it, which remote_ip cannot tell.
			access().ips = append(access().ips, "127.0.0.0/8", "::1")
		case len(d.Args) > 1 && strings.EqualFold(d.Args[0], "ip"):
			var ips []string
			for _, arg := range d.Args[1:] {
				ip, ok := apacheIPRange(arg)
				if !ok {
					m.problem(s, d, fmt.Sprintf("%q is not an address, a partial IPv4 address, a network/prefix or a network/netmask", arg))
					return true
				}
				ips = append(ips, ip)
			}
			access().ips = append(access().ips, ips...)
		default:
			m.problem(s, d, "only Require all granted, all denied, ip, local, valid-user and user are translated")
		}
	default:
		return false
	}
	return true
}

// applicationGroup handles an application group: caddy-wsgi runs every
// application in its process's main interpreter, which is what %{GLOBAL}
// asks for; another group shares a process with other applications only in
// mod_wsgi.
func (m *migration) applicationGroup(s *migratedSite, d *apacheconf.Directive, args []string) {
	if len(args) == 1 && args[0] == "%{GLOBAL}" {
		return
	}
	if s != nil {
		s.comments = append(s.comments, fmt.Sprintf("%s (%s:%d): each process group runs one application, in its main interpreter", d.Text, d.File, d.Line))
	}
}

// daemonProcess translates a WSGIDaemonProcess into a wsgi_daemon, each
// option checked as the Caddyfile's parser will check it.
func (m *migration) daemonProcess(d *apacheconf.Directive) {
	args := apacheconf.Options(d.Raw)
	if len(args) == 0 {
		m.problem(nil, d, "names no group")
		return
	}
	g := &migratedGroup{name: args[0]}
	var check DaemonGroup
	for _, opt := range args[1:] {
		name, value, ok := strings.Cut(opt, "=")
		key := strings.ReplaceAll(name, "-", "_")
		if !ok {
			m.optionProblem(nil, d, opt, "want name=value")
			continue
		}
		if key == "listen_backlog" {
			key, opt = "max_queue", "max_queue="+value
		}
		if modWSGIOptions[key] == notNeeded {
			continue
		}
		s := lookupSetting(key)
		if s == nil {
			m.optionProblem(nil, d, opt, "option "+name+" has no caddy-wsgi setting")
			continue
		}
		if err := check.setInline(opt); err != nil {
			m.optionProblem(nil, d, opt, err.Error())
			continue
		}
		values := []string{value}
		if s.inline != nil {
			values = s.inline(value)
		}
		if s.name == "python_home" || s.name == "home" {
			values = []string{m.path(value)}
		}
		g.settings = append(g.settings, append([]string{s.name}, values...))
	}
	m.groups = append(m.groups, g)
}

// importScript sets import_script on the daemon group that
// WSGIImportScript's process-group= names.
func (m *migration) importScript(d *apacheconf.Directive) {
	var group string
	for _, opt := range d.Args[min(1, len(d.Args)):] {
		if v, ok := strings.CutPrefix(opt, "process-group="); ok {
			group = v
		}
	}
	for _, g := range m.groups {
		if g.name == group && len(d.Args) > 0 {
			g.settings = append(g.settings, []string{"import_script", m.path(d.Args[0])})
			return
		}
	}
	m.problem(nil, d, "only a script for a daemon group defined before it (process-group=) is translated")
}

// scriptAlias reads a WSGIScriptAlias and its options.
func (m *migration) scriptAlias(s *migratedSite, d *apacheconf.Directive) {
	args := apacheconf.Options(d.Raw)
	if len(args) < 2 {
		m.problem(s, d, "takes a URL path and a script")
		return
	}
	if strings.HasSuffix(args[1], "/") {
		m.problem(s, d, "a directory of scripts is not translated: write a wsgi_script for each")
		return
	}
	sc := &migratedScript{mount: args[0], file: m.path(args[1])}
	for _, opt := range args[2:] {
		name, value, _ := strings.Cut(opt, "=")
		switch name {
		case "process-group":
			sc.inline.processGroup = value
		case "application-group":
			m.applicationGroup(s, d, []string{value})
		case "callable-object":
			sc.inline.callable = value
		case "pass-authorization":
			sc.inline.passAuth = strings.ToLower(value)
		default:
			m.optionProblem(s, d, opt, "option "+name+" is not translated")
		}
	}
	s.scripts = append(s.scripts, sc)
}

// redirectStatus are mod_alias's names for redirect statuses.
var redirectStatus = map[string]string{"permanent": "301", "temp": "302", "seeother": "303"}

// redirect translates Redirect and RedirectMatch into redir with a
// path_regexp matcher: Redirect matches whole path segments and appends the
// rest of the path and the query, RedirectMatch substitutes $N.
func (m *migration) redirect(s *migratedSite, d *apacheconf.Directive) {
	args := slices.Clone(d.Args)
	status := "302"
	switch strings.ToLower(d.Name) {
	case "redirectpermanent":
		status = "301"
	default:
		if len(args) == 3 {
			status = cmp.Or(redirectStatus[strings.ToLower(args[0])], args[0])
			args = args[1:]
		}
	}
	if n, err := strconv.Atoi(status); len(args) != 2 || err != nil || n < 300 || n > 399 {
		m.problem(s, d, "only a redirect with a 3xx status and a target is translated")
		return
	}
	name := "redirect" + strconv.Itoa(len(s.redirs)/2)
	var pattern, target string
	if strings.EqualFold(d.Name, "RedirectMatch") {
		if _, err := regexp.Compile(args[0]); err != nil {
			m.problem(s, d, "the regular expression is not one Go's regexp reads: "+err.Error())
			return
		}
		pattern = args[0]
		target = regexp.MustCompile(`\$(\d)`).ReplaceAllString(args[1], "{re."+name+".$1}")
	} else {
		prefix := strings.TrimSuffix(args[0], "/")
		pattern = "^" + regexp.QuoteMeta(prefix) + "(/.*)?$"
		if strings.HasSuffix(args[0], "/") {
			pattern = "^" + regexp.QuoteMeta(prefix) + "/(.*)$"
		}
		target = strings.TrimSuffix(args[1], "/")
		if strings.HasSuffix(args[1], "/") || strings.HasSuffix(args[0], "/") {
			target += "/"
		}
		target += "{re." + name + ".1}{http.request.uri.prefixed_query}"
	}
	if strings.HasPrefix(target, "/") {
		// Apache makes a path absolute with the request's host.
		target = "{http.request.scheme}://{http.request.hostport}" + target
	}
	s.redirs = append(s.redirs,
		[]string{"@" + name, "path_regexp", name, pattern},
		[]string{"redir", "@" + name, target, status})
}

// write writes the Caddyfile, formatted as caddy fmt formats it.
func (m *migration) write() (string, error) {
	var w caddyfileWriter
	// The scripts' settings first: WSGIScriptReloading goes into groups.
	props := map[*migratedScript]scopeProps{}
	for _, s := range m.sites {
		for _, sc := range s.scripts {
			props[sc] = m.scriptProps(s, sc)
		}
	}
	m.applyDefaults()
	if len(m.groups) > 0 {
		w.line(0, "{")
		for _, g := range m.groups {
			w.line(1, "wsgi_daemon", w.token(g.name), "{")
			for _, setting := range g.settings {
				w.line(2, w.tokens(setting)...)
			}
			w.line(1, "}")
		}
		w.line(0, "}")
	}
	for _, c := range m.comments {
		w.line(0, "# "+c)
	}
	for _, s := range m.sites {
		m.writeSite(&w, s, props)
	}
	if w.err != nil {
		return "", w.err
	}
	return string(caddyfile.Format([]byte(w.b.String()))), nil
}

// applyDefaults gives each group the server's Python, user and group,
// where it sets none, as mod_wsgi does (a group with a user of its own still
// runs in Apache's Group, not in the user's primary group).
func (m *migration) applyDefaults() {
	for _, g := range m.groups {
		if m.pythonHome != "" && !g.has("python_home") {
			g.settings = append(g.settings, []string{"python_home", m.pythonHome})
		}
		if len(m.pythonPath) > 0 && !g.has("python_path") {
			g.settings = append(g.settings, append([]string{"python_path"}, m.pythonPath...))
		}
		if m.user != "" && !g.has("user") {
			g.settings = append(g.settings, []string{"user", m.user})
		}
		if m.group != "" && !g.has("group") {
			g.settings = append(g.settings, []string{"group", m.group})
		}
	}
}

// writeSite writes a site block.
func (m *migration) writeSite(w *caddyfileWriter, s *migratedSite, props map[*migratedScript]scopeProps) {
	// A VirtualHost's addresses, else the main server's Listen ports.
	ports, binds := m.ports, []string(nil)
	if s.vhost != nil {
		ports = nil
		for _, addr := range s.vhost.Args {
			host, port := addr, ""
			if i := strings.LastIndex(addr, ":"); i >= 0 && !strings.HasSuffix(addr, "]") {
				host, port = addr[:i], addr[i+1:]
			}
			ports = append(ports, cmp.Or(port, slices.Concat(m.ports, []string{"80"})[0]))
			if host != "*" && host != "_default_" {
				binds = append(binds, strings.Trim(host, "[]"))
			}
		}
	}
	if len(ports) == 0 {
		ports = []string{"80"}
	}
	scheme, defaultPort := "http://", "80"
	if s.ssl {
		scheme, defaultPort = "https://", "443"
		if m.autoHTTPS && len(s.names) > 0 {
			scheme = ""
		}
	}
	names := s.names
	if s.vhost == nil && (!s.ssl || !m.autoHTTPS) {
		// Without VirtualHosts, Apache's main server answers for any name.
		names = nil
	}
	var addrs []string
	for _, port := range slices.Compact(slices.Sorted(slices.Values(ports))) {
		for _, name := range names {
			if port == defaultPort {
				addrs = append(addrs, scheme+name)
			} else {
				addrs = append(addrs, scheme+name+":"+port)
			}
		}
		if len(names) == 0 {
			addrs = append(addrs, cmp.Or(scheme, "https://")+":"+port)
		}
	}
	w.line(0, "")
	w.line(0, strings.Join(addrs, ", ")+" {")
	if len(binds) > 0 {
		w.line(1, append([]string{"bind"}, w.tokens(slices.Compact(binds))...)...)
	}
	m.writeTLS(w, s)
	if s.deflate {
		w.line(1, "encode", "gzip")
	}
	if s.base.limitBody != "" {
		w.line(1, "request_body", "{")
		w.line(2, "max_size", w.token(s.base.limitBody))
		w.line(1, "}")
	}
	for i, sec := range s.sections {
		m.writeSection(w, s, sec, i)
	}
	if s.base.auth != nil {
		m.writeAuth(w, s, s.base.auth, "")
	}
	for _, r := range s.redirs {
		w.line(1, w.tokens(r)...)
	}
	for _, a := range s.aliases {
		w.line(1, "wsgi_alias", w.token(a[0]), w.token(a[1]))
	}
	rootApp := slices.ContainsFunc(s.scripts, func(sc *migratedScript) bool { return strings.TrimRight(sc.mount, "/") == "" })
	m.writeAccess(w, s, rootApp)
	for _, sec := range s.sections {
		if sec.status {
			w.line(1, "wsgi_status", w.token(strings.TrimRight(sec.path, "/")))
		}
	}
	for _, sc := range s.scripts {
		m.writeScript(w, sc, props[sc])
	}
	switch {
	case s.docRoot != "" && rootApp:
		w.line(1, "# DocumentRoot "+s.docRoot+": Apache serves no file from it, as WSGIScriptAlias / takes every path that no Alias takes")
	case s.docRoot != "":
		w.line(1, "root", "*", w.token(s.docRoot))
		w.line(1, "file_server")
	case !rootApp:
		m.writeNotFound(w, s)
	}
	for _, c := range s.comments {
		w.line(1, "# "+c)
	}
	w.line(0, "}")
}

// filesMatch translates a <FilesMatch> that denies its files to everyone,
// as Debian's does for .htaccess and .htpasswd: their URL paths get a 403.
func (m *migration) filesMatch(s *migratedSite, d *apacheconf.Directive) {
	denied := len(d.Args) == 1 && len(d.Block) > 0
	for _, inner := range d.Block {
		denied = denied && strings.EqualFold(inner.Text, "Require all denied")
	}
	pattern, ok := "", false
	if denied {
		pattern, ok = fileNamePattern(d.Args[0])
	}
	if !ok {
		m.problem(s, d, "only a <FilesMatch> on file names that holds Require all denied alone is translated")
		return
	}
	s.deniedFiles = append(s.deniedFiles, pattern)
}

// fileNamePattern is a path_regexp pattern for the URL paths whose last
// segment a FilesMatch regular expression, which Apache matches against a
// file's name, matches.
func fileNamePattern(re string) (string, bool) {
	if strings.Contains(re, "/") {
		return "", false
	}
	prefix, suffix := "/[^/]*", "[^/]*$"
	if rest, ok := strings.CutPrefix(re, "^"); ok {
		prefix, re = "/", rest
	}
	if rest, ok := strings.CutSuffix(re, "$"); ok && !strings.HasSuffix(rest, `\`) {
		suffix, re = "$", rest
	}
	pattern := prefix + "(?:" + re + ")" + suffix
	_, err := regexp.Compile(pattern)
	return pattern, err == nil
}

// accessTarget is what serves the URL paths under url from file: an
// application, an alias, the DocumentRoot, or a Directory inside one of
// theirs.
type accessTarget struct{ url, file string }

// writeAccess writes the Require all, ip and local rules as a 403 for the
// clients they keep out. A URL path gets the rule of the last <Location>
// that covers it and has one, else that of the innermost <Directory> or
// <Files> around the file that serves it, as Apache merges them; a scope
// with no rule lets everyone in.
func (m *migration) writeAccess(w *caddyfileWriter, s *migratedSite, rootApp bool) {
	var targets []accessTarget
	for _, sc := range s.scripts {
		targets = append(targets, accessTarget{sc.mount, sc.file})
	}
	for _, a := range s.aliases {
		targets = append(targets, accessTarget{a[0], a[1]})
	}
	if s.docRoot != "" && !rootApp {
		targets = append(targets, accessTarget{"/", s.docRoot})
	}
	var locations []*scopeSection
	for _, sec := range s.sections {
		switch {
		case sec.props.access == nil:
		case sec.kind == "location":
			locations = append(locations, sec)
		case sec.kind == "directory":
			for _, t := range slices.Clone(targets) {
				if rel, err := filepath.Rel(t.file, sec.path); err == nil && rel != "." && isUnder(sec.path, t.file) {
					targets = append(targets, accessTarget{path.Join(t.url, rel), sec.path})
				}
			}
		}
	}
	rules := 0
	write := func(urls, except []string, a *accessRule) {
		name := "@access" + strconv.Itoa(rules)
		rules++
		w.line(1, name, "{")
		w.line(2, append([]string{"path"}, w.tokens(urls)...)...)
		if len(except) > 0 {
			w.line(2, append([]string{"not", "path"}, w.tokens(slices.Compact(except))...)...)
		}
		if len(a.ips) > 0 {
			w.line(2, append([]string{"not", "remote_ip"}, a.ips...)...)
		}
		w.line(1, "}")
		w.line(1, "respond", name, "403")
	}
	for _, pattern := range s.deniedFiles {
		name := "@access" + strconv.Itoa(rules)
		rules++
		w.line(1, name, "path_regexp", w.token(pattern))
		w.line(1, "respond", name, "403")
	}
	for _, t := range targets {
		a := m.fileAccess(s, t.file)
		if !a.restricts() {
			continue
		}
		var except []string
		for _, o := range targets {
			if o.url != t.url && urlUnder(o.url, t.url) {
				except = append(except, underURL(o.url)...)
			}
		}
		for _, l := range locations {
			except = append(except, underURL(l.path)...)
		}
		write(underURL(t.url), except, a)
	}
	for i, l := range locations {
		if !l.props.access.restricts() {
			continue
		}
		var except []string
		overridden := false
		for _, later := range locations[i+1:] {
			if urlUnder(l.path, later.path) {
				overridden = true
			} else if urlUnder(later.path, l.path) {
				except = append(except, underURL(later.path)...)
			}
		}
		if !overridden {
			write(underURL(l.path), except, l.props.access)
		}
	}
}

// fileAccess is the rule that the Directory and Files sections around file
// set for it: the innermost one's.
func (m *migration) fileAccess(s *migratedSite, file string) *accessRule {
	var a *accessRule
	depth := -1
	for _, sec := range s.sections {
		if sec.props.access == nil || !sec.applies(file) {
			continue
		}
		// Files sections merge after every Directory.
		d := len(sec.path)
		if sec.kind == "files" {
			d = 1 << 30
		}
		if d >= depth {
			a, depth = sec.props.access, d
		}
	}
	return a
}

// underURL is the path matcher's patterns for a URL path and what is under
// it.
func underURL(urlPath string) []string {
	urlPath = strings.TrimRight(urlPath, "/")
	return []string{cmp.Or(urlPath, "/"), urlPath + "/*"}
}

// urlUnder says whether the URL path child is parent or under it.
func urlUnder(child, parent string) bool {
	child, parent = strings.TrimRight(child, "/"), strings.TrimRight(parent, "/")
	return parent == "" || child == parent || strings.HasPrefix(child, parent+"/")
}

// writeNotFound answers 404 for the paths that no alias or application
// serves, as Apache does from an empty DocumentRoot; Caddy would answer an
// empty 200. A not matcher, because error is ordered before wsgi_script.
func (m *migration) writeNotFound(w *caddyfileWriter, s *migratedSite) {
	var served []string
	for _, a := range s.aliases {
		served = append(served, aliasPattern(a[0]))
	}
	for _, sc := range s.scripts {
		served = append(served, aliasPattern(strings.TrimRight(sc.mount, "/")))
	}
	if len(served) == 0 {
		w.line(1, "error", "404")
		return
	}
	w.line(1, "@unserved", "not", "path_regexp", w.token("^("+strings.Join(served, "|")+")$"))
	w.line(1, "error", "@unserved", "404")
}

// aliasPattern is the regular expression for the paths that an Alias or
// WSGIScriptAlias of urlPath serves: urlPath and below it, or only below it
// if it ends in a slash.
func aliasPattern(urlPath string) string {
	if strings.HasSuffix(urlPath, "/") {
		return regexp.QuoteMeta(urlPath) + ".*"
	}
	return regexp.QuoteMeta(urlPath) + "(/.*)?"
}

// writeTLS writes the tls directive of an SSL site.
func (m *migration) writeTLS(w *caddyfileWriter, s *migratedSite) {
	if !s.ssl {
		return
	}
	var args []string
	if !m.autoHTTPS || len(s.names) == 0 {
		if s.cert == "" || s.key == "" {
			if s.vhost != nil {
				m.problem(s, s.vhost, "SSLEngine on needs SSLCertificateFile and SSLCertificateKeyFile, or --auto-https")
			}
			return
		}
		args = []string{w.token(s.cert), w.token(s.key)}
	}
	mode := map[string]string{"require": "require_and_verify", "optional": "verify_if_given"}[s.verify]
	if mode == "" || s.clientCA == "" {
		if len(args) > 0 {
			w.line(1, append([]string{"tls"}, args...)...)
		}
		return
	}
	w.line(1, append(append([]string{"tls"}, args...), "{")...)
	w.line(2, "client_auth", "{")
	w.line(3, "mode", mode)
	w.line(3, "trust_pool", "file", w.token(s.clientCA))
	w.line(2, "}")
	w.line(1, "}")
}

// writeSection writes what a section sets for the URLs in it: basic_auth
// and request_body.
func (m *migration) writeSection(w *caddyfileWriter, s *migratedSite, sec *scopeSection, i int) {
	if sec.props.auth == nil && sec.props.limitBody == "" {
		return
	}
	urls := m.sectionURLs(s, sec)
	if len(urls) == 0 {
		return
	}
	matcher := "@scope" + strconv.Itoa(i)
	w.line(1, append([]string{matcher, "path"}, w.tokens(urls)...)...)
	if sec.props.limitBody != "" {
		w.line(1, "request_body", matcher, "{")
		w.line(2, "max_size", w.token(sec.props.limitBody))
		w.line(1, "}")
	}
	if sec.props.auth != nil {
		m.writeAuth(w, s, sec.props.auth, matcher)
	}
}

// sectionURLs are the URL paths (path matcher patterns) that a section
// covers: a Location's, or those where a Directory's files are served.
func (m *migration) sectionURLs(s *migratedSite, sec *scopeSection) []string {
	under := underURL
	if sec.kind == "location" {
		return under(sec.path)
	}
	var urls []string
	for _, sc := range s.scripts {
		if sec.applies(sc.file) {
			urls = append(urls, under(sc.mount)...)
		}
	}
	for _, a := range s.aliases {
		if sec.applies(a[1]) || sec.kind == "directory" && isUnder(sec.path, a[1]) {
			rel, _ := filepath.Rel(a[1], sec.path)
			if rel == "." || strings.HasPrefix(rel, "..") {
				rel = ""
			}
			urls = append(urls, under(path.Join(a[0], rel))...)
		}
	}
	if s.docRoot != "" && sec.kind == "directory" && (isUnder(sec.path, s.docRoot) || isUnder(s.docRoot, sec.path)) {
		rel, _ := filepath.Rel(s.docRoot, sec.path)
		if strings.HasPrefix(rel, "..") {
			rel = ""
		}
		urls = append(urls, under(path.Join("/", rel))...)
	}
	return slices.Compact(urls)
}

// applies says whether a Directory or Files section covers file.
func (sec *scopeSection) applies(file string) bool {
	if sec.kind == "files" {
		return filepath.Base(file) == sec.file && (sec.path == "" || isUnder(file, sec.path))
	}
	return sec.kind == "directory" && isUnder(file, sec.path)
}

// isUnder says whether file is dir or inside it.
func isUnder(file, dir string) bool {
	rel, err := filepath.Rel(dir, filepath.Clean(file))
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}

// writeAuth writes basic_auth for AuthType Basic with an AuthUserFile,
// with the users that Require lets in whose passwords are bcrypt hashes,
// the only kind Caddy checks.
func (m *migration) writeAuth(w *caddyfileWriter, s *migratedSite, a *basicAuth, matcher string) {
	if !a.basic {
		return
	}
	if a.userFile == "" || a.require == nil {
		m.problem(s, a.d, "basic authentication is translated with an AuthUserFile and Require valid-user or user")
		return
	}
	accounts, others, err := readHtpasswd(a.userFile, a.require)
	if err != nil {
		m.problem(s, a.d, err.Error())
		return
	}
	if len(others) > 0 {
		m.problem(s, a.d, fmt.Sprintf("%s: the passwords of %s are not bcrypt hashes, the only kind Caddy's basic_auth takes: set them again with htpasswd -B or caddy hash-password", a.userFile, strings.Join(others, ", ")))
	}
	if len(accounts) == 0 {
		return
	}
	args := []string{"basic_auth"}
	if matcher != "" {
		args = append(args, matcher)
	}
	args = append(args, "bcrypt")
	if a.realm != "" {
		args = append(args, w.token(a.realm))
	}
	w.line(1, append(args, "{")...)
	for _, acc := range accounts {
		w.line(2, w.token(acc[0]), w.token(acc[1]))
	}
	w.line(1, "}")
}

// readHtpasswd reads the accounts of an htpasswd file that require lets in
// (every one if it is empty): those with bcrypt hashes, and the names of the
// others.
func readHtpasswd(file string, require []string) (accounts [][2]string, others []string, err error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		user, hash, ok := strings.Cut(strings.TrimSpace(sc.Text()), ":")
		if !ok || strings.HasPrefix(user, "#") || len(require) > 0 && !slices.Contains(require, user) {
			continue
		}
		if strings.HasPrefix(hash, "$2") {
			accounts = append(accounts, [2]string{user, hash})
		} else {
			others = append(others, user)
		}
	}
	return accounts, others, sc.Err()
}

// scriptProps are what the scopes around a script set for it. Its group
// gets script_reloading off from it.
func (m *migration) scriptProps(s *migratedSite, sc *migratedScript) scopeProps {
	p := s.base
	mount := strings.TrimRight(sc.mount, "/")
	// Directories from the outermost in, then Files, then Locations in
	// order, as Apache merges them.
	sections := slices.Clone(s.sections)
	slices.SortStableFunc(sections, func(a, b *scopeSection) int {
		rank := map[string]int{"directory": 0, "files": 1, "location": 2}
		if c := cmp.Compare(rank[a.kind], rank[b.kind]); c != 0 || a.kind != "directory" {
			return c
		}
		return cmp.Compare(len(a.path), len(b.path))
	})
	for _, sec := range sections {
		loc := strings.TrimRight(sec.path, "/")
		switch {
		case sec.applies(sc.file) || sec.kind == "location" && (loc == "" || mount == loc || strings.HasPrefix(mount, loc+"/")):
			p = p.merge(sec.props)
		case sec.kind == "location" && strings.HasPrefix(loc, mount+"/") && sec.props.processGroup != "":
			m.problem(s, sec.d, "a mount point runs in one group: give "+loc+" a wsgi_script of its own to run it in "+sec.props.processGroup)
		}
	}
	p = p.merge(sc.inline)
	if p.reloading == "off" && p.daemonMode() {
		for _, g := range m.groups {
			if g.name == p.processGroup && !g.has("script_reloading") {
				g.settings = append(g.settings, []string{"script_reloading", "off"})
			}
		}
	}
	return p
}

// writeScript writes a wsgi_script with the settings p: its process group,
// else (embedded mode in mod_wsgi) the server's Python and user as its own
// group's.
func (m *migration) writeScript(w *caddyfileWriter, sc *migratedScript, p scopeProps) {
	w.line(1, "wsgi_script", w.token(sc.mount), w.token(sc.file), "{")
	if p.daemonMode() {
		w.line(2, "process_group", w.token(p.processGroup))
	} else {
		if m.pythonHome != "" {
			w.line(2, "python_home", w.token(m.pythonHome))
		}
		if len(m.pythonPath) > 0 {
			w.line(2, append([]string{"python_path"}, w.tokens(m.pythonPath)...)...)
		}
		if m.user != "" {
			w.line(2, "user", w.token(m.user))
			if m.group != "" {
				w.line(2, "group", w.token(m.group))
			}
		}
		if p.reloading == "off" {
			w.line(2, "script_reloading", "off")
		}
	}
	if p.callable != "" && p.callable != "application" {
		w.line(2, "callable_object", w.token(p.callable))
	}
	if p.passAuth == "on" {
		w.line(2, "pass_authorization", "on")
	}
	w.line(1, "}")
}

// path makes a relative path in the configuration absolute, as Apache
// reads it: relative to the ServerRoot.
func (m *migration) path(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(m.serverRoot, p)
}

// oneArg says whether d has one argument, and reports it if not.
func (m *migration) oneArg(d *apacheconf.Directive) bool {
	if len(d.Args) == 1 {
		return true
	}
	m.problem(nil, d, fmt.Sprintf("takes one argument, got %d", len(d.Args)))
	return false
}

// untranslated reports a directive that no translation knows.
func (m *migration) untranslated(s *migratedSite, d *apacheconf.Directive) {
	reason := "no translation for this directive"
	switch {
	case strings.HasPrefix(strings.ToLower(d.Name), "rewrite"):
		reason = "mod_rewrite rules are not translated: see Caddy's rewrite, redir and handle directives"
	case strings.HasSuffix(strings.ToLower(d.Name), "aliasmatch"):
		reason = "mounts by regular expression are not translated: write a wsgi_script or wsgi_alias for each path"
	case strings.HasPrefix(strings.ToLower(d.Name), "wsgiauth"), strings.EqualFold(d.Name, "WSGIAccessScript"):
		reason = "caddy-wsgi has no Python authentication hooks"
	case strings.EqualFold(d.Name, "Order") || strings.EqualFold(d.Name, "Allow") || strings.EqualFold(d.Name, "Deny"):
		reason = "access control other than allowing everyone is not translated: see Caddy's remote_ip matcher"
	case strings.EqualFold(d.Name, "SSLCertificateChainFile"):
		reason = "append the chain to the SSLCertificateFile: tls reads the chain from the certificate file"
	case strings.HasPrefix(d.Name, "SSL"):
		reason = "Caddy's TLS defaults apply; see the tls directive"
	case strings.HasSuffix(d.Name, "Log") || d.Name == "LogFormat":
		reason = "Caddy logs to stderr; see the log directive"
	case d.IsSection():
		reason = "this kind of section is not translated"
	}
	m.problem(s, d, reason)
}

// problem reports d as not translated and copies it into the Caddyfile as
// comments: into the site's block, or before the sites for s nil.
func (m *migration) problem(s *migratedSite, d *apacheconf.Directive, reason string) {
	m.optionProblem(s, d, d.Text, reason)
}

// optionProblem is problem for a part of d, text: one of its options.
func (m *migration) optionProblem(s *migratedSite, d *apacheconf.Directive, text, reason string) {
	key := fmt.Sprintf("%s:%d: %s", d.File, d.Line, text)
	if m.reported[key] {
		return
	}
	m.reported[key] = true
	m.problems = append(m.problems, migrationProblem{d, reason})
	if text != d.Text {
		text = d.Name + " ... " + text
	}
	lines := []string{fmt.Sprintf("not translated (%s:%d): %s", d.File, d.Line, text)}
	lines = append(lines, sectionLines(d.Block, "  ")...)
	if d.IsSection() {
		lines = append(lines, "</"+d.Name+">")
	}
	if s != nil {
		s.comments = append(s.comments, lines...)
	} else {
		m.comments = append(m.comments, lines...)
	}
}

// sectionLines are the lines of a section's directives, indented.
func sectionLines(ds []*apacheconf.Directive, indent string) []string {
	var lines []string
	for _, d := range ds {
		lines = append(lines, indent+d.Text)
		if d.IsSection() {
			lines = append(lines, sectionLines(d.Block, indent+"  ")...)
			lines = append(lines, indent+"</"+d.Name+">")
		}
	}
	return lines
}

// apacheIPRange is a Require ip argument as Caddy's remote_ip takes it: an
// address, a full (10.1.0.0/16) or partial (10.1) network, or one with a
// netmask (10.1.0.0/255.255.0.0).
func apacheIPRange(arg string) (string, bool) {
	if addr, bits, ok := strings.Cut(arg, "/"); ok {
		if mask := net.ParseIP(bits); mask != nil && mask.To4() != nil {
			ones, size := net.IPMask(mask.To4()).Size()
			if size == 0 {
				return "", false
			}
			bits = strconv.Itoa(ones)
		}
		prefix, err := netip.ParsePrefix(addr + "/" + bits)
		return prefix.Masked().String(), err == nil
	}
	if ip, err := netip.ParseAddr(arg); err == nil {
		return ip.String(), true
	}
	parts := strings.Split(strings.TrimSuffix(arg, "."), ".")
	if len(parts) > 3 {
		return "", false
	}
	octets := []string{"0", "0", "0", "0"}
	for i, part := range parts {
		if n, err := strconv.Atoi(part); err != nil || n < 0 || n > 255 || part != strconv.Itoa(n) {
			return "", false
		}
		octets[i] = part
	}
	return strings.Join(octets, ".") + "/" + strconv.Itoa(8*len(parts)), true
}
