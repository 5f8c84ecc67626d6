package caddywsgi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/fileserver"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/rewrite"
)

func init() {
	// RegisterDirective, not RegisterHandlerDirective: the latter would read
	// the mount point or URL path, which starts with a slash, as a path
	// matcher.
	httpcaddyfile.RegisterDirective("wsgi_alias", parseWSGIAlias)
	httpcaddyfile.RegisterDirective("wsgi_script", parseWSGIScript)
	httpcaddyfile.RegisterHandlerDirective("wsgi_status", parseWSGIStatus)
	// Plugins may only order directives relative to Caddy's own, and each
	// goes just before file_server: wsgi_status first, so that its path
	// wins over an application mounted at /, then wsgi_alias, so that it
	// ends up before wsgi_script and an alias wins over an application
	// mounted above it, as Apache's Alias does over WSGIScriptAlias.
	httpcaddyfile.RegisterDirectiveOrder("wsgi_status", httpcaddyfile.Before, "file_server")
	httpcaddyfile.RegisterDirectiveOrder("wsgi_alias", httpcaddyfile.Before, "file_server")
	httpcaddyfile.RegisterDirectiveOrder("wsgi_script", httpcaddyfile.Before, "file_server")
	httpcaddyfile.RegisterGlobalOption("wsgi_daemon", parseWSGIDaemon)
}

// parseWSGIScript sets up a WSGI application at a mount point, the way
// Apache's WSGIScriptAlias does:
//
//	wsgi_script <mount-point> <script-path | module:callable> [<setting>=<value> ...] {
//	    process_group   <name>
//	    callable_object <name>
//	    document_root   <directory>
//	    <setting>       <value...>
//	}
//
// The mount point /app serves /app and everything under /app/, but not
// /application, nor /APP (as in Apache). Without process_group, the settings
// (those of wsgi_daemon) make up the application's own daemon group.
//
// With document_root, as with mod_wsgi-express's --document-root, a request
// under the mount point that names a regular file in the directory is served
// by file_server (/app/style.css is <directory>/style.css) and everything
// else goes to the application: FrankenPHP's php_server pattern, a file
// matcher then file_server, else the application.
func parseWSGIScript(h httpcaddyfile.Helper) ([]httpcaddyfile.ConfigValue, error) {
	groups, err := definedGroups(h)
	if err != nil {
		return nil, err
	}
	handler := new(Handler)
	opts := directiveOptions{groups: groups}
	if err := handler.unmarshalCaddyfile(h.Dispenser, &opts); err != nil {
		return nil, err
	}
	if handler.ProcessGroup == "" {
		handler.Site = siteAddress(h)
	}
	mount := strings.TrimRight(handler.MountPoint, "/")
	if opts.documentRoot != "" {
		return documentRootRoute(h, handler, mount, opts.documentRoot), nil
	}
	if mount == "" {
		return h.NewRoute(nil, handler), nil
	}
	// The path matcher ignores case; the handler passes a path that is not
	// under the mount point in the same case on to the routes after it.
	matcher := caddy.ModuleMap{"path": caddyconfig.JSON(caddyhttp.MatchPath{mount, mount + "/*"}, nil)}
	return h.NewRoute(matcher, handler), nil
}

// siteAddress returns the first address of the site block h is in, "" if
// it cannot tell. The Helper keeps its block to itself: its keys are read by
// reflection, read-only (TestImplicitGroupPerMount fails when a Caddy
// upgrade moves them).
func siteAddress(h httpcaddyfile.Helper) string {
	keys := reflect.ValueOf(h).FieldByName("parentBlock").FieldByName("Keys")
	if !keys.IsValid() || keys.Kind() != reflect.Slice || keys.Len() == 0 {
		return ""
	}
	text := keys.Index(0).FieldByName("Text")
	if text.Kind() != reflect.String {
		return ""
	}
	return text.String()
}

// directiveOptions holds the wsgi_script options that are not the handler's
// own: they expand into routes around it.
type directiveOptions struct {
	documentRoot string
	// The daemon groups the Caddyfile defines, for process_group to name:
	// checked here, the error can give the file and line.
	groups map[string]*DaemonGroup
}

// documentRootPathRegexp names the path_regexp matcher whose first group is
// the request's path below the mount point.
const documentRootPathRegexp = "wsgi_document_root"

