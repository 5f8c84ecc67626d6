package caddywsgi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-wsgi/caddy-wsgi/pool"
)

func init() {
	caddy.RegisterModule(adminAPI{})
}

// adminAPI serves the daemon groups' endpoints on Caddy's admin API, as
// FrankenPHP serves its workers' under /frankenphp/:
//
//	GET  /wsgi/groups                 every group's status (groupStatus)
//	POST /wsgi/groups/{name}/restart  a rolling restart of the group
//
// {name} is one path segment: a name with slashes or spaces, as implicit
// groups have ("example.com/app"), is percent-encoded
// (example.com%2Fapp).
type adminAPI struct{}

// CaddyModule returns the Caddy module information.
func (adminAPI) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "admin.api.wsgi",
		New: func() caddy.Module { return new(adminAPI) },
	}
}

// Routes returns the admin routes of the wsgi app.
func (adminAPI) Routes() []caddy.AdminRoute {
	return []caddy.AdminRoute{{Pattern: "/wsgi/", Handler: caddy.AdminHandlerFunc(serveAdmin)}}
}

func serveAdmin(w http.ResponseWriter, r *http.Request) error {
	// The escaped path, in which a group name's slashes stay %2F.
	parts := strings.Split(strings.TrimPrefix(r.URL.EscapedPath(), "/wsgi/"), "/")
	switch {
	case len(parts) == 1 && parts[0] == "groups":
		if r.Method != http.MethodGet {
			return methodNotAllowed(w, r, http.MethodGet)
		}
		return writeJSON(w, http.StatusOK, groupStatuses())
	case len(parts) == 3 && parts[0] == "groups" && parts[2] == "restart":
		if r.Method != http.MethodPost {
			return methodNotAllowed(w, r, http.MethodPost)
		}
		name, err := url.PathUnescape(parts[1])
		if err != nil {
			return caddy.APIError{HTTPStatus: http.StatusBadRequest, Err: fmt.Errorf("group name %q in %s: %v", parts[1], r.URL.Path, err)}
		}
		return restartGroup(w, name)
	}
	return caddy.APIError{HTTPStatus: http.StatusNotFound,
		Err: fmt.Errorf("no such endpoint %s: the wsgi endpoints are GET /wsgi/groups and POST /wsgi/groups/{name}/restart", r.URL.EscapedPath())}
}

// restartGroup reloads the group's pool, as touching its WSGI script does: new
// processes take over as they load the application. It answers once the
// restart has begun; GET /wsgi/groups shows "restarting": true until it ends.
func restartGroup(w http.ResponseWriter, name string) error {
	p := serving.pool(name)
	if p == nil {
		return writeJSON(w, http.StatusNotFound, map[string]any{
			"error":  fmt.Sprintf("no daemon group named %q; \"groups\" lists them (percent-encode a name that has slashes or spaces in the URL path)", name),
			"groups": serving.names(),
		})
	}
	switch err := p.Reload(pool.ReasonAdmin); {
	case errors.Is(err, pool.ErrRestarting):
		return caddy.APIError{HTTPStatus: http.StatusConflict,
			Err: fmt.Errorf("daemon group %q is already restarting; try again once GET /wsgi/groups shows it with \"restarting\": false", name)}
	case err != nil:
		return caddy.APIError{HTTPStatus: http.StatusServiceUnavailable, Err: fmt.Errorf("daemon group %q: %w", name, err)}
	}
	return writeJSON(w, http.StatusAccepted, map[string]any{"group": name, "restarting": true})
}

func methodNotAllowed(w http.ResponseWriter, r *http.Request, allow string) error {
	w.Header().Set("Allow", allow)
	return caddy.APIError{HTTPStatus: http.StatusMethodNotAllowed, Err: fmt.Errorf("%s %s: method not allowed; use %s", r.Method, r.URL.EscapedPath(), allow)}
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	return json.NewEncoder(w).Encode(v)
}

// Interface guards
var (
	_ caddy.AdminRouter = adminAPI{}
)
