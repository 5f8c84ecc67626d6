// Package caddywsgi provides the Caddy modules of caddy-wsgi: the
// http.handlers.wsgi handler, which serves a WSGI application from a pool of
// Python worker processes, and its Caddyfile directives.
package caddywsgi

import (
	"cmp"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/caddy-wsgi/caddy-wsgi/pool"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// Handler serves a WSGI application, the way Apache's WSGIScriptAlias does
// with a mod_wsgi daemon process group: requests under MountPoint go to a pool
// of Python processes x threads running the application.
type Handler struct {
	// The URL path the application is mounted at. It becomes SCRIPT_NAME, and
	// the rest of the path becomes PATH_INFO. A request not under it
	// (compared case-sensitively, as Apache's WSGIScriptAlias does) goes on
	// to the next handler. Default: "/" (SCRIPT_NAME empty).
	MountPoint string `json:"mount_point,omitempty"`

	// The application: the path of a WSGI script file (loaded the way
	// mod_wsgi loads one), or "package.module:callable", where the callable
	// may be an application factory's call with literal arguments,
	// "package.module:create_app('production')", made once per process.
	App string `json:"app,omitempty"`

	// The name of the WSGI callable in a script file. Default: the group's
	// callable_object, else "application".
	CallableObject string `json:"callable_object,omitempty"`

	// How to load app: "script" (a WSGI script file), "module"
	// (package.module:callable, imported) or "paste" (a PasteDeploy .ini
	// file; the interpreter needs the PasteDeploy package). Default:
	// "module" if app has the module:callable form, else "script".
	ApplicationType string `json:"application_type,omitempty"`

	// Whether the request's Authorization header reaches the application as
	// HTTP_AUTHORIZATION, as WSGIPassAuthorization On does. Default: off, as
	// in mod_wsgi, so that credentials Caddy checks stay with Caddy.
	PassAuthorization bool `json:"pass_authorization,omitempty"`

	// The daemon process group (defined in the wsgi app, the Caddyfile's
	// wsgi_daemon) to run the application in. Without one, the handler's own
	// settings below make up its group, which no other handler shares, as
	// mod_wsgi gives each mount point of each host its own interpreter. That
	// group is named after the site and the mount point ("example.com/blog"),
	// or without a site after the mount point and the app ("/blog
	// /srv/blog.wsgi"); a later handler of the config that would get the same
	// name gets "... #2".
	ProcessGroup string `json:"process_group,omitempty"`

	// The site the handler belongs to, as the Caddyfile writes its first
	// address ("example.com", ":8080"), which names the handler's own
	// daemon group. The Caddyfile adapter fills it in.
	Site string `json:"site,omitempty"`

	// The settings of the handler's own group, when process_group is empty.
	DaemonGroup

	scriptName     string
	requestTimeout time.Duration
	run            *groupRun
	appIndex       uint16 // in the group's applications
	flight         *inflight
	logger         *zap.Logger
	// Whether the server may write an access log, which gets the wsgi_*
	// fields: adding them costs allocations per request.
	accessLog bool
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.wsgi",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision registers the application with its daemon group, whose
// processes the wsgi app starts.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.scriptName = strings.TrimRight(h.MountPoint, "/")
	appIface, err := ctx.App("wsgi")
	if err != nil {
		return err
	}
	wsgiApp := appIface.(*App)
	group, err := h.group(wsgiApp)
	if err != nil {
		return err
	}
	callable := h.CallableObject
	if callable == "" {
		callable = group.CallableObject
	}
	app, err := resolveApp(h.App, callable, h.ApplicationType)
	if err != nil {
		return err
	}
	mount := cmp.Or(h.scriptName, "/")
	name := h.ProcessGroup
	if name == "" {
		name = wsgiApp.implicitName(h.implicitGroupName(app, mount))
	}
	h.logger = ctx.Logger().With(zap.String("group", name))
	h.requestTimeout = time.Duration(group.RequestTimeout)
	h.flight = newInflight(cmp.Or(time.Duration(group.GracefulTimeout), pool.DefaultGracefulTimeout))
	h.accessLog = true
	if srv, ok := ctx.Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server); ok {
		srv.RegisterOnShutdown(h.flight.serverShutdown)
		h.accessLog = srv.Logs != nil
	}
	h.run, h.appIndex, err = wsgiApp.register(name, group, app, mount)
	if err != nil {
		return fmt.Errorf("WSGI application %s: %w", h.App, err)
	}
	return nil
}

// implicitGroupName is the name of the handler's own group, before
// numbering.
func (h *Handler) implicitGroupName(app pool.App, mount string) string {
	if h.Site != "" {
		return h.Site + mount
	}
	// Named after the resolved target, which is the same whatever Caddy's
	// working directory was when the config was written.
	return mount + " " + app.Target
}

// group returns the daemon group the application runs in: its own, or the
// wsgi app's group that ProcessGroup names.
func (h *Handler) group(wsgiApp *App) (*DaemonGroup, error) {
	if h.ProcessGroup == "" {
		return &h.DaemonGroup, nil
	}
	if !reflect.DeepEqual(h.DaemonGroup, DaemonGroup{}) {
		return nil, fmt.Errorf("process_group %q: the group's settings belong in its wsgi_daemon, not in the wsgi_script", h.ProcessGroup)
	}
	if err := checkProcessGroup(h.ProcessGroup, wsgiApp.Groups); err != nil {
		return nil, err
	}
	return wsgiApp.Groups[h.ProcessGroup], nil
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
