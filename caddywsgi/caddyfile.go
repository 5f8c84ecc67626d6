package caddywsgi

import (
	"strconv"
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
}

// parseWSGIScript sets up a WSGI application at a mount point, the way
// Apache's WSGIScriptAlias does:
//
//	wsgi_script <mount-point> <script-path | module:callable> {
//	    processes       <n>
//	    threads         <n>
//	    python          <interpreter>
//	    callable        <name>
//	    working_dir     <dir>
//	    env             <name> <value>
//	    startup_timeout <duration>
//	    queue_timeout   <duration>
//	}
//
// The mount point /app serves /app and everything under /app/, but not
// /application.
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
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		option := d.Val()
		switch option {
		case "processes", "threads":
			var s string
			if !d.AllArgs(&s) {
				return d.ArgErr()
			}
			n, err := strconv.Atoi(s)
			if err != nil || n < 1 {
				return d.Errf("%s must be a whole number of at least 1, not %q", option, s)
			}
			if option == "processes" {
				h.Processes = n
			} else {
				h.Threads = n
			}
		case "python":
			if !d.AllArgs(&h.Python) {
				return d.ArgErr()
			}
		case "callable":
			if !d.AllArgs(&h.Callable) {
				return d.ArgErr()
			}
		case "working_dir":
			if !d.AllArgs(&h.WorkingDir) {
				return d.ArgErr()
			}
		case "env":
			var name, value string
			if !d.AllArgs(&name, &value) {
				return d.ArgErr()
			}
			if h.Env == nil {
				h.Env = make(map[string]string)
			}
			h.Env[name] = value
		case "startup_timeout", "queue_timeout":
			var s string
			if !d.AllArgs(&s) {
				return d.ArgErr()
			}
			dur, err := caddy.ParseDuration(s)
			if err != nil {
				return d.Errf("%s: %v", option, err)
			}
			if option == "startup_timeout" {
				h.StartupTimeout = caddy.Duration(dur)
			} else {
				h.QueueTimeout = caddy.Duration(dur)
			}
		default:
			return d.Errf("unknown wsgi_script option %q", option)
		}
	}
	return nil
}

// Interface guards
var _ caddyfile.Unmarshaler = (*Handler)(nil)
