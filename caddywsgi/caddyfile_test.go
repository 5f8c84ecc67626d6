package caddywsgi

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

func TestUnmarshalCaddyfile(t *testing.T) {
	d := caddyfile.NewTestDispenser(`wsgi_script /app /srv/app.wsgi processes=2 python-home=/srv/venv {
		threads 8
		python /srv/venv/bin/python
		callable_object app
		home /srv
		env DJANGO_SETTINGS_MODULE site.settings
		python_path /srv/lib /srv/extra
		startup_timeout 30s
		queue_timeout 10s
		request_timeout 1m
		memory_limit 512MB
		maximum_requests 1000
		umask 0027
		script_reloading off
	}`)
	var h Handler
	if err := h.UnmarshalCaddyfile(d); err != nil {
		t.Fatal(err)
	}
	off := false
	want := Handler{
		MountPoint: "/app", App: "/srv/app.wsgi", CallableObject: "app",
		DaemonGroup: DaemonGroup{
			Processes: 2, Threads: 8, PythonHome: "/srv/venv", Python: "/srv/venv/bin/python", Home: "/srv",
			Env:            map[string]string{"DJANGO_SETTINGS_MODULE": "site.settings"},
			PythonPath:     []string{"/srv/lib", "/srv/extra"},
			StartupTimeout: caddy.Duration(30 * time.Second), QueueTimeout: caddy.Duration(10 * time.Second),
			RequestTimeout: caddy.Duration(time.Minute), MemoryLimit: 512_000_000, MaximumRequests: 1000,
			Umask: "0027", ScriptReloading: &off,
		},
	}
	if !reflect.DeepEqual(h, want) {
		t.Errorf("got %+v\nwant %+v", h, want)
	}
}

func TestUnmarshalProcessGroup(t *testing.T) {
	var h Handler
	if err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(`wsgi_script / app.wsgi process_group=shop`)); err != nil {
		t.Fatal(err)
	}
	if h.ProcessGroup != "shop" {
		t.Errorf("process_group %q", h.ProcessGroup)
	}
}

func TestUnmarshalCaddyfileErrors(t *testing.T) {
	for input, want := range map[string]string{
		`wsgi_script /app`:                                   "wrong argument count",
		`wsgi_script app a.wsgi`:                             `mount point "app" must start with /`,
		`wsgi_script /app a.wsgi extra`:                      `"extra": want name=value`,
		`wsgi_script /app a.wsgi processes=0`:                "processes must be a whole number of at least 1",
		"wsgi_script /app a.wsgi {\nprocesses 0\n}":          "processes must be a whole number of at least 1",
		"wsgi_script /app a.wsgi {\nthreads many\n}":         `threads must be a whole number of at least 1, not "many"`,
		"wsgi_script /app a.wsgi {\nqueue_timeout soon\n}":   `queue_timeout must be a positive duration such as 30s, not "soon"`,
		"wsgi_script /app a.wsgi {\nqueue_timeout 0\n}":      `queue_timeout must be a positive duration such as 30s, not "0"`,
		"wsgi_script /app a.wsgi {\nenv ONLY_NAME\n}":        "env takes a name and a value, got 1 values",
		"wsgi_script /app a.wsgi {\nprocesess 2\n}":          `unknown setting "procesess"; the settings are: callable_object,`,
		"wsgi_script /app a.wsgi {\npython a b\n}":           "python takes one value, got 2",
		"wsgi_script /app a.wsgi {\ncallable_object\n}":      "callable_object takes one value",
		"wsgi_script /app a.wsgi {\nmemory_limit lots\n}":    `memory_limit must be a size such as 512MB, not "lots"`,
		"wsgi_script /app a.wsgi {\numask 999\n}":            `umask must be an octal number such as 0027, not "999"`,
		"wsgi_script /app a.wsgi {\nscript_reloading yes\n}": `script_reloading must be on or off, not "yes"`,
		"wsgi_script /app a.wsgi {\npython_path\n}":          "python_path takes one or more directories",
		`wsgi_script /app a.wsgi env=NOVALUE`:                `"env=NOVALUE": want env=NAME=VALUE`,
		// The handler alone has no routes to put a document root in.
		`wsgi_script /app a.wsgi document_root=/srv/htdocs`: "document_root belongs to the wsgi_script directive, which expands it into routes",
	} {
		var h Handler
		err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(input))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want one containing %q", input, err, want)
		}
	}
}

func TestSplitPath(t *testing.T) {
	for _, tc := range []struct {
		mount, path, script, info string
		ok                        bool
	}{
		{"", "/x", "", "/x", true},
		{"", "/X", "", "/X", true},
		{"/app", "/app", "/app", "", true},
		{"/app", "/app/", "/app", "/", true},
		{"/app", "/app/a/b", "/app", "/a/b", true},
		{"/app", "/app/./a/../b", "/app", "/b", true},
		{"/app", "/app//a//", "/app", "/a/", true},
		{"/app", "/application", "", "", false},
		{"/app", "/APP", "", "", false},
		{"/app", "/App/env", "", "", false},
		{"/app", "/app/../APP/env", "", "", false},
		{"/a/b", "/a/b/c", "/a/b", "/c", true},
	} {
		h := Handler{scriptName: tc.mount}
		script, info, ok := h.splitPath(tc.path)
		if script != tc.script || info != tc.info || ok != tc.ok {
			t.Errorf("mount %q path %q: %q %q %v, want %q %q %v", tc.mount, tc.path, script, info, ok, tc.script, tc.info, tc.ok)
		}
	}
}

// TestBareSecondsDuration: a duration without a unit is seconds, as in
// mod_wsgi's request-timeout=60.
func TestBareSecondsDuration(t *testing.T) {
	var g DaemonGroup
	if err := g.set("request-timeout", []string{"60"}); err != nil || time.Duration(g.RequestTimeout) != time.Minute {
		t.Errorf("request-timeout=60: %v, %s", err, time.Duration(g.RequestTimeout))
	}
}

// TestEverySettingIsAccepted keeps settingNames, which error messages list,
// in step with what DaemonGroup.set accepts.
func TestEverySettingIsAccepted(t *testing.T) {
	values := map[string][]string{
		"callable_object": {"app"}, "cpu_time_limit": {"600"}, "deadlock_timeout": {"60s"}, "display_name": {"%{GROUP}"},
		"env": {"A", "B"}, "graceful_timeout": {"15s"}, "home": {"/srv"}, "import_script": {"/srv/pre.py"},
		"inactivity_timeout": {"1h"}, "lang": {"C.UTF-8"}, "locale": {"C.UTF-8"}, "max_queue": {"100"},
		"maximum_requests": {"1000"}, "memory_limit": {"1GB"}, "processes": {"2"}, "python": {"python3"},
		"python_home": {"/srv/venv"}, "python_path": {"/srv/lib"}, "queue_timeout": {"45s"}, "reload_on_changes": {"on"},
		"request_timeout": {"60s"}, "restart_interval": {"1h"}, "script_reloading": {"off"},
		"shutdown_timeout": {"5s"}, "startup_timeout": {"15s"}, "threads": {"15"}, "umask": {"0027"},
		"user": {"www-data"}, "group": {"www-data"}, "supplementary_groups": {"ssl-cert", "adm"},
	}
	if len(values) != len(settingNames) {
		t.Errorf("%d settings listed, %d tested", len(settingNames), len(values))
	}
	for _, name := range settingNames {
		var g DaemonGroup
		if err := g.set(name, values[name]); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if reflect.DeepEqual(g, DaemonGroup{}) {
			t.Errorf("%s set nothing", name)
		}
	}
}