// documentRootRoute is a wsgi_script with a document root: one route, so that
// the directive's routes sort as a unit (a mount point of / last), whose
// subroute serves an existing regular file under the mount point from the
// document root and passes every other request to the application, with its
// path untouched.
func documentRootRoute(h httpcaddyfile.Helper, handler *Handler, mount, root string) []httpcaddyfile.ConfigValue {
	try := "{http.request.uri.path}"
	var outer []caddy.ModuleMap
	var serve []json.RawMessage
	if mount != "" {
		// The path matcher has no placeholder for the path below the mount
		// point, which the file matcher needs, so this route matches the
		// requests the handler serves (mount and mount/*, on the cleaned
		// path) with a regular expression that captures it. It sits on the
		// outer route because the matchers of one set run in no fixed order.
		outer = []caddy.ModuleMap{pathRegexp(h, documentRootPathRegexp, regexp.QuoteMeta(mount)+"(/.*)?")}
		try = "{http.regexp." + documentRootPathRegexp + ".1}"
		// Only on the way to file_server: the application keeps its path,
		// and with it SCRIPT_NAME and PATH_INFO.
		serve = append(serve, caddyconfig.JSONModuleObject(rewrite.Rewrite{StripPathPrefix: mount}, "handler", "rewrite", nil))
	}
	serve = append(serve, caddyconfig.JSONModuleObject(fileServer(h, root), "handler", "file_server", nil))
	subroute := caddyhttp.Subroute{Routes: caddyhttp.RouteList{
		{
			// A try_files entry without a trailing slash matches only a
			// regular file: a directory goes to the application.
			MatcherSetsRaw: []caddy.ModuleMap{{"file": h.JSON(fileserver.MatchFile{Root: root, TryFiles: []string{try}})}},
			HandlersRaw:    serve,
		},
		{HandlersRaw: []json.RawMessage{caddyconfig.JSONModuleObject(handler, "handler", "wsgi", nil)}},
	}}
	return []httpcaddyfile.ConfigValue{{Class: "route", Value: caddyhttp.Route{
		MatcherSetsRaw: outer,
		HandlersRaw:    []json.RawMessage{caddyconfig.JSONModuleObject(subroute, "handler", "subroute", nil)},
	}}}
}

// pathRegexp is a path_regexp matcher named name for the cleaned paths that
// pattern matches whole, case-sensitively as Apache's Alias and
// WSGIScriptAlias match, where Caddy's path matcher ignores case.
func pathRegexp(h httpcaddyfile.Helper, name, pattern string) caddy.ModuleMap {
	return caddy.ModuleMap{"path_regexp": h.JSON(caddyhttp.MatchPathRE{MatchRegexp: caddyhttp.MatchRegexp{
		Name: name, Pattern: "(?s)^" + pattern + "$",
	}})}
}

// aliasUsage is wsgi_alias's syntax, for its error messages.
const aliasUsage = "wsgi_alias <url-path> <file-or-directory>"

// aliasPathRegexp names wsgi_alias's path_regexp matchers.
const aliasPathRegexp = "wsgi_alias"

