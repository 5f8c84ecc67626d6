// Command caddy is Caddy with its standard modules and caddy-wsgi: the same
// program `xcaddy build --with github.com/caddy-wsgi/caddy-wsgi` produces.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/caddy-wsgi/caddy-wsgi"
)

func main() {
	caddycmd.Main()
}
