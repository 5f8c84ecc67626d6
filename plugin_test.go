package caddywsgi_test

import (
	"testing"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddy-wsgi/caddy-wsgi"
)

// TestRootRegistersModules: importing the module root, as
// `xcaddy build --with github.com/caddy-wsgi/caddy-wsgi` does, registers the
// Caddy modules and the wsgi-server command.
func TestRootRegistersModules(t *testing.T) {
	for _, id := range []string{"wsgi", "http.handlers.wsgi"} {
		if _, err := caddy.GetModule(id); err != nil {
			t.Errorf("module %s: %v", id, err)
		}
	}
	if _, ok := caddycmd.Commands()["wsgi-server"]; !ok {
		t.Error("no wsgi-server command")
	}
}