// parseWSGIAlias serves a file or a directory at a URL path with
// file_server, as Apache's Alias does beside WSGIScriptAlias:
//
//	wsgi_alias <url-path> <file-or-directory>
//
// It is ordered before wsgi_script, so an alias takes precedence over an
// application mounted above it. As in Apache, /static serves /static and
// everything under /static/, while /static/ leaves /static itself to the
// application; a missing file is a 404, never passed to the application,
// and a directory without an index.html is a 404 (no listing). A request
// for the directory without its trailing slash is redirected to add it, as
// Apache's mod_dir does. Aliases are tried in the order written, as in
// Apache: write a more specific one first. URL paths match case-sensitively,
// as in Apache.
func parseWSGIAlias(h httpcaddyfile.Helper) ([]httpcaddyfile.ConfigValue, error) {
	h.Next() // the directive's name
	args := h.RemainingArgs()
	if len(args) != 2 {
		return nil, h.Errf("wsgi_alias takes a URL path and a file or directory, got %d argument(s): want %s", len(args), aliasUsage)
	}
	if h.NextBlock(0) {
		return nil, h.Errf("wsgi_alias takes no block: want %s", aliasUsage)
	}
	urlPath, target := args[0], args[1]
	if !strings.HasPrefix(urlPath, "/") {
		return nil, h.Errf("wsgi_alias: the URL path %q must start with /: want %s", urlPath, aliasUsage)
	}
	if strings.Contains(urlPath, "*") {
		// The path matcher would read it as a wildcard; Apache's Alias
		// takes the path literally.
		return nil, h.Errf("wsgi_alias: the URL path %q must not contain *: want %s", urlPath, aliasUsage)
	}
	if target == "" {
		return nil, h.Errf("wsgi_alias: empty file or directory: want %s", aliasUsage)
	}
	prefix := strings.TrimRight(urlPath, "/")
	root := strings.TrimRight(target, "/")
	if root == "" {
		root = "/"
	}

	// file_server maps the path below the prefix into root: the file itself
	// for a file alias, a file inside it for a directory. Rooting it at the
	// target is what keeps .. and its encodings from escaping the target.
	var serve []json.RawMessage
	if prefix != "" {
		serve = append(serve, caddyconfig.JSONModuleObject(rewrite.Rewrite{StripPathPrefix: prefix}, "handler", "rewrite", nil))
	}
	serve = append(serve, caddyconfig.JSONModuleObject(fileServer(h, root), "handler", "file_server", nil))
	routes := caddyhttp.RouteList{{HandlersRaw: serve}}

	var matcher caddy.ModuleMap
	switch {
	case prefix == "":
		// wsgi_alias / <dir>: every request.
	case strings.HasSuffix(urlPath, "/"):
		matcher = pathRegexp(h, aliasPathRegexp, regexp.QuoteMeta(prefix)+"/.*")
	default:
		matcher = pathRegexp(h, aliasPathRegexp, regexp.QuoteMeta(prefix)+"(/.*)?")
		if root != "/" {
			// The prefix itself, when the target is a directory: redirect to
			// prefix/ so that relative links in its index resolve inside it.
			// The file matcher checks the directory from its parent, as only
			// a try_files entry ending in a slash matches a directory.
			redirect := caddyhttp.StaticResponse{
				StatusCode: caddyhttp.WeakString(strconv.Itoa(http.StatusPermanentRedirect)),
				Headers: http.Header{"Location": []string{
					(&url.URL{Path: prefix + "/"}).EscapedPath() + "{http.request.orig_uri.prefixed_query}",
				}},
			}
			dir := pathRegexp(h, aliasPathRegexp, regexp.QuoteMeta(prefix))
			dir["file"] = h.JSON(fileserver.MatchFile{Root: path.Dir(root), TryFiles: []string{"/" + path.Base(root) + "/"}})
			routes = append(caddyhttp.RouteList{{
				MatcherSetsRaw: []caddy.ModuleMap{dir},
				HandlersRaw:    []json.RawMessage{caddyconfig.JSONModuleObject(redirect, "handler", "static_response", nil)},
			}}, routes...)
		}
	}
	route := caddyhttp.Route{HandlersRaw: serve}
	if len(routes) > 1 {
		route.HandlersRaw = []json.RawMessage{caddyconfig.JSONModuleObject(caddyhttp.Subroute{Routes: routes}, "handler", "subroute", nil)}
	}
	if matcher != nil {
		route.MatcherSetsRaw = []caddy.ModuleMap{matcher}
	}
	return []httpcaddyfile.ConfigValue{{Class: "route", Value: route}}, nil
}

// fileServer serves files from root and, as the file_server directive does,
// hides the Caddyfiles of the site, in case they live under root.
func fileServer(h httpcaddyfile.Helper, root string) *fileserver.FileServer {
	fsrv := &fileserver.FileServer{Root: root}
	for _, file := range h.Caddyfiles() {
		file = filepath.Clean(file)
		// Without a separator, file_server would hide every file of that
		// name, not this one.
		if !strings.Contains(file, string(filepath.Separator)) {
			file = "." + string(filepath.Separator) + file
		}
		fsrv.Hide = append(fsrv.Hide, file)
	}
	return fsrv
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens; see
// parseWSGIScript for the syntax. document_root is not accepted: it expands
// into routes around the handler, which only the wsgi_script directive
// builds.
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	return h.unmarshalCaddyfile(d, nil)
}

