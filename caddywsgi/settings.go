package caddywsgi

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/dustin/go-humanize"

	"github.com/caddy-wsgi/caddy-wsgi/pool"
)

// daemonSetting is a daemon group setting: how it is written in a Caddyfile,
// checked, documented in the README and passed on to the pool. The
// DaemonGroup field it fills carries its JSON name and the doc comment that
// Caddy's JSON documentation shows.
type daemonSetting struct {
	name    string // as in a Caddyfile and in JSON
	meaning string // the README's "meaning" column, in Markdown
	def     string // the README's "default" column, in Markdown; "" if none

	// parse sets g's field from the values written after the name in a
	// Caddyfile block; name is the setting's, for error messages.
	parse func(g *DaemonGroup, name string, args []string) error
	// inline, if set, splits the value of the inline form name=value into
	// parse's values; without it the value is the one value.
	inline func(value string) []string
	// check, if set, refuses a value of g's field that parses but cannot be
	// meant. It runs as the Caddyfile is parsed, and at provision for JSON.
	check func(g *DaemonGroup) error
	// toPool passes g's field on to the pool's configuration; nil for a
	// setting the handler applies itself.
	toPool func(g *DaemonGroup, c *pool.Config)
}

// daemonSettings are the daemon group settings, in the README's order. The
// README's table is made from them (see TestREADMESettingsTable).
var daemonSettings = []daemonSetting{{
	name: "processes", meaning: "worker processes", def: "1",
	parse:  wholeNumber(1, func(g *DaemonGroup) *int { return &g.Processes }),
	toPool: func(g *DaemonGroup, c *pool.Config) { c.Processes = g.Processes },
}, {
	name: "threads", meaning: "request threads per process", def: "15",
	parse:  wholeNumber(1, func(g *DaemonGroup) *int { return &g.Threads }),
	toPool: func(g *DaemonGroup, c *pool.Config) { c.Threads = g.Threads },
}, {
	name: "python", meaning: "the interpreter (any CPython 3.9 or newer; an older one stops at start-up with a message saying so)", def: "`python_home`'s `bin/python`, else `python3` from PATH",
	parse:  oneString(func(g *DaemonGroup) *string { return &g.Python }),
	toPool: func(g *DaemonGroup, c *pool.Config) { c.Python = g.Python },
}, {
	name: "python_home", meaning: "a virtualenv whose interpreter and site-packages are used",
	parse:  oneString(func(g *DaemonGroup) *string { return &g.PythonHome }),
	toPool: func(g *DaemonGroup, c *pool.Config) { c.PythonHome = g.PythonHome },
}, {
	name: "python_path", meaning: "directories added with `site.addsitedir` (`.pth` files honoured); repeatable, colon-separated in the inline form",
	parse:  stringList("directories", func(g *DaemonGroup) *[]string { return &g.PythonPath }),
	inline: func(value string) []string { return strings.Split(value, ":") },
	toPool: func(g *DaemonGroup, c *pool.Config) { c.PythonPath = g.PythonPath },
}, {
	name: "home", meaning: "the working directory, searched first on import", def: "the (first) script's directory, or Caddy's for modules only",
	parse:  oneString(func(g *DaemonGroup) *string { return &g.Home }),
	toPool: func(g *DaemonGroup, c *pool.Config) { c.Dir = g.Home },
}, {
	name: "env", meaning: "`NAME VALUE` (inline: `env=NAME=VALUE`): an environment variable for the workers; repeatable", def: "Caddy's environment",
	parse:  parseEnv,
	inline: func(value string) []string { return strings.SplitN(value, "=", 2) },
	toPool: func(g *DaemonGroup, c *pool.Config) {
		for k, v := range g.Env {
			c.Env = append(c.Env, k+"="+v)
		}
		// Sorted, so that equal configurations give equal pool keys.
		slices.Sort(c.Env)
	},
}, {
	name: "lang", meaning: "LANG for the workers", def: "Caddy's",
	parse:  oneString(func(g *DaemonGroup) *string { return &g.Lang }),
	toPool: func(g *DaemonGroup, c *pool.Config) { c.Lang = g.Lang },
}, {
	name: "locale", meaning: "LC_ALL for the workers", def: "Caddy's",
	parse:  oneString(func(g *DaemonGroup) *string { return &g.Locale }),
	toPool: func(g *DaemonGroup, c *pool.Config) { c.Locale = g.Locale },
}, {
	name: "display_name", meaning: "what `ps` shows for the workers; `%{GROUP}` is `(wsgi:NAME)`", def: "the interpreter's command line",
	parse:  oneString(func(g *DaemonGroup) *string { return &g.DisplayName }),
	toPool: func(g *DaemonGroup, c *pool.Config) { c.DisplayName = g.DisplayName },
}, {
	name: "import_script", meaning: "a script each worker runs at start-up, before the application loads",
	parse:  oneString(func(g *DaemonGroup) *string { return &g.ImportScript }),
	toPool: func(g *DaemonGroup, c *pool.Config) { c.ImportScript = g.ImportScript },
}, {
	name: "user", def: "Caddy's user, unless that is root",
	meaning: "the user the workers run as (name or number), with its HOME, USER and LOGNAME; Caddy must run as root to use another user. " +
		"A root Caddy refuses to start a group without `user`: workers run as root only with `user root`. " +
		"Caddy checks at start that the user can run the interpreter and read the application (see [Errors](#errors))",
	parse:  oneString(func(g *DaemonGroup) *string { return &g.User }),
	toPool: func(g *DaemonGroup, c *pool.Config) { c.User = g.User },
}, {
	name: "group", meaning: "the workers' group", def: "the user's primary group",
	parse:  oneString(func(g *DaemonGroup) *string { return &g.Group }),
	toPool: func(g *DaemonGroup, c *pool.Config) { c.Group = g.Group },
}, {
	name: "supplementary_groups", meaning: "the workers' other groups (commas in the inline form)", def: "the user's groups",
	parse:  stringList("groups", func(g *DaemonGroup) *[]string { return &g.SupplementaryGroups }),
	inline: func(value string) []string { return strings.Split(value, ",") },
	toPool: func(g *DaemonGroup, c *pool.Config) { c.SupplementaryGroups = g.SupplementaryGroups },
}, {
	name: "umask", meaning: "the workers' umask, in octal", def: "Caddy's",
	parse: oneString(func(g *DaemonGroup) *string { return &g.Umask }),
	check: func(g *DaemonGroup) error {
		if _, err := parseUmask(g.Umask); err != nil {
			return fmt.Errorf("umask must be an octal number such as 0027, not %q", g.Umask)
		}
		return nil
	},
	// check has accepted it.
	toPool: func(g *DaemonGroup, c *pool.Config) { c.Umask, _ = parseUmask(g.Umask) },
}, {
	name: "callable_object", meaning: "the WSGI callable's name in scripts", def: "`application`",
	parse: oneString(func(g *DaemonGroup) *string { return &g.CallableObject }),
}, {
	name: "startup_timeout", meaning: "how long a worker may take to load the application", def: "15s",
	parse:  positiveDuration(func(g *DaemonGroup) *caddy.Duration { return &g.StartupTimeout }),
	toPool: func(g *DaemonGroup, c *pool.Config) { c.StartupTimeout = time.Duration(g.StartupTimeout) },
}, {
	name: "queue_timeout", meaning: "how long a request may wait for a free thread before a 503", def: "45s",
	parse:  positiveDuration(func(g *DaemonGroup) *caddy.Duration { return &g.QueueTimeout }),
	toPool: func(g *DaemonGroup, c *pool.Config) { c.QueueTimeout = time.Duration(g.QueueTimeout) },
}, {
	name: "max_queue", meaning: "how many requests may wait for a thread; more get a 503 at once (mod_wsgi's `listen-backlog`)", def: "no limit",
	parse:  wholeNumber(1, func(g *DaemonGroup) *int { return &g.MaxQueue }),
	toPool: func(g *DaemonGroup, c *pool.Config) { c.MaxQueue = g.MaxQueue },
}, {
	name: "request_timeout", meaning: "a request running longer gets a 504 (or is broken off if it started) and its process is recycled", def: "no limit",
	parse: positiveDuration(func(g *DaemonGroup) *caddy.Duration { return &g.RequestTimeout }),
}, {
	name: "maximum_requests", meaning: "recycle a process after this many requests", def: "never",
	parse:  wholeNumber(1, func(g *DaemonGroup) *int { return &g.MaximumRequests }),
	toPool: func(g *DaemonGroup, c *pool.Config) { c.MaximumRequests = g.MaximumRequests },
}, {
	name: "restart_interval", meaning: "recycle a process after it has run this long", def: "never",
	parse:  positiveDuration(func(g *DaemonGroup) *caddy.Duration { return &g.RestartInterval }),
	toPool: func(g *DaemonGroup, c *pool.Config) { c.RestartInterval = time.Duration(g.RestartInterval) },
}, {
	name: "inactivity_timeout", meaning: "recycle a process that has served nothing for this long", def: "never",
	parse:  positiveDuration(func(g *DaemonGroup) *caddy.Duration { return &g.InactivityTimeout }),
	toPool: func(g *DaemonGroup, c *pool.Config) { c.InactivityTimeout = time.Duration(g.InactivityTimeout) },
}, {
	name: "memory_limit", def: "no limit",
	meaning: "recycle a process whose resident memory passes this size, such as `512MB`; at least `1MiB`. " +
		"A number without a unit is bytes, as in mod_wsgi (in JSON, a number of bytes)",
	parse:  parseMemoryLimit,
	check:  checkMemoryLimit,
	toPool: func(g *DaemonGroup, c *pool.Config) { c.MemoryLimit = g.MemoryLimit },
}, {
	name: "cpu_time_limit", meaning: "recycle a process once it has used this much CPU time, user and system (mod_wsgi's `cpu-time-limit`)", def: "no limit",
	parse:  positiveDuration(func(g *DaemonGroup) *caddy.Duration { return &g.CPUTimeLimit }),
	toPool: func(g *DaemonGroup, c *pool.Config) { c.CPUTimeLimit = time.Duration(g.CPUTimeLimit) },
}, {
	name: "graceful_timeout", meaning: "how long a recycled process may finish its requests before it is stopped, and how long a request may run on once Caddy stops or a config reload replaces its site (then it gets a 503)", def: "15s",
	parse:  positiveDuration(func(g *DaemonGroup) *caddy.Duration { return &g.GracefulTimeout }),
	toPool: func(g *DaemonGroup, c *pool.Config) { c.GracefulTimeout = time.Duration(g.GracefulTimeout) },
}, {
	name: "shutdown_timeout", meaning: "how long a stopping process may take to exit before it is killed", def: "5s",
	parse:  positiveDuration(func(g *DaemonGroup) *caddy.Duration { return &g.ShutdownTimeout }),
	toPool: func(g *DaemonGroup, c *pool.Config) { c.ShutdownTimeout = time.Duration(g.ShutdownTimeout) },
}, {
	name: "deadlock_timeout", meaning: "replace a process whose interpreter stops answering (GIL held) for this long", def: "300s (mod_wsgi's)",
	parse: positiveDuration(func(g *DaemonGroup) *caddy.Duration { return &g.DeadlockTimeout }),
	toPool: func(g *DaemonGroup, c *pool.Config) {
		c.DeadlockTimeout = cmp.Or(time.Duration(g.DeadlockTimeout), defaultDeadlockTimeout)
	},
}, {
	name: "script_reloading", meaning: "`on` or `off`: touching the WSGI script restarts the group gracefully", def: "on",
	parse: func(g *DaemonGroup, name string, args []string) error {
		on, err := onOff(name, args)
		g.ScriptReloading = &on
		return err
	},
	toPool: func(g *DaemonGroup, c *pool.Config) {
		c.ScriptReloading = g.ScriptReloading == nil || *g.ScriptReloading
	},
}, {
	name: "reload_on_changes", def: "off",
	meaning: "`on` or `off`: a change to the source of any module the application imported restarts the group gracefully " +
		"(mod_wsgi-express's `--reload-on-changes`; for development). " +
		"Every change reloads once, however many processes notice it; after a reload that fails to load, the old processes keep serving, " +
		"and saving the fix reloads again. The workers then also watch the WSGI script, in place of `script_reloading`",
	parse: func(g *DaemonGroup, name string, args []string) (err error) {
		g.ReloadOnChanges, err = onOff(name, args)
		return err
	},
	toPool: func(g *DaemonGroup, c *pool.Config) { c.ReloadOnChanges = g.ReloadOnChanges },
}}

