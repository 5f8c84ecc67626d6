package caddywsgi

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/caddy-wsgi/caddy-wsgi/pool"
)

func init() {
	caddy.RegisterModule(App{})
}

// App holds the named daemon process groups that wsgi handlers can run their
// applications in, as Apache's WSGIDaemonProcess directives declare them for
// WSGIProcessGroup to name. It runs every group's processes: each handler
// registers its application with its group, and the group's processes load
// all the applications registered with it, as a mod_wsgi daemon process
// serves every WSGIScriptAlias that names its group.
type App struct {
	// The daemon process groups, by name.
	Groups map[string]*DaemonGroup `json:"groups,omitempty"`

	runs   map[*DaemonGroup]*groupRun
	logger *zap.Logger
}

// groupRun is a daemon group's pool in one configuration.
type groupRun struct {
	cfg   pool.Config // Apps grow as handlers register
	key   string      // in pools, once started
	ready chan struct{}
	pool  *pool.Pool // set before ready is closed; nil if the pool did not start
}

// CaddyModule returns the Caddy module information.
func (App) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "wsgi",
		New: func() caddy.Module { return new(App) },
	}
}

// Provision sets up the app.
func (a *App) Provision(ctx caddy.Context) error {
	a.logger = ctx.Logger()
	a.runs = make(map[*DaemonGroup]*groupRun)
	return nil
}

// register adds app to group g (named name), and returns the group's run and
// the application's index in it.
func (a *App) register(name string, g *DaemonGroup, app pool.App) (*groupRun, uint16, error) {
	run := a.runs[g]
	if run == nil {
		cfg, err := g.poolConfig(name)
		if err != nil {
			return nil, 0, err
		}
		run = &groupRun{cfg: cfg, ready: make(chan struct{})}
		a.runs[g] = run
	}
	i := slices.Index(run.cfg.Apps, app)
	if i < 0 {
		i = len(run.cfg.Apps)
		run.cfg.Apps = append(run.cfg.Apps, app)
	}
	return run, uint16(i), nil
}

// Start starts each group that has applications, or takes over its running
// pool when a config reload left the group unchanged. It fails if an
// application cannot load, so that `caddy run` reports a broken application
// instead of serving errors.
func (a *App) Start() error {
	var err error
	for _, run := range a.runs {
		if err == nil {
			err = a.start(run)
		}
		// Requests waiting for a pool that will not start get a 503.
		close(run.ready)
	}
	if err != nil {
		a.Stop()
	}
	return err
}

func (a *App) start(run *groupRun) error {
	cfg := run.cfg
	if cfg.Dir == "" {
		// mod_wsgi-express's default: the script's directory.
		for _, app := range cfg.Apps {
			if app.Type != pool.TypeModule {
				cfg.Dir = filepath.Dir(app.Target)
				break
			}
		}
	}
	key, err := json.Marshal(cfg)
	if err != nil {
		return err
	}
	val, _, err := pools.LoadOrNew(string(key), func() (caddy.Destructor, error) {
		p, err := pool.New(cfg, a.logger.With(zap.String("group", cfg.Name)))
		if err != nil {
			return nil, err
		}
		return poolDestructor{p}, nil
	})
	if err != nil {
		return fmt.Errorf("daemon group %s: %w", cfg.Name, err)
	}
	run.key, run.pool = string(key), val.(poolDestructor).Pool
	return nil
}

// Stop releases this configuration's hold on its groups' pools; a pool that
// no configuration holds any more stops.
func (a *App) Stop() error {
	for _, run := range a.runs {
		if run.key != "" {
			pools.Delete(run.key)
			run.key = ""
		}
	}
	return nil
}

// waitPool returns the group's pool once the app has started it: Caddy may
// start the HTTP server first.
func (run *groupRun) waitPool(ctx context.Context) (*pool.Pool, error) {
	select {
	case <-run.ready:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if run.pool == nil {
		return nil, pool.ErrClosed
	}
	return run.pool, nil
}

// pools holds the running worker pools, keyed by their configuration, so that
// a config reload that leaves a pool unchanged keeps its processes.
var pools = caddy.NewUsagePool()

type poolDestructor struct{ *pool.Pool }

// Destruct stops the pool and removes its runtime files before it returns,
// since Caddy exits as soon as its apps are stopped, and lets requests in
// flight finish (within graceful_timeout) in the background: Caddy does not
// hold up a config reload for requests still in flight on the old config,
// and neither does the pool.
func (d poolDestructor) Destruct() error {
	err := d.Stop()
	go d.Close()
	return err
}

// Interface guards
var (
	_ caddy.App         = (*App)(nil)
	_ caddy.Provisioner = (*App)(nil)
)