// unmarshalCaddyfile is UnmarshalCaddyfile that stores the directive's own
// options in opts, if not nil.
func (h *Handler) unmarshalCaddyfile(d *caddyfile.Dispenser, opts *directiveOptions) error {
	d.Next() // the directive's name
	if !d.Args(&h.MountPoint, &h.App) {
		return d.ArgErr()
	}
	if !strings.HasPrefix(h.MountPoint, "/") {
		return d.Errf("the mount point %q must start with /", h.MountPoint)
	}
	for d.NextArg() {
		if strings.Contains(h.App, ":") && strings.Count(h.App, "(") > strings.Count(h.App, ")") {
			return d.Errf("the application %q is cut short at a space: quote an application factory call that has spaces, "+
				`as in "myapp:create_app('production', debug=False)"`, h.App)
		}
		name, value, ok := strings.Cut(d.Val(), "=")
		if !ok {
			return d.Errf("wsgi_script: %q: want name=value", d.Val())
		}
		if err := h.setScriptOption(name, []string{value}, d.Val(), opts); err != nil {
			return d.Errf("wsgi_script: %v", err)
		}
	}
	for d.NextBlock(0) {
		if err := h.setScriptOption(d.Val(), d.RemainingArgs(), "", opts); err != nil {
			return d.Errf("wsgi_script: %v", err)
		}
	}
	return nil
}

// scriptOptions are wsgi_script's own options, besides its daemon group's
// settings.
var scriptOptions = []string{"application_type", "callable_object", "document_root", "pass_authorization", "process_group"}

// setScriptOption applies one wsgi_script option: one of scriptOptions, or
// a setting of its daemon group. inline is the name=value token for the
// inline form; opts receives the directive's own options, and is nil where
// there is no directive.
func (h *Handler) setScriptOption(name string, args []string, inline string, opts *directiveOptions) error {
	switch name = strings.ReplaceAll(name, "-", "_"); name {
	case "document_root":
		if opts == nil {
			return fmt.Errorf("document_root belongs to the wsgi_script directive, which expands it into routes; in JSON, write a route with a file matcher and file_server before the wsgi handler")
		}
		if len(args) != 1 || args[0] == "" {
			return fmt.Errorf("document_root takes one directory")
		}
		if opts.documentRoot != "" {
			return fmt.Errorf("document_root is set twice")
		}
		opts.documentRoot = args[0]
		return nil
	case "process_group", "callable_object", "application_type":
		if len(args) != 1 || args[0] == "" {
			return fmt.Errorf("%s takes one value", name)
		}
		switch name {
		case "process_group":
			if opts != nil {
				if err := checkProcessGroup(args[0], opts.groups); err != nil {
					return err
				}
			}
			h.ProcessGroup = args[0]
		case "callable_object":
			h.CallableObject = args[0]
		default:
			h.ApplicationType = args[0]
		}
		return nil
	case "pass_authorization":
		var err error
		h.PassAuthorization, err = onOff(name, args)
		return err
	}
	if lookupSetting(name) == nil {
		return unknownSetting("option", name, scriptOptions)
	}
	if inline != "" {
		return h.DaemonGroup.setInline(inline)
	}
	return h.DaemonGroup.set(name, args)
}

// parseWSGIDaemon defines a daemon process group, as Apache's
// WSGIDaemonProcess does, in either form:
//
//	wsgi_daemon <name> [<setting>=<value> ...]
//	wsgi_daemon <name> {
//	    <setting> <value...>
//	}
func parseWSGIDaemon(d *caddyfile.Dispenser, existing any) (any, error) {
	app := App{Groups: map[string]*DaemonGroup{}}
	if existing != nil {
		if err := json.Unmarshal(existing.(httpcaddyfile.App).Value, &app); err != nil {
			return nil, err
		}
	}
	d.Next() // the option's name
	var name string
	if !d.Args(&name) {
		return nil, d.ArgErr()
	}
	if _, dup := app.Groups[name]; dup {
		return nil, d.Errf("wsgi_daemon %s is defined twice", name)
	}
	group := new(DaemonGroup)
	for d.NextArg() {
		if err := group.setInline(d.Val()); err != nil {
			return nil, d.Errf("wsgi_daemon %s: %v", name, err)
		}
	}
	for d.NextBlock(0) {
		if err := group.set(d.Val(), d.RemainingArgs()); err != nil {
			return nil, d.Errf("wsgi_daemon %s: %v", name, err)
		}
	}
	app.Groups[name] = group
	return httpcaddyfile.App{Name: "wsgi", Value: caddyconfig.JSON(app, nil)}, nil
}

// definedGroups returns the daemon groups that the Caddyfile's wsgi_daemon
// global options define, which are parsed before the site blocks.
func definedGroups(h httpcaddyfile.Helper) (map[string]*DaemonGroup, error) {
	option, ok := h.Option("wsgi_daemon").(httpcaddyfile.App)
	if !ok {
		return nil, nil
	}
	var app App
	err := json.Unmarshal(option.Value, &app)
	return app.Groups, err
}

// Interface guards
var _ caddyfile.Unmarshaler = (*Handler)(nil)
