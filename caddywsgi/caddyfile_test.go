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
	d := caddyfile.NewTestDispenser(`wsgi_script /app /srv/app.wsgi {
		processes 2
		threads 8
		python /srv/venv/bin/python
		callable app
		working_dir /srv
		env DJANGO_SETTINGS_MODULE site.settings
		startup_timeout 30s
		queue_timeout 10s
	}`)
	var h Handler
	if err := h.UnmarshalCaddyfile(d); err != nil {
		t.Fatal(err)
	}
	want := Handler{
		MountPoint: "/app", App: "/srv/app.wsgi", Processes: 2, Threads: 8,
		Python: "/srv/venv/bin/python", Callable: "app", WorkingDir: "/srv",
		Env:            map[string]string{"DJANGO_SETTINGS_MODULE": "site.settings"},
		StartupTimeout: caddy.Duration(30 * time.Second), QueueTimeout: caddy.Duration(10 * time.Second),
	}
	if !reflect.DeepEqual(h, want) {
		t.Errorf("got %+v\nwant %+v", h, want)
	}
}

func TestUnmarshalCaddyfileErrors(t *testing.T) {
	for input, want := range map[string]string{
		`wsgi_script /app`:                                  "wrong argument count",
		`wsgi_script /app a.wsgi extra`:                     "wrong argument count",
		`wsgi_script app a.wsgi`:                            `mount point "app" must start with /`,
		"wsgi_script /app a.wsgi {\nprocesses 0\n}":         "processes must be a whole number of at least 1",
		"wsgi_script /app a.wsgi {\nthreads many\n}":        `threads must be a whole number of at least 1, not "many"`,
		"wsgi_script /app a.wsgi {\nqueue_timeout soon\n}":  "queue_timeout",
		"wsgi_script /app a.wsgi {\nenv ONLY_NAME\n}":       "wrong argument count",
		"wsgi_script /app a.wsgi {\nprocesess 2\n}":         `unknown wsgi_script option "procesess"`,
		"wsgi_script /app a.wsgi {\npython a b\n}":          "wrong argument count",
		"wsgi_script /app a.wsgi {\nstartup_timeout -x\n}":  "startup_timeout",
		"wsgi_script /app a.wsgi {\ncallable\n}":            "wrong argument count",
		"wsgi_script /app a.wsgi {\nworking_dir a b\n}":     "wrong argument count",
		"wsgi_script /app a.wsgi {\nthreads 1 2\n}":         "wrong argument count",
		"wsgi_script /app a.wsgi {\nprocesses -3\n}":        "processes must be a whole number of at least 1",
		"wsgi_script /app a.wsgi {\nenv A B C\n}":           "wrong argument count",
		"wsgi_script /app a.wsgi {\nqueue_timeout 1s 2s\n}": "wrong argument count",
	} {
		var h Handler
		err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(input))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want one containing %q", input, err, want)
		}
	}
}

func TestSplitPath(t *testing.T) {
	for _, tc := range []struct{ mount, path, script, info string }{
		{"", "/x", "", "/x"},
		{"/app", "/app", "/app", ""},
		{"/app", "/app/", "/app", "/"},
		{"/app", "/app/a/b", "/app", "/a/b"},
		{"/app", "/app/./a/../b", "/app", "/b"},
		{"/app", "/app//a//", "/app", "/a/"},
		{"/app", "/application", "", "/application"},
		{"/a/b", "/a/b/c", "/a/b", "/c"},
	} {
		h := Handler{scriptName: tc.mount}
		script, info := h.splitPath(tc.path)
		if script != tc.script || info != tc.info {
			t.Errorf("mount %q path %q: %q %q, want %q %q", tc.mount, tc.path, script, info, tc.script, tc.info)
		}
	}
}
