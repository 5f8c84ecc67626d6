package caddywsgi

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-wsgi/caddy-wsgi/pool"
)

// DaemonGroup configures a daemon process group, as Apache's
// WSGIDaemonProcess does: a pool of processes x threads that runs WSGI
// applications, with its interpreter, environment and lifecycle limits.
type DaemonGroup struct {
	// How many worker processes to run. Default: 1.
	Processes int `json:"processes,omitempty"`

	// How many request threads each process runs. Default: 15.
	Threads int `json:"threads,omitempty"`

	// The Python interpreter, such as a virtualenv's bin/python. Any CPython
	// 3.9 or newer. Default: python_home's bin/python if that is set, else
	// "python3" from PATH.
	Python string `json:"python,omitempty"`

	// A virtualenv (or Python installation) whose interpreter and
	// site-packages the workers use.
	PythonHome string `json:"python_home,omitempty"`

	// Directories added to sys.path with site.addsitedir, so .pth files in
	// them are honoured.
	PythonPath []string `json:"python_path,omitempty"`

	// The workers' working directory, searched first on import. Default: the
	// script's directory, or Caddy's working directory for a module.
	Home string `json:"home,omitempty"`

	// Environment variables for the workers, added to Caddy's own.
	Env map[string]string `json:"env,omitempty"`

	// LANG for the workers.
	Lang string `json:"lang,omitempty"`

	// LC_ALL for the workers.
	Locale string `json:"locale,omitempty"`

	// What ps shows for the workers; "%{GROUP}" stands for "(wsgi:NAME)".
	DisplayName string `json:"display_name,omitempty"`

	// A Python script run in each worker at start-up, before the
	// application is loaded (mod_wsgi's WSGIImportScript).
	ImportScript string `json:"import_script,omitempty"`

	// The user the workers run as (name or number), with its HOME, USER and
	// LOGNAME. Caddy must run as root to use another user. Default: Caddy's
	// user.
	User string `json:"user,omitempty"`

	// The workers' group. Default: the user's primary group.
	Group string `json:"group,omitempty"`

	// The workers' supplementary groups. Default: the user's.
	SupplementaryGroups []string `json:"supplementary_groups,omitempty"`

	// The workers' umask, in octal, such as "0027". Default: Caddy's.
	Umask string `json:"umask,omitempty"`

	// The name of the WSGI callable in a script, unless the wsgi_script sets
	// its own. Default: "application".
	CallableObject string `json:"callable_object,omitempty"`

	// How long a worker may take to load the application before it counts
	// as failed. Default: 15s.
	StartupTimeout caddy.Duration `json:"startup_timeout,omitempty"`

	// How long a request may wait for a free thread before it gets a 503.
	// Default: 45s.
	QueueTimeout caddy.Duration `json:"queue_timeout,omitempty"`

	// How many requests may wait for a free thread; more get a 503 at once.
	// Default: no limit.
	MaxQueue int `json:"max_queue,omitempty"`

	// Recycle a process after it has served this many requests. Default:
	// never.
	MaximumRequests int `json:"maximum_requests,omitempty"`

	// Recycle a process after it has run this long. Default: never.
	RestartInterval caddy.Duration `json:"restart_interval,omitempty"`

	// Recycle a process that has served no request for this long. Default:
	// never.
	InactivityTimeout caddy.Duration `json:"inactivity_timeout,omitempty"`

	// A request that runs longer gets a 504, and its process is recycled.
	// Default: no limit.
	RequestTimeout caddy.Duration `json:"request_timeout,omitempty"`

	// How long a process being recycled may finish its requests before it
	// is stopped, and how long a request may run on once Caddy stops or a
	// config reload replaces its site (then it gets a 503 and its process
	// is recycled). Default: 15s.
	GracefulTimeout caddy.Duration `json:"graceful_timeout,omitempty"`

	// How long a stopping process may take to exit before it is killed.
	// Default: 5s.
	ShutdownTimeout caddy.Duration `json:"shutdown_timeout,omitempty"`

	// Recycle a process whose resident memory passes this many bytes, at
	// least 1MiB (1048576). Default: no limit.
	MemoryLimit int64 `json:"memory_limit,omitempty"`

	// Recycle a process once it has used this much CPU time (user and
	// system), to bound runaway processes. Default: no limit.
	CPUTimeLimit caddy.Duration `json:"cpu_time_limit,omitempty"`

	// Replace a process whose Python interpreter has not answered for this
	// long (a deadlock holding the GIL). Default: 300s, as mod_wsgi's.
	DeadlockTimeout caddy.Duration `json:"deadlock_timeout,omitempty"`

	// Whether touching a WSGI script file (changing its modification time)
	// restarts the group's processes gracefully. Default: true.
	ScriptReloading *bool `json:"script_reloading,omitempty"`

	// Whether a change to the source of any module the application has
	// imported restarts the group gracefully, as mod_wsgi-express's
	// --reload-on-changes: for development. Default: off.
	ReloadOnChanges bool `json:"reload_on_changes,omitempty"`
}

// poolConfig is the pool of this group, named name, without its
// applications. It checks the settings as the Caddyfile's parser does, for
// JSON configs.
func (g *DaemonGroup) poolConfig(name string) (pool.Config, error) {
	if g.Python != "" && g.PythonHome != "" {
		return pool.Config{}, fmt.Errorf("set python or python_home, not both: python_home's interpreter is %s/bin/python", g.PythonHome)
	}
	for _, s := range daemonSettings {
		if s.check != nil {
			if err := s.check(g); err != nil {
				return pool.Config{}, fmt.Errorf("daemon group %s: %w", name, err)
			}
		}
	}
	cfg := pool.Config{Name: name}
	for _, s := range daemonSettings {
		if s.toPool != nil {
			s.toPool(g, &cfg)
		}
	}
	return cfg, nil
}

// resolveApp checks an application and makes a file's path absolute.
// Without appType, a target of the form module:callable is a module and
// anything else a script.
func resolveApp(target, callable, appType string) (pool.App, error) {
	if target == "" {
		return pool.App{}, fmt.Errorf("no WSGI application configured")
	}
	if callable == "" {
		callable = "application"
	}
	if appType == "" {
		appType = pool.InferType(target)
	}
	app := pool.App{Target: target, Callable: callable, Type: appType}
	switch appType {
	case pool.TypeModule:
		return app, nil
	case pool.TypeScript, pool.TypePaste:
	default:
		return app, fmt.Errorf("application_type %q: want script, module or paste", appType)
	}
	file, err := filepath.Abs(target)
	if err != nil {
		return app, err
	}
	if _, err := os.Stat(file); err != nil {
		if appType == pool.TypePaste {
			return app, fmt.Errorf("PasteDeploy configuration: %w", err)
		}
		return app, fmt.Errorf("WSGI script: %w (to load a module instead, write module:callable)", err)
	}
	app.Target = file
	return app, nil
}
