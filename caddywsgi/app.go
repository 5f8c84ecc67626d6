package caddywsgi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/caddy-wsgi/caddy-wsgi/pool"
	"github.com/caddy-wsgi/caddy-wsgi/protocol"
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

	runs     map[*DaemonGroup]*groupRun
	implicit map[string]int // handlers' own groups, by name: how many want it
	logger   *zap.Logger
	admin    string // the config's admin endpoint, if on TCP
}

// groupRun is a daemon group's pool in one configuration.
type groupRun struct {
	cfg   pool.Config // Apps grow as handlers register
	key   string      // in pools, once started
	ready chan struct{}
	pool  *pool.Pool // set before ready is closed; nil if the pool did not start
	// The pool's metrics that its handlers observe, set with pool.
	metrics *poolMetrics

	// What the handlers that registered tell operators (groupStatuses):
	// each application's mount points, by index in cfg.Apps.
	mounts [][]string
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
	a.implicit = make(map[string]int)
	a.admin = adminTCPAddress(ctx)
	// Caddy's registry is the config's: a new config registers its own
	// collector, and the old one goes with the old config.
	return ctx.GetMetricsRegistry().Register(metricsCollector{a})
}

// implicitName returns the name of a handler's own group: name, numbered
// from the second handler of the config that wants it on. Caddy provisions
// the handlers of a server in config order, so a config reload gives an
// unchanged handler the same name, and with it its running pool. (Those of
// different servers, sites on different ports, come in no fixed order: two
// alike there may swap names, and with them pools of the same settings.)
func (a *App) implicitName(name string) string {
	a.implicit[name]++
	if n := a.implicit[name]; n > 1 {
		return fmt.Sprintf("%s #%d", name, n)
	}
	return name
}

// register adds app, mounted at mount, to group g (named name), and returns
// the group's run and the application's index in it.
func (a *App) register(name string, g *DaemonGroup, app pool.App, mount string) (*groupRun, uint16, error) {
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
		run.mounts = append(run.mounts, nil)
	}
	if !slices.Contains(run.mounts[i], mount) {
		run.mounts[i] = append(run.mounts[i], mount)
	}
	return run, uint16(i), nil
}

// Start starts each group that has applications, or takes over its running
// pool when a config reload left the group unchanged. It fails if an
// application cannot load, so that `caddy run` reports a broken application
// instead of serving errors.
func (a *App) Start() error {
	if a.admin != "" && len(a.runs) > 0 && os.Geteuid() == 0 {
		// Workers can run as any user, root included, and the admin API
		// takes any config from whoever can connect to it.
		a.logger.Warn("the admin endpoint listens on TCP, where any local user can load a config whose workers run Python as root; "+
			"put it on a unix socket, which only Caddy's user can use, with the global option `admin unix//run/caddy/admin.sock` "+
			"(in an existing directory), or turn it off with `admin off`",
			zap.String("admin", a.admin))
	}
	var err error
	for _, run := range a.runs {
		if err == nil {
			err = a.start(run)
		}
		// Requests waiting for a pool that will not start go to another
		// config's, or get a 503.
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
		return poolDestructor{p, newPoolMetrics(cfg.Name)}, nil
	})
	if err != nil {
		return fmt.Errorf("daemon group %s: %w", cfg.Name, err)
	}
	d := val.(poolDestructor)
	run.key, run.pool, run.metrics = string(key), d.Pool, d.metrics
	serving.add(run)
	return nil
}

// Stop releases this configuration's hold on its groups' pools; a pool that
// no configuration holds any more stops.
func (a *App) Stop() error {
	for _, run := range a.runs {
		if run.key != "" {
			serving.remove(run)
			pools.Delete(run.key)
			run.key = ""
		}
	}
	return nil
}

// acquire writes a REQUEST frame for the handler's application to a worker
// thread, and returns the run and the pool it belongs to. Caddy's HTTP server
// of a new config takes requests as soon as it starts, maybe before the
// wsgi app has started the config's pools, and its old server goes on
// taking them while the old config's apps stop, in no fixed order: until
// the handler's own pool is up, and once it is shut down, the request goes
// to the pool that the config Caddy is running (old or new) has for the
// same group, so that a config reload, or one whose application does not
// load, costs no request.
func (h *Handler) acquire(ctx context.Context, frames []byte) (*groupRun, releaser, *pool.Conn, error) {
	run := h.run
	select {
	case <-run.ready:
		if run.pool != nil {
			c, err := run.pool.AcquireOr(ctx, frames, h.flight.waitersGiveUp)
			if !errors.Is(err, pool.ErrClosed) {
				return run, run.pool, c, err
			}
		}
	default:
	}
	// The pool is not up yet, did not start, or is shut down. A pool that
	// shuts down while the request waits in its line has left serving: the
	// next try finds the config that replaced it.
	for {
		o, app, ok := serving.other(run, h.appIndex)
		if !ok {
			break
		}
		protocol.SetRequestApp(frames, app)
		c, err := o.pool.AcquireOr(ctx, frames, h.flight.waitersGiveUp)
		if !errors.Is(err, pool.ErrClosed) {
			return o, o.pool, c, err
		}
	}
	p, err := run.waitPool(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	protocol.SetRequestApp(frames, h.appIndex)
	c, err := p.AcquireOr(ctx, frames, h.flight.waitersGiveUp)
	return run, p, c, err
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

// serving holds the started runs of each group name, oldest first: one per
// config, and two while Caddy replaces one config with another.
var serving = servingRuns{runs: make(map[string][]*groupRun)}

type servingRuns struct {
	mu   sync.Mutex
	runs map[string][]*groupRun
}

func (s *servingRuns) add(run *groupRun) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.runs[run.cfg.Name] = append(s.runs[run.cfg.Name], run)
}

func (s *servingRuns) remove(run *groupRun) {
	s.mu.Lock()
	defer s.mu.Unlock()
	runs := slices.DeleteFunc(s.runs[run.cfg.Name], func(r *groupRun) bool { return r == run })
	if len(runs) == 0 {
		delete(s.runs, run.cfg.Name)
	} else {
		s.runs[run.cfg.Name] = runs
	}
}

// other returns the newest other started run of run's group that has run's
// application app, and the application's index there.
func (s *servingRuns) other(run *groupRun, app uint16) (*groupRun, uint16, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	runs := s.runs[run.cfg.Name]
	for i := len(runs) - 1; i >= 0; i-- {
		if o := runs[i]; o != run {
			if j := slices.Index(o.cfg.Apps, run.cfg.Apps[app]); j >= 0 {
				return o, uint16(j), true
			}
		}
	}
	return nil, 0, false
}

// pool returns the pool of the newest started run of the group named name,
// or nil if none runs.
func (s *servingRuns) pool(name string) *pool.Pool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if runs := s.runs[name]; len(runs) > 0 {
		return runs[len(runs)-1].pool
	}
	return nil
}

// names returns the names of the groups that have a started run, sorted.
func (s *servingRuns) names() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Sorted(maps.Keys(s.runs))
}

// pools holds the running worker pools, keyed by their configuration, so that
// a config reload that leaves a pool unchanged keeps its processes, and its
// metrics with them.
var pools = caddy.NewUsagePool()

type poolDestructor struct {
	*pool.Pool
	metrics *poolMetrics
}

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
