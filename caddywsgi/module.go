// Package caddywsgi provides the Caddy modules of caddy-wsgi: the
// http.handlers.wsgi handler, which serves a WSGI application from a pool of
// Python worker processes, and its Caddyfile directives.
package caddywsgi

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
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

	// The name of the WSGI callable in a script file. Default: "application".
	Callable string `json:"callable,omitempty"`

	// The Python interpreter to run the workers with, such as a virtualenv's
	// bin/python. Any CPython 3.9 or newer. Default: "python3" from PATH.
	Python string `json:"python,omitempty"`

	// How many worker processes to run. Default: 1.
	Processes int `json:"processes,omitempty"`

	// How many request threads each worker process runs. Default: 15.
	Threads int `json:"threads,omitempty"`

	// The workers' working directory, searched first when the application
	// imports modules. Default: the script's directory, or Caddy's working
	// directory for a module.
	WorkingDir string `json:"working_dir,omitempty"`

	// Environment variables for the workers, added to Caddy's own.
	Env map[string]string `json:"env,omitempty"`

	// How long a worker may take to load the application before it counts
	// as failed. Default: 15s.
	StartupTimeout caddy.Duration `json:"startup_timeout,omitempty"`

	// How long a request may wait for a free worker thread before it gets a
	// 503. Default: 45s.
	QueueTimeout caddy.Duration `json:"queue_timeout,omitempty"`

	scriptName string
	pool       *pool.Pool
	poolKey    string
	logger     *zap.Logger
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
	h.logger = ctx.Logger()
	h.scriptName = strings.TrimRight(h.MountPoint, "/")

	cfg, err := h.poolConfig()
	if err != nil {
		return err
	}
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

func (h *Handler) poolConfig() (pool.Config, error) {
	if h.App == "" {
		return pool.Config{}, fmt.Errorf("no WSGI application configured")
	}
	cfg := pool.Config{
		Name:           "wsgi:" + h.App,
		Python:         h.Python,
		App:            h.App,
		Callable:       h.Callable,
		Processes:      h.Processes,
		Threads:        h.Threads,
		Dir:            h.WorkingDir,
		StartupTimeout: time.Duration(h.StartupTimeout),
		QueueTimeout:   time.Duration(h.QueueTimeout),
	}
	if !strings.Contains(h.App, ":") {
		script, err := filepath.Abs(h.App)
		if err != nil {
			return cfg, err
		}
		if _, err := os.Stat(script); err != nil {
			return cfg, fmt.Errorf("WSGI script: %w (to load a module instead, write module:callable)", err)
		}
		cfg.App = script
		if cfg.Dir == "" {
			cfg.Dir = filepath.Dir(script)
		}
	}
	for k, v := range h.Env {
		cfg.Env = append(cfg.Env, k+"="+v)
	}
	// Sorted, so that equal configurations give equal pool keys.
	slices.Sort(cfg.Env)
	return cfg, nil
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

func (d poolDestructor) Destruct() error { return d.Close() }

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.CleanerUpper          = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
