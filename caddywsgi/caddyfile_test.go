package caddywsgi

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
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

// TestUnmarshalStatusErrors: wsgi_status takes nothing but its matcher,
// which Caddy has taken off by the time the handler reads the directive.
func TestUnmarshalStatusErrors(t *testing.T) {
	for input, want := range map[string]string{
		"wsgi_status 5":               `wsgi_status takes only a matcher (a path, or @name), got "5"`,
		"wsgi_status {\nrefresh 5\n}": "wsgi_status takes no block",
	} {
		err := StatusPage{}.UnmarshalCaddyfile(caddyfile.NewTestDispenser(input))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want one containing %q", input, err, want)
		}
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
		"wsgi_script /app a.wsgi {\nenv ONLY_NAME\n}":        "env takes a name and a value (env=NAME=VALUE inline), got 1",
		"wsgi_script /app a.wsgi {\nprocesess 2\n}":          `unknown option "procesess"; did you mean processes?`,
		"wsgi_script /app a.wsgi {\nnonsense 2\n}":           `unknown option "nonsense"; the options are: application_type, callable_object,`,
		"wsgi_script /app a.wsgi {\npython a b\n}":           "python takes one value, got 2",
		"wsgi_script /app a.wsgi {\ncallable_object\n}":      "callable_object takes one value",
		"wsgi_script /app a.wsgi {\nmemory_limit lots\n}":    `memory_limit must be a size such as 512MB, not "lots"`,
		"wsgi_script /app a.wsgi {\numask 999\n}":            `umask must be an octal number such as 0027, not "999"`,
		"wsgi_script /app a.wsgi {\nscript_reloading yes\n}": `script_reloading must be on or off, not "yes"`,
		"wsgi_script /app a.wsgi {\npython_path\n}":          "python_path takes one or more directories",
		`wsgi_script /app a.wsgi env=NOVALUE`:                `env takes a name and a value (env=NAME=VALUE inline), got 1`,
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

// TestEveryFieldIsASetting: each DaemonGroup field has its entry in
// settings, which the Caddyfile and the README take it from.
func TestEveryFieldIsASetting(t *testing.T) {
	fields := reflect.VisibleFields(reflect.TypeFor[DaemonGroup]())
	for _, f := range fields {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if lookupSetting(name) == nil {
			t.Errorf("DaemonGroup.%s (%s) has no entry in daemonSettings", f.Name, name)
		}
	}
	if len(fields) != len(daemonSettings) {
		t.Errorf("%d settings for %d DaemonGroup fields", len(daemonSettings), len(fields))
	}
}

// TestSettingMistakes: a mistaken setting is refused with what to write
// instead.
func TestSettingMistakes(t *testing.T) {
	for input, want := range map[string]string{
		// A bare number is bytes, as in mod_wsgi, and never what was meant.
		"wsgi_daemon shop memory_limit=512":       "memory_limit 512 is 512 bytes, under the minimum of 1MiB: a number without a unit is bytes (as in mod_wsgi); write a size such as 512MB",
		"wsgi_daemon shop {\nmemory_limit 1KB\n}": "memory_limit 1000 is 1000 bytes, under the minimum of 1MiB",
		// Typos.
		"wsgi_daemon shop proceses=2":            `unknown setting "proceses"; did you mean processes?`,
		"wsgi_daemon shop {\npython-hom /srv\n}": `unknown setting "python-hom"; did you mean python_home?`,
		"wsgi_daemon shop {\nthread 4\n}":        `unknown setting "thread"; did you mean threads?`,
		// mod_wsgi's options that are another setting here, or not needed.
		"wsgi_daemon shop listen-backlog=100":               `unknown setting "listen-backlog": mod_wsgi's listen-backlog is max_queue here (requests wait inside Caddy, not in a socket backlog)`,
		"wsgi_daemon shop socket-timeout=10":                `unknown setting "socket-timeout": mod_wsgi's socket-timeout is not needed here (Caddy and the workers share private socket pairs, and responses stream); remove it`,
		"wsgi_daemon shop {\nresponse_buffer_size 65536\n}": `mod_wsgi's response_buffer_size is not needed here`,
		// Nothing close: the list.
		"wsgi_daemon shop {\nfrobnicate 1\n}": `unknown setting "frobnicate"; the settings are: callable_object, cpu_time_limit,`,
	} {
		_, err := parseWSGIDaemon(caddyfile.NewTestDispenser(input), nil)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want one containing %q", input, err, want)
		}
	}
	var h Handler
	if err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser("wsgi_script /app a.wsgi {\nproces_group shop\n}")); err == nil || !strings.Contains(err.Error(), `unknown option "proces_group"; did you mean process_group?`) {
		t.Errorf("proces_group: %v", err)
	}
}

// TestMemoryLimitInJSON: JSON gets memory_limit's minimum too, at provision.
func TestMemoryLimitInJSON(t *testing.T) {
	g := DaemonGroup{MemoryLimit: 512}
	_, err := g.poolConfig("shop")
	if want := "memory_limit 512 is 512 bytes, under the minimum of 1MiB"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("memory_limit 512 in JSON: %v, want an error containing %q", err, want)
	}
	g.MemoryLimit = 1 << 20
	if _, err := g.poolConfig("shop"); err != nil {
		t.Errorf("memory_limit 1MiB: %v", err)
	}
}

// TestUndefinedProcessGroup: the Caddyfile adapter names the file and line
// of a process_group that no wsgi_daemon defines.
func TestUndefinedProcessGroup(t *testing.T) {
	for name, tc := range map[string]struct{ caddyfile, want string }{
		"typo": {`{
	wsgi_daemon shop
	wsgi_daemon blog
}
:8080 {
	wsgi_script / app.wsgi process_group=shp
}`, `wsgi_script: process_group "shp" is not defined; did you mean shop? The groups are: blog, shop, at Caddyfile:6`},
		"in a block": {`{
	wsgi_daemon shop
}
:8080 {
	wsgi_script / app.wsgi {
		threads 2
		process_group blog
	}
}`, `wsgi_script: process_group "blog" is not defined; the groups are: shop, at Caddyfile:7`},
		"no groups": {`:8080 {
	wsgi_script / app.wsgi process_group=shop
}`, `wsgi_script: process_group "shop": no daemon process groups are defined (wsgi_daemon), at Caddyfile:2`},
	} {
		t.Run(name, func(t *testing.T) {
			_, _, err := caddyfile.Adapter{ServerType: httpcaddyfile.ServerType{}}.Adapt([]byte(tc.caddyfile), map[string]any{"filename": "Caddyfile"})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}
