package caddywsgi_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
)

// TestFlaskApplicationFactory: a module target that calls a factory
// (gunicorn's module:create_app(...) form, Flask's factory pattern) reaches
// the worker intact, colons and quotes included, and the factory runs once
// in each process, with its arguments.
func TestFlaskApplicationFactory(t *testing.T) {
	calls := filepath.Join(caddyDir(t), "calls")
	c := startCaddy(t, fmt.Sprintf(`:{http_port} {
	wsgi_script / "flask_factory:create_app('%s', greeting='a:b')" {
		python {python}
		python_path {apps}
		processes 2
		threads 2
	}
}`, calls))
	data, err := os.ReadFile(calls)
	if err != nil {
		t.Fatal(err)
	}
	var called []int
	for _, line := range strings.Fields(string(data)) {
		pid, _ := strconv.Atoi(line)
		called = append(called, pid)
	}
	workers := workerPIDs(t, c)
	slices.Sort(called)
	slices.Sort(workers)
	if !slices.Equal(called, workers) {
		t.Errorf("the factory ran in processes %v; the workers are %v", called, workers)
	}
	for range 4 {
		res, body := get(t, plainClient, "GET", c.URL("/"), nil)
		got := jsonOf(t, res, body)
		if got["greeting"] != "a:b" || !slices.Contains(workers, int(got["pid"].(float64))) {
			t.Errorf("the application answered %v", got)
		}
	}
}

// TestModuleWithoutApplicationNamesTheFactory: a module that defines a
// factory but no application stops `caddy run` with the callables it does
// define and the target that would call the factory.
func TestModuleWithoutApplicationNamesTheFactory(t *testing.T) {
	log, code := runUntilExit(t, `:{http_port} {
	wsgi_script / flask_factory {
		application_type module
		python {python}
		python_path {apps}
	}
}`)
	want := "module flask_factory defines no 'application'; it defines these callables: create_app. " +
		"If create_app is an application factory, write flask_factory:create_app()"
	if code == 0 || !strings.Contains(log, want) {
		t.Errorf("exit code %d, want the error %q; log:\n%s", code, want, log)
	}
}

// TestWSGIServerFactoryTarget: caddy wsgi-server takes a factory call as its
// target, and the Caddyfile it writes gives the handler that target
// unchanged, colons and double quotes included.
func TestWSGIServerFactoryTarget(t *testing.T) {
	for _, target := range []string{"mod:create_app()", `mod:create_app("a:b", debug=False)`} {
		caddyfile, err := printCaddyfile(t, target)
		if err != nil {
			t.Fatal(err)
		}
		adapted, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(caddyfile), nil)
		if err != nil {
			t.Fatalf("%v\n%s", err, caddyfile)
		}
		var config any
		if err := json.Unmarshal(adapted, &config); err != nil {
			t.Fatal(err)
		}
		handlers := map[string]map[string]any{}
		collectHandlers(config, handlers)
		if app := handlers["wsgi"]["app"]; app != target {
			t.Errorf("app %q, want %q; the Caddyfile:\n%s", app, target, caddyfile)
		}
	}
}

// TestUnquotedFactoryCall: a factory call with a space, unquoted, is split
// into two tokens by the Caddyfile lexer; the error says to quote it.
func TestUnquotedFactoryCall(t *testing.T) {
	_, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(`:8080 {
	wsgi_script / myapp:create_app('production', debug=False)
}`), nil)
	if err == nil || !strings.Contains(err.Error(), `the application "myapp:create_app('production'," is cut short at a space: quote`) {
		t.Errorf("unquoted factory call with a space: %v", err)
	}
}
