package caddywsgi

import (
	"github.com/caddyserver/caddy/v2"
)

func init() {
	caddy.RegisterModule(App{})
}

// App holds the named daemon process groups that wsgi handlers can run their
// applications in, as Apache's WSGIDaemonProcess directives declare them for
// WSGIProcessGroup to name.
type App struct {
	// The daemon process groups, by name.
	Groups map[string]*DaemonGroup `json:"groups,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (App) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "wsgi",
		New: func() caddy.Module { return new(App) },
	}
}

// Start does nothing: a group's processes start with the first handler that
// uses it, so that a group no site uses costs nothing.
func (*App) Start() error { return nil }

// Stop does nothing: handlers stop the processes they started.
func (*App) Stop() error { return nil }

// Interface guards
var _ caddy.App = (*App)(nil)
