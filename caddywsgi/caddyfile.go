package caddywsgi

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func init() {
	// RegisterDirective, not RegisterHandlerDirective: the latter would read
	// the mount point, which starts with a slash, as a path matcher.
	httpcaddyfile.RegisterDirective("wsgi_script", parseWSGIScript)
	httpcaddyfile.RegisterDirectiveOrder("wsgi_script", httpcaddyfile.Before, "file_server")
	httpcaddyfile.RegisterGlobalOption("wsgi_daemon", parseWSGIDaemon)
}

// parseWSGIScript sets up a WSGI application at a mount point, the way
// Apache's WSGIScriptAlias does:
//
//	wsgi_script <mount-point> <script-path | module:callable> [<setting>=<value> ...] {
//	    process_group   <name>
//	    callable_object <name>
//	    <setting>       <value...>
//	}
//
// The mount point /app serves /app and everything under /app/, but not
// /application. Without process_group, the settings (those of wsgi_daemon)
// make up the application's own daemon group.
func parseWSGIScript(h httpcaddyfile.Helper) ([]httpcaddyfile.ConfigValue, error) {
	handler := new(Handler)
	if err := handler.UnmarshalCaddyfile(h.Dispenser); err != nil {
		return nil, err
	}
	mount := strings.TrimRight(handler.MountPoint, "/")
	if mount == "" {
		return h.NewRoute(nil, handler), nil
	}
	matcher := caddy.ModuleMap{"path": caddyconfig.JSON(caddyhttp.MatchPath{mount, mount + "/*"}, nil)}
	return h.NewRoute(matcher, handler), nil
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens; see
// parseWSGIScript for the syntax.
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the directive's name
	if !d.Args(&h.MountPoint, &h.App) {
		return d.ArgErr()
	}
	if !strings.HasPrefix(h.MountPoint, "/") {
		return d.Errf("the mount point %q must start with /", h.MountPoint)
	}
	for d.NextArg() {
		name, value, _ := strings.Cut(d.Val(), "=")
		if err := h.setScriptOption(name, []string{value}, d.Val()); err != nil {
			return d.Errf("wsgi_script: %v", err)
		}
	}
	for d.NextBlock(0) {
		if err := h.setScriptOption(d.Val(), d.RemainingArgs(), ""); err != nil {
			return d.Errf("wsgi_script: %v", err)
		}
	}
	return nil
}

// setScriptOption applies one wsgi_script option: its own, or a setting of
// its daemon group. inline is the name=value token for the inline form.
func (h *Handler) setScriptOption(name string, args []string, inline string) error {
	switch name = strings.ReplaceAll(name, "-", "_"); name {
	case "process_group", "callable_object", "application_type":
		if len(args) != 1 || args[0] == "" {
			return fmt.Errorf("%s takes one value", name)
		}
		switch name {
		case "process_group":
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

// Interface guards
var _ caddyfile.Unmarshaler = (*Handler)(nil)
