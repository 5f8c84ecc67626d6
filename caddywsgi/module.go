// Package caddywsgi provides the Caddy modules of caddy-wsgi: the
// http.handlers.wsgi handler, which serves a WSGI application from a pool of
// Python worker processes, and its Caddyfile directives.
package caddywsgi

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
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
	// the rest of the path becomes PATH_INFO. Default: "/" (SCRIPT_NAME empty).
	MountPoint string `json:"mount_point,omitempty"`

	// The application: the path of a WSGI script file (loaded the way
	// mod_wsgi loads one), or "package.module:callable".
	App string `json:"app,omitempty"`

	// The name of the WSGI callable in a script file. Default: the group's
	// callable_object, else "application".
	CallableObject string `json:"callable_object,omitempty"`

	// The daemon process group (defined in the wsgi app, the Caddyfile's
	// wsgi_daemon) to run the application in. Without one, the handler's own
	// settings below make up its group.
	ProcessGroup string `json:"process_group,omitempty"`

	// The settings of the handler's own group, when process_group is empty.
	DaemonGroup

	scriptName     string
	requestTimeout time.Duration
	pool           *pool.Pool
	poolKey        string
	logger         *zap.Logger
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.wsgi",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision starts the worker pool, or takes over the running one when a
// config reload left it unchanged. It fails if the application cannot load,
// so that `caddy run` reports a broken application instead of serving errors.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.scriptName = strings.TrimRight(h.MountPoint, "/")
	group, name, err := h.group(ctx)
	if err != nil {
		return err
	}
	h.logger = ctx.Logger().With(zap.String("group", name))
	cfg, err := group.poolConfig(name, h.App, h.CallableObject)
	if err != nil {
		return err
	}
	h.requestTimeout = time.Duration(group.RequestTimeout)
	key, err := json.Marshal(cfg)
	if err != nil {
		return err
	}
	h.poolKey = string(key)
	val, _, err := pools.LoadOrNew(h.poolKey, func() (caddy.Destructor, error) {
		p, err := pool.New(cfg, h.logger.With(zap.String("app", cfg.App)))
		if err != nil {
			return nil, err
		}
		return poolDestructor{p}, nil
	})
	if err != nil {
		return fmt.Errorf("WSGI application %s: %w", h.App, err)
	}
	h.pool = val.(poolDestructor).Pool
	return nil
}

// group returns the daemon group the application runs in, and its name.
func (h *Handler) group(ctx caddy.Context) (*DaemonGroup, string, error) {
	if h.ProcessGroup == "" {
		return &h.DaemonGroup, "wsgi:" + h.App, nil
	}
	if !reflect.DeepEqual(h.DaemonGroup, DaemonGroup{}) {
		return nil, "", fmt.Errorf("process_group %q: the group's settings belong in its wsgi_daemon, not in the wsgi_script", h.ProcessGroup)
	}
	appIface, err := ctx.AppIfConfigured("wsgi")
	if err != nil {
		return nil, "", fmt.Errorf("process_group %q: no daemon process groups are defined (wsgi_daemon)", h.ProcessGroup)
	}
	groups := appIface.(*App).Groups
	group, ok := groups[h.ProcessGroup]
	if !ok {
		names := make([]string, 0, len(groups))
		for name := range groups {
			names = append(names, name)
		}
		slices.Sort(names)
		return nil, "", fmt.Errorf("process_group %q is not defined; the groups are: %s", h.ProcessGroup, strings.Join(names, ", "))
	}
	return group, h.ProcessGroup, nil
}

// Cleanup releases this config's hold on the pool; the last one stops it.
func (h *Handler) Cleanup() error {
	if h.poolKey == "" {
		return nil
	}
	_, err := pools.Delete(h.poolKey)
	return err
}

// pools holds the running worker pools, keyed by their configuration, so that
// a config reload that leaves a pool unchanged keeps its processes.
var pools = caddy.NewUsagePool()

type poolDestructor struct{ *pool.Pool }

// Destruct stops the pool in the background: Caddy does not hold up a config
// reload for requests still in flight on the old config, and neither does
// the pool, which lets them finish within graceful_timeout.
func (d poolDestructor) Destruct() error {
	go d.Close()
	return nil
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.CleanerUpper          = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
