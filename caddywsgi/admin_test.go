package caddywsgi_test

import (
	"strconv"
	"testing"
)

const adminWarning = "the admin endpoint listens on TCP, where any local user can load a config whose workers run Python as root"

// TestAdminEndpointWarning: Caddy's admin API takes a config from anyone who
// can connect, and a config can run workers as root: a root Caddy with
// daemon groups warns at start when its admin endpoint is on TCP (by
// default, or set so), naming the fix, and not when it is off or on a unix
// socket, nor when Caddy is not root.
func TestAdminEndpointWarning(t *testing.T) {
	site := `:{http_port} {
	wsgi_script / {apps}/app.wsgi user=` + testUser + ` python=` + systemPython + `
}`
	// No admin option: Caddy's default address, which CADDY_ADMIN sets (to
	// a free port, not to collide with another Caddy on localhost:2019).
	c, err := launchEnv(t, "", site, []string{"CADDY_ADMIN=localhost:" + strconv.Itoa(freePort(t))}, true)
	if err != nil {
		t.Fatal(err)
	}
	c.waitLog(adminWarning, "admin unix//run/caddy/admin.sock", "admin off", `"admin":"localhost:`)

	c, err = launchRootCaddy(t, "admin 127.0.0.1:"+strconv.Itoa(freePort(t)), site)
	if err != nil {
		t.Fatal(err)
	}
	c.waitLog(adminWarning, `"admin":"127.0.0.1:`)

	// Caddy has started its apps when it logs that it serves: no warning
	// by then is none at all.
	for _, globals := range []string{"admin off", "admin unix/{tmp}/admin.sock"} {
		c, err := launchRootCaddy(t, globals, site)
		if err != nil {
			t.Fatal(err)
		}
		if n := countLog(c, adminWarning); n != 0 {
			t.Errorf("with %s: %d admin endpoint warnings", globals, n)
		}
	}
	c, err = launchCaddy(t, "admin 127.0.0.1:"+strconv.Itoa(freePort(t)), `:{http_port} {
	wsgi_script / {apps}/app.wsgi python={python}
}`)
	if err != nil {
		t.Fatal(err)
	}
	if n := countLog(c, adminWarning); n != 0 {
		t.Errorf("a Caddy that is not root: %d admin endpoint warnings", n)
	}
}
