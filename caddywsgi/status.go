package caddywsgi

import (
	"cmp"
	_ "embed"
	"encoding/json"
	"fmt"
	"html/template"
	"mime"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-wsgi/caddy-wsgi/pool"
)

func init() {
	caddy.RegisterModule(StatusPage{})
}

// groupStatus is what operators see of a daemon group: the admin API's
// GET /wsgi/groups and the status page show the same.
type groupStatus struct {
	pool.Stats
	// Applications are the group's applications, with their mount points.
	Applications []appStatus `json:"applications"`
	// Serving is what the busy threads serve, longest-running first.
	Serving []requestStatus `json:"serving"`
}

type appStatus struct {
	App         string   `json:"app"`
	Type        string   `json:"type"`
	MountPoints []string `json:"mount_points"`
}

// requestStatus is a request that a worker thread is serving.
type requestStatus struct {
	PID    int    `json:"pid"`
	Method string `json:"method"`
	URI    string `json:"uri"`
	// Started is when the request got its worker thread, and Elapsed the
	// seconds since.
	Started time.Time `json:"started"`
	Elapsed float64   `json:"elapsed_s"`
	// Whether the client has gone: the application was told to stop, and
	// the worker finishes the request for no one.
	ClientGone bool `json:"client_gone,omitempty"`
}

// groupStatuses returns the status of every group that Caddy's running
// configs serve, by name. While a config reload replaces a group's pool,
// the new config's is shown.
func groupStatuses() []groupStatus {
	serving.mu.Lock()
	runs := make([]*groupRun, 0, len(serving.runs))
	for _, rs := range serving.runs {
		runs = append(runs, rs[len(rs)-1])
	}
	serving.mu.Unlock()

	now := time.Now()
	statuses := make([]groupStatus, len(runs))
	for i, run := range runs {
		s := groupStatus{Stats: run.pool.Stats(), Applications: make([]appStatus, len(run.cfg.Apps)), Serving: []requestStatus{}}
		for j, app := range run.cfg.Apps {
			s.Applications[j] = appStatus{App: app.Target, Type: cmp.Or(app.Type, pool.InferType(app.Target)), MountPoints: run.mounts[j]}
		}
		for _, r := range run.pool.Requests() {
			s.Serving = append(s.Serving, requestStatus{PID: r.PID, Method: r.Method, URI: r.URI,
				Started: r.Began, Elapsed: now.Sub(r.Began).Seconds(), ClientGone: r.ClientGone})
		}
		statuses[i] = s
	}
	slices.SortFunc(statuses, func(a, b groupStatus) int { return strings.Compare(a.Name, b.Name) })
	return statuses
}

// StatusPage serves a page with the state of every daemon group: its
// processes, their threads, what each busy thread serves, its queue and its
// restarts, as mod_wsgi-express's --server-status does. HTML for a browser
// (no JavaScript), JSON (what the admin API's GET /wsgi/groups gives) with
// ?format=json or Accept: application/json. It shows the URIs that clients
// request, query strings included: guard it with matchers and basic_auth.
type StatusPage struct{}

// CaddyModule returns the Caddy module information.
func (StatusPage) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.wsgi_status",
		New: func() caddy.Module { return new(StatusPage) },
	}
}

// ServeHTTP serves the status page.
func (StatusPage) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		return caddyhttp.Error(http.StatusMethodNotAllowed, fmt.Errorf("the WSGI status page answers GET and HEAD, not %s", r.Method))
	}
	statuses := groupStatuses()
	w.Header().Set("Cache-Control", "no-store")
	if wantsJSON(r) {
		w.Header().Set("Content-Type", "application/json")
		return json.NewEncoder(w).Encode(statuses)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	return statusTemplate.Execute(w, statusPage{Now: time.Now(), Groups: statuses})
}

// wantsJSON says whether the request asks for JSON: ?format=json, or an
// Accept header that lists application/json (curl's */* gets HTML).
func wantsJSON(r *http.Request) bool {
	if r.URL.Query().Get("format") == "json" {
		return true
	}
	for _, accept := range r.Header.Values("Accept") {
		for _, media := range strings.Split(accept, ",") {
			if t, _, err := mime.ParseMediaType(media); err == nil && t == "application/json" {
				return true
			}
		}
	}
	return false
}

type statusPage struct {
	Now    time.Time
	Groups []groupStatus
}

//go:embed status.html
var statusHTML string

var statusTemplate = template.Must(template.New("status").Funcs(template.FuncMap{
	// idle is how many of a process's threads wait for a request: only a
	// serving process's do.
	"idle": func(g groupStatus, w pool.ProcessStats) int {
		if w.State != pool.Serving {
			return 0
		}
		return g.Threads - w.BusyThreads
	},
	"age": func(now, t time.Time) string { return now.Sub(t).Round(time.Second).String() },
	"seconds": func(s float64) string {
		return (time.Duration(s * float64(time.Second))).Round(100 * time.Millisecond).String()
	},
	"restarts": func(counts map[pool.Reason]uint64) string {
		if len(counts) == 0 {
			return "none"
		}
		list := make([]string, 0, len(counts))
		for reason, n := range counts {
			list = append(list, fmt.Sprintf("%s %d", reason, n))
		}
		slices.Sort(list)
		return strings.Join(list, ", ")
	},
	"mib": func(b int64) string { return fmt.Sprintf("%.0f", float64(b)/(1<<20)) },
}).Parse(statusHTML))

// parseWSGIStatus sets up the status page:
//
//	wsgi_status [<matcher>]
//
// As with Caddy's metrics directive, a path (wsgi_status /server-status)
// serves the page at that path only.
func parseWSGIStatus(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	var page StatusPage
	return page, page.UnmarshalCaddyfile(h.Dispenser)
}

// UnmarshalCaddyfile reads the wsgi_status directive, which takes no
// arguments besides its matcher.
func (StatusPage) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the directive's name
	if d.NextArg() {
		return d.Errf("wsgi_status takes only a matcher (a path, or @name), got %q: want wsgi_status [<matcher>]", d.Val())
	}
	if d.NextBlock(0) {
		return d.Errf("wsgi_status takes no block")
	}
	return nil
}

// Interface guards
var (
	_ caddyhttp.MiddlewareHandler = StatusPage{}
	_ caddyfile.Unmarshaler       = StatusPage{}
)