// modWSGIOptions are WSGIDaemonProcess options that have no setting of their
// name here, with what to write instead, as the README's "From mod_wsgi"
// table says.
var modWSGIOptions = map[string]string{
	"listen_backlog":       "is max_queue here (requests wait inside Caddy, not in a socket backlog)",
	"socket_timeout":       notNeeded,
	"connect_timeout":      notNeeded,
	"header_buffer_size":   notNeeded,
	"response_buffer_size": notNeeded,
	"socket_user":          notNeeded,
}

const notNeeded = "is not needed here (Caddy and the workers share private socket pairs, and responses stream); remove it"

// defaultDeadlockTimeout is mod_wsgi's: long enough that only a process that
// is truly stuck is killed.
const defaultDeadlockTimeout = 300 * time.Second

// minMemoryLimit is the least memory_limit: a Python process needs several
// MiB, so anything less recycles every process every second, which a bare
// number of bytes written for megabytes would do.
const minMemoryLimit = 1 << 20

// set applies one setting, given as in a Caddyfile block (name, then its
// values). mod_wsgi's spellings with dashes (python-home) are accepted.
func (g *DaemonGroup) set(name string, args []string) error {
	s := lookupSetting(name)
	if s == nil {
		return unknownSetting("setting", name, nil)
	}
	if err := s.parse(g, s.name, args); err != nil {
		return err
	}
	if s.check != nil {
		return s.check(g)
	}
	return nil
}

