package caddywsgi

import (
	"cmp"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/dustin/go-humanize"

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
	// is stopped. Default: 15s.
	GracefulTimeout caddy.Duration `json:"graceful_timeout,omitempty"`

	// How long a stopping process may take to exit before it is killed.
	// Default: 5s.
	ShutdownTimeout caddy.Duration `json:"shutdown_timeout,omitempty"`

	// Recycle a process whose resident memory passes this many bytes.
	// Default: no limit.
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

// defaultDeadlockTimeout is mod_wsgi's: long enough that only a process that
// is truly stuck is killed.
const defaultDeadlockTimeout = 300 * time.Second

// poolConfig is the pool of this group, named name, without its
// applications.
func (g *DaemonGroup) poolConfig(name string) (pool.Config, error) {
	if g.Python != "" && g.PythonHome != "" {
		return pool.Config{}, fmt.Errorf("set python or python_home, not both: python_home's interpreter is %s/bin/python", g.PythonHome)
	}
	cfg := pool.Config{
		Name:                name,
		Python:              g.Python,
		PythonHome:          g.PythonHome,
		PythonPath:          g.PythonPath,
		Processes:           g.Processes,
		Threads:             g.Threads,
		Dir:                 g.Home,
		Lang:                g.Lang,
		Locale:              g.Locale,
		DisplayName:         g.DisplayName,
		ImportScript:        g.ImportScript,
		User:                g.User,
		Group:               g.Group,
		SupplementaryGroups: g.SupplementaryGroups,
		Umask:               -1,
		StartupTimeout:      time.Duration(g.StartupTimeout),
		QueueTimeout:        time.Duration(g.QueueTimeout),
		MaxQueue:            g.MaxQueue,
		MaximumRequests:     g.MaximumRequests,
		RestartInterval:     time.Duration(g.RestartInterval),
		InactivityTimeout:   time.Duration(g.InactivityTimeout),
		GracefulTimeout:     time.Duration(g.GracefulTimeout),
		ShutdownTimeout:     time.Duration(g.ShutdownTimeout),
		MemoryLimit:         g.MemoryLimit,
		CPUTimeLimit:        time.Duration(g.CPUTimeLimit),
		DeadlockTimeout:     cmp.Or(time.Duration(g.DeadlockTimeout), defaultDeadlockTimeout),
		ScriptReloading:     g.ScriptReloading == nil || *g.ScriptReloading,
		ReloadOnChanges:     g.ReloadOnChanges,
	}
	if g.Umask != "" {
		umask, err := strconv.ParseUint(g.Umask, 8, 16)
		if err != nil {
			return cfg, fmt.Errorf("umask %q: want an octal number such as 0027", g.Umask)
		}
		cfg.Umask = int(umask)
	}
	for k, v := range g.Env {
		cfg.Env = append(cfg.Env, k+"="+v)
	}
	// Sorted, so that equal configurations give equal pool keys.
	slices.Sort(cfg.Env)
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

// settingNames lists the settings of a daemon group, for error messages.
var settingNames = []string{
	"callable_object", "cpu_time_limit", "deadlock_timeout", "display_name", "env", "graceful_timeout", "home",
	"import_script", "inactivity_timeout", "lang", "locale", "max_queue", "maximum_requests",
	"memory_limit", "processes", "python", "python_home", "python_path", "queue_timeout",
	"reload_on_changes", "request_timeout", "restart_interval", "script_reloading", "shutdown_timeout",
	"startup_timeout", "supplementary_groups", "threads", "umask", "user", "group",
}

// set applies one setting, given as in a Caddyfile block (name, then its
// values). mod_wsgi's spellings with dashes (python-home) are accepted.
func (g *DaemonGroup) set(name string, args []string) error {
	name = strings.ReplaceAll(name, "-", "_")
	one := func() (string, error) {
		if len(args) != 1 {
			return "", fmt.Errorf("%s takes one value, got %d", name, len(args))
		}
		return args[0], nil
	}
	count := func(dst *int, least int) error {
		s, err := one()
		if err != nil {
			return err
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < least {
			return fmt.Errorf("%s must be a whole number of at least %d, not %q", name, least, s)
		}
		*dst = n
		return nil
	}
	text := func(dst *string) error {
		s, err := one()
		*dst = s
		return err
	}
	duration := func(dst *caddy.Duration) error {
		s, err := one()
		if err != nil {
			return err
		}
		d, err := parseSeconds(s)
		if err != nil || d <= 0 {
			return fmt.Errorf("%s must be a positive duration such as 30s, not %q", name, s)
		}
		*dst = caddy.Duration(d)
		return nil
	}
	switch name {
	case "processes":
		return count(&g.Processes, 1)
	case "threads":
		return count(&g.Threads, 1)
	case "max_queue":
		return count(&g.MaxQueue, 1)
	case "maximum_requests":
		return count(&g.MaximumRequests, 1)
	case "python":
		return text(&g.Python)
	case "python_home":
		return text(&g.PythonHome)
	case "home":
		return text(&g.Home)
	case "lang":
		return text(&g.Lang)
	case "locale":
		return text(&g.Locale)
	case "display_name":
		return text(&g.DisplayName)
	case "import_script":
		return text(&g.ImportScript)
	case "callable_object":
		return text(&g.CallableObject)
	case "user":
		return text(&g.User)
	case "group":
		return text(&g.Group)
	case "supplementary_groups":
		if len(args) == 0 {
			return fmt.Errorf("supplementary_groups takes one or more groups")
		}
		g.SupplementaryGroups = append(g.SupplementaryGroups, args...)
		return nil
	case "umask":
		if err := text(&g.Umask); err != nil {
			return err
		}
		if _, err := strconv.ParseUint(g.Umask, 8, 16); err != nil {
			return fmt.Errorf("umask must be an octal number such as 0027, not %q", g.Umask)
		}
		return nil
	case "python_path":
		if len(args) == 0 {
			return fmt.Errorf("python_path takes one or more directories")
		}
		g.PythonPath = append(g.PythonPath, args...)
		return nil
	case "env":
		if len(args) != 2 {
			return fmt.Errorf("env takes a name and a value, got %d values", len(args))
		}
		if g.Env == nil {
			g.Env = make(map[string]string)
		}
		g.Env[args[0]] = args[1]
		return nil
	case "startup_timeout":
		return duration(&g.StartupTimeout)
	case "queue_timeout":
		return duration(&g.QueueTimeout)
	case "restart_interval":
		return duration(&g.RestartInterval)
	case "inactivity_timeout":
		return duration(&g.InactivityTimeout)
	case "request_timeout":
		return duration(&g.RequestTimeout)
	case "graceful_timeout":
		return duration(&g.GracefulTimeout)
	case "shutdown_timeout":
		return duration(&g.ShutdownTimeout)
	case "deadlock_timeout":
		return duration(&g.DeadlockTimeout)
	case "cpu_time_limit":
		return duration(&g.CPUTimeLimit)
	case "memory_limit":
		s, err := one()
		if err != nil {
			return err
		}
		n, err := humanize.ParseBytes(s)
		if err != nil || n == 0 {
			return fmt.Errorf("memory_limit must be a size such as 512MB, not %q", s)
		}
		g.MemoryLimit = int64(n)
		return nil
	case "script_reloading":
		on, err := onOff(name, args)
		g.ScriptReloading = &on
		return err
	case "reload_on_changes":
		on, err := onOff(name, args)
		g.ReloadOnChanges = on
		return err
	}
	return fmt.Errorf("unknown setting %q; the settings are: %s", name, strings.Join(settingNames, ", "))
}

// parseSeconds parses a duration such as 90s, or a bare number of seconds
// as mod_wsgi's options and mod_wsgi-express's flags take.
func parseSeconds(s string) (time.Duration, error) {
	if n, err := strconv.Atoi(s); err == nil {
		return time.Duration(n) * time.Second, nil
	}
	return caddy.ParseDuration(s)
}

// onOff parses a setting whose one value is on or off.
func onOff(name string, args []string) (bool, error) {
	if len(args) == 1 && (args[0] == "on" || args[0] == "off") {
		return args[0] == "on", nil
	}
	return false, fmt.Errorf("%s must be on or off, not %q", name, strings.Join(args, " "))
}

// setInline applies a setting written mod_wsgi style, as name=value. A
// python_path value may list directories separated by colons, a
// supplementary_groups value groups separated by commas, and an env value is
// NAME=VALUE.
func (g *DaemonGroup) setInline(token string) error {
	name, value, ok := strings.Cut(token, "=")
	if !ok {
		return fmt.Errorf("%q: want name=value", token)
	}
	switch strings.ReplaceAll(name, "-", "_") {
	case "python_path":
		return g.set(name, strings.Split(value, ":"))
	case "supplementary_groups":
		return g.set(name, strings.Split(value, ","))
	case "env":
		k, v, ok := strings.Cut(value, "=")
		if !ok {
			return fmt.Errorf("%q: want env=NAME=VALUE", token)
		}
		return g.set(name, []string{k, v})
	}
	return g.set(name, []string{value})
}
