package caddywsgi

import (
	"reflect"

	"github.com/caddyserver/caddy/v2"
)

// adminTCPAddress returns the address of the admin endpoint of ctx's config
// if it listens on TCP, which every local user can reach: Caddy's admin API
// is unauthenticated, so any of them can load a config. "" if it is off or
// on a unix socket, which file permissions guard. (The remote admin endpoint
// authenticates its clients by certificate.)
//
// Caddy gives its apps no access to the config's admin settings: they are
// read from the Context's config by reflection, read-only. Caddy has set a
// missing admin block to its default by the time it provisions the apps.
func adminTCPAddress(ctx caddy.Context) string {
	cfg := reflect.ValueOf(ctx).FieldByName("cfg")
	if !cfg.IsValid() || cfg.Kind() != reflect.Pointer || cfg.IsNil() {
		return ""
	}
	listen := caddy.DefaultAdminListen
	if admin := cfg.Elem().FieldByName("Admin"); admin.IsValid() && !admin.IsNil() {
		if admin.Elem().FieldByName("Disabled").Bool() {
			return ""
		}
		if l := admin.Elem().FieldByName("Listen").String(); l != "" {
			listen = l
		}
	}
	// Placeholders ({env.*}) are replaced as Caddy does for the listener.
	addr, err := caddy.ParseNetworkAddress(caddy.NewReplacer().ReplaceAll(listen, ""))
	if err != nil || addr.IsUnixNetwork() || addr.IsFdNetwork() {
		return ""
	}
	return addr.String()
}