// setInline applies a setting written mod_wsgi style, as name=value.
func (g *DaemonGroup) setInline(token string) error {
	name, value, ok := strings.Cut(token, "=")
	if !ok {
		return fmt.Errorf("%q: want name=value", token)
	}
	args := []string{value}
	if s := lookupSetting(name); s != nil && s.inline != nil {
		args = s.inline(value)
	}
	return g.set(name, args)
}

// lookupSetting returns the setting of that name, written with underscores
// or dashes; nil if there is none.
func lookupSetting(name string) *daemonSetting {
	name = strings.ReplaceAll(name, "-", "_")
	for i := range daemonSettings {
		if daemonSettings[i].name == name {
			return &daemonSettings[i]
		}
	}
	return nil
}

// unknownSetting is the error for a name that is no setting, in a place
// that also takes the options others: what the name is in mod_wsgi terms,
// or what was probably meant, or else the names to choose from. kind is
// what the place calls them: setting or option.
func unknownSetting(kind, name string, others []string) error {
	key := strings.ReplaceAll(name, "-", "_")
	if instead, ok := modWSGIOptions[key]; ok {
		return fmt.Errorf("unknown %s %q: mod_wsgi's %s %s", kind, name, name, instead)
	}
	names := slices.Clone(others)
	for _, s := range daemonSettings {
		names = append(names, s.name)
	}
	slices.Sort(names)
	names = slices.Compact(names)
	if near := suggest(key, names); near != "" {
		return fmt.Errorf("unknown %s %q; did you mean %s?", kind, name, near)
	}
	return fmt.Errorf("unknown %s %q; the %ss are: %s", kind, name, kind, strings.Join(names, ", "))
}

