// Package caddywsgi is caddy-wsgi as a Caddy plugin: importing it registers
// the Caddy modules, the Caddyfile directives and the wsgi-server command of
// github.com/caddy-wsgi/caddy-wsgi/caddywsgi. It exists so that the module
// root is what xcaddy builds in, as for most Caddy plugins:
//
//	xcaddy build --with github.com/caddy-wsgi/caddy-wsgi
//	xcaddy build --with github.com/caddy-wsgi/caddy-wsgi=./caddy-wsgi
package caddywsgi

import (
	_ "github.com/caddy-wsgi/caddy-wsgi/caddywsgi"
)