// checkProcessGroup refuses a process_group that is not among groups,
// naming the groups there are.
func checkProcessGroup(name string, groups map[string]*DaemonGroup) error {
	if _, ok := groups[name]; ok {
		return nil
	}
	if len(groups) == 0 {
		return fmt.Errorf("process_group %q: no daemon process groups are defined (wsgi_daemon)", name)
	}
	names := slices.Sorted(maps.Keys(groups))
	list := strings.Join(names, ", ")
	if near := suggest(name, names); near != "" {
		return fmt.Errorf("process_group %q is not defined; did you mean %s? The groups are: %s", name, near, list)
	}
	return fmt.Errorf("process_group %q is not defined; the groups are: %s", name, list)
}

// oneValue returns the one value of a setting that takes one.
func oneValue(name string, args []string) (string, error) {
	if len(args) != 1 {
		return "", fmt.Errorf("%s takes one value, got %d", name, len(args))
	}
	return args[0], nil
}

// wholeNumber parses a setting that is a whole number of at least least.
func wholeNumber(least int, field func(*DaemonGroup) *int) func(*DaemonGroup, string, []string) error {
	return func(g *DaemonGroup, name string, args []string) error {
		s, err := oneValue(name, args)
		if err != nil {
			return err
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < least {
			return fmt.Errorf("%s must be a whole number of at least %d, not %q", name, least, s)
		}
		*field(g) = n
		return nil
	}
}

// oneString parses a setting that is one string.
func oneString(field func(*DaemonGroup) *string) func(*DaemonGroup, string, []string) error {
	return func(g *DaemonGroup, name string, args []string) error {
		s, err := oneValue(name, args)
		*field(g) = s
		return err
	}
}

// stringList parses a repeatable setting of one or more values, what they are.
func stringList(what string, field func(*DaemonGroup) *[]string) func(*DaemonGroup, string, []string) error {
	return func(g *DaemonGroup, name string, args []string) error {
		if len(args) == 0 {
			return fmt.Errorf("%s takes one or more %s", name, what)
		}
		*field(g) = append(*field(g), args...)
		return nil
	}
}

// positiveDuration parses a setting that is a positive duration.
func positiveDuration(field func(*DaemonGroup) *caddy.Duration) func(*DaemonGroup, string, []string) error {
	return func(g *DaemonGroup, name string, args []string) error {
		s, err := oneValue(name, args)
		if err != nil {
			return err
		}
		d, err := parseSeconds(s)
		if err != nil || d <= 0 {
			return fmt.Errorf("%s must be a positive duration such as 30s, not %q", name, s)
		}
		*field(g) = caddy.Duration(d)
		return nil
	}
}

// parseEnv parses env: a variable's name and value.
func parseEnv(g *DaemonGroup, name string, args []string) error {
	if len(args) != 2 {
		return fmt.Errorf("%s takes a name and a value (%s=NAME=VALUE inline), got %d", name, name, len(args))
	}
	if g.Env == nil {
		g.Env = make(map[string]string)
	}
	g.Env[args[0]] = args[1]
	return nil
}

// parseMemoryLimit parses memory_limit: a size such as 512MB, or a number of
// bytes.
func parseMemoryLimit(g *DaemonGroup, name string, args []string) error {
	s, err := oneValue(name, args)
	if err != nil {
		return err
	}
	n, err := humanize.ParseBytes(s)
	if err != nil || n == 0 {
		return fmt.Errorf("%s must be a size such as 512MB, not %q", name, s)
	}
	g.MemoryLimit = int64(n)
	return nil
}

// checkMemoryLimit refuses a memory_limit too small for any Python process,
// most likely megabytes written as a bare number.
func checkMemoryLimit(g *DaemonGroup) error {
	if g.MemoryLimit != 0 && g.MemoryLimit < minMemoryLimit {
		return fmt.Errorf("memory_limit %d is %d bytes, under the minimum of 1MiB: a number without a unit is bytes (as in mod_wsgi); write a size such as 512MB (in JSON, a number of bytes such as 536870912)",
			g.MemoryLimit, g.MemoryLimit)
	}
	return nil
}

// parseUmask parses an octal umask; "" is -1, Caddy's own.
func parseUmask(s string) (int, error) {
	if s == "" {
		return -1, nil
	}
	n, err := strconv.ParseUint(s, 8, 16)
	return int(n), err
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
