package caddywsgi_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// groupJSON is a group as GET /wsgi/groups and the status page's JSON give it.
type groupJSON struct {
	Name         string         `json:"name"`
	Processes    int            `json:"processes"`
	Threads      int            `json:"threads"`
	User         string         `json:"user"`
	QueueDepth   int            `json:"queue_depth"`
	Restarting   bool           `json:"restarting"`
	Requests     int            `json:"requests"`
	Restarts     map[string]int `json:"restarts"`
	Applications []struct {
		App         string   `json:"app"`
		Type        string   `json:"type"`
		MountPoints []string `json:"mount_points"`
	} `json:"applications"`
	Workers []workerJSON `json:"workers"`
	Serving []struct {
		PID        int     `json:"pid"`
		Method     string  `json:"method"`
		URI        string  `json:"uri"`
		Elapsed    float64 `json:"elapsed_s"`
		ClientGone bool    `json:"client_gone"`
	} `json:"serving"`
}

type workerJSON struct {
	PID               int    `json:"pid"`
	State             string `json:"state"`
	Started           string `json:"started"`
	Requests          int    `json:"requests"`
	BusyThreads       int    `json:"busy_threads"`
	RSS               int64  `json:"rss_bytes"`
	LastRestartReason string `json:"last_restart_reason"`
}

// pids returns the pids of the group's workers in state.
func (g groupJSON) pids(state string) []int {
	var pids []int
	for _, w := range g.Workers {
		if w.State == state {
			pids = append(pids, w.PID)
		}
	}
	slices.Sort(pids)
	return pids
}

// decodeGroups GETs url and decodes its groups, by name.
func decodeGroups(t testing.TB, url string, header http.Header) map[string]groupJSON {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header = header
	res, err := plainClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET %s: %s, Content-Type %q", url, res.Status, res.Header.Get("Content-Type"))
	}
	var list []groupJSON
	if err := json.NewDecoder(res.Body).Decode(&list); err != nil {
		t.Fatal(err)
	}
	groups := make(map[string]groupJSON)
	for _, g := range list {
		groups[g.Name] = g
	}
	return groups
}

// adminCaddy starts Caddy with its admin endpoint on a free port, and
// returns it and the endpoint's URL.
func adminCaddy(t *testing.T, globals, site string) (*caddy, string) {
	admin := "127.0.0.1:" + strconv.Itoa(freePort(t))
	c, err := launchCaddy(t, "admin "+admin+"\n\t"+globals, site)
	if err != nil {
		t.Fatal(err)
	}
	return c, "http://" + admin
}

// TestAdminAPIGroups: GET /wsgi/groups lists every group with its
// applications and mount points, settings and processes; restart answers
// 404 with the groups for an unknown name, takes an implicit group's name
// percent-encoded, and other methods get 405.
func TestAdminAPIGroups(t *testing.T) {
	c, admin := adminCaddy(t, "wsgi_daemon shop processes=2 threads=3 python={python}", `:{http_port} {
	wsgi_script /shop {apps}/app.wsgi process_group=shop
	wsgi_script /store {apps}/app.wsgi process_group=shop
	wsgi_script / {apps}/app.wsgi python={python}
}`)
	script := filepath.Join(appsDir(t), "app.wsgi")
	implicit := ":" + strconv.Itoa(c.HTTPPort) + "/"
	_, shopPID := get(t, plainClient, "GET", c.URL("/shop/pid"), nil)

	groups := decodeGroups(t, admin+"/wsgi/groups", nil)
	if len(groups) != 2 {
		t.Fatalf("groups %v, want shop and %q", groups, implicit)
	}
	shop := groups["shop"]
	if shop.Processes != 2 || shop.Threads != 3 || shop.User == "" || len(shop.Workers) != 2 || len(shop.pids("serving")) != 2 {
		t.Errorf("shop: %+v", shop)
	}
	if len(shop.Applications) != 1 || shop.Applications[0].App != script || shop.Applications[0].Type != "script" {
		t.Fatalf("shop's applications: %+v", shop.Applications)
	}
	if mounts := slices.Sorted(slices.Values(shop.Applications[0].MountPoints)); !slices.Equal(mounts, []string{"/shop", "/store"}) {
		t.Errorf("shop's mount points: %q", mounts)
	}
	if !slices.ContainsFunc(shop.Workers, func(w workerJSON) bool {
		return strconv.Itoa(w.PID) == shopPID && w.Requests == 1 && w.RSS > 0 && w.Started != ""
	}) {
		t.Errorf("shop's workers %+v: none is pid %s, with 1 request served and its RSS", shop.Workers, shopPID)
	}
	own := groups[implicit]
	if own.Processes != 1 || len(own.pids("serving")) != 1 || len(own.Applications) != 1 || !slices.Equal(own.Applications[0].MountPoints, []string{"/"}) {
		t.Errorf("%s: %+v", implicit, own)
	}

	res, body := get(t, plainClient, "POST", admin+"/wsgi/groups/blog/restart", nil)
	if res.StatusCode != 404 || !strings.Contains(body, `"groups":["`+implicit+`","shop"]`) {
		t.Errorf("restarting an unknown group: %s %s", res.Status, body)
	}
	for _, r := range []struct{ method, path, allow string }{
		{"GET", "/wsgi/groups/shop/restart", "POST"},
		{"POST", "/wsgi/groups", "GET"},
	} {
		if res, body := get(t, plainClient, r.method, admin+r.path, nil); res.StatusCode != 405 || res.Header.Get("Allow") != r.allow {
			t.Errorf("%s %s: %s (Allow %q) %s", r.method, r.path, res.Status, res.Header.Get("Allow"), body)
		}
	}

	res, body = get(t, plainClient, "POST", admin+"/wsgi/groups/"+url.PathEscape(implicit)+"/restart", nil)
	if res.StatusCode != 202 {
		t.Fatalf("restarting %q: %s %s", implicit, res.Status, body)
	}
	c.waitLog("reload finished", `"reason":"admin"`)
	after := decodeGroups(t, admin+"/wsgi/groups", nil)[implicit]
	if slices.Equal(after.pids("serving"), own.pids("serving")) || after.Workers[len(after.Workers)-1].LastRestartReason != "admin" || after.Restarts["admin"] != 1 {
		t.Errorf("after the restart: %+v; before: %+v", after, own)
	}
	if !slices.Equal(decodeGroups(t, admin+"/wsgi/groups", nil)["shop"].pids("serving"), shop.pids("serving")) {
		t.Errorf("restarting %q restarted shop too", implicit)
	}
}

// TestAdminAPIRestartUnderLoad: POST /wsgi/groups/{name}/restart replaces
// every process while clients keep sending requests, none of which fails:
// the old processes serve until their replacements have loaded the
// application (which the test holds up), and a second restart asked for
// meanwhile gets 409.
func TestAdminAPIRestartUnderLoad(t *testing.T) {
	dir := caddyDir(t)
	hold := filepath.Join(dir, "hold")
	script := filepath.Join(dir, "slow.wsgi")
	err := os.WriteFile(script, []byte(`import os, time

# A restart's new processes load this while the test holds them up.
while os.path.exists(`+strconv.Quote(hold)+`):
    time.sleep(0.02)


def application(environ, start_response):
    body = str(os.getpid()).encode()
    start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', str(len(body)))])
    return [body]
`), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	c, admin := adminCaddy(t, "wsgi_daemon shop processes=2 threads=2 python={python}", `:{http_port} {
	wsgi_script / `+script+` process_group=shop
}`)
	before := decodeGroups(t, admin+"/wsgi/groups", nil)["shop"].pids("serving")

	var served atomic.Int64
	var mu sync.Mutex
	var failures []string
	stop := make(chan struct{})
	var clients sync.WaitGroup
	for range 4 {
		clients.Add(1)
		go func() {
			defer clients.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				res, body, err := fetch(plainClient, "GET", c.URL("/"), nil)
				if err != nil || res.StatusCode != 200 {
					mu.Lock()
					failures = append(failures, fmt.Sprintf("%v %v %s", res, err, body))
					mu.Unlock()
					continue
				}
				served.Add(1)
			}
		}()
	}
	stopClients := sync.OnceFunc(func() {
		close(stop)
		clients.Wait()
	})
	defer stopClients()

	if err := os.WriteFile(hold, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	restart := admin + "/wsgi/groups/shop/restart"
	if res, body := get(t, plainClient, "POST", restart, nil); res.StatusCode != 202 {
		t.Fatalf("restart: %s %s", res.Status, body)
	}
	if res, body := get(t, plainClient, "POST", restart, nil); res.StatusCode != 409 || !strings.Contains(body, "already restarting") {
		t.Errorf("a second restart while the first runs: %s %s", res.Status, body)
	}
	// Requests go on being served while the new processes load. The
	// polls below end within 20s, as waitLog's waits do.
	deadline := time.Now().Add(20 * time.Second)
	for len(decodeGroups(t, admin+"/wsgi/groups", nil)["shop"].pids("starting")) != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("no two new processes starting: %+v", decodeGroups(t, admin+"/wsgi/groups", nil)["shop"])
		}
	}
	during := served.Load()
	for served.Load() < during+50 {
		g := decodeGroups(t, admin+"/wsgi/groups", nil)["shop"]
		if !g.Restarting || !slices.Equal(g.pids("serving"), before) || len(g.pids("starting")) != 2 {
			t.Fatalf("while the new processes load: %+v", g)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d requests served in 20s while the new processes load", served.Load()-during)
		}
	}
	os.Remove(hold)
	deadline = time.Now().Add(20 * time.Second)
	// Each snapshot has two processes serving: a new one takes its slot
	// as the old one leaves it.
	var after groupJSON
	for {
		after = decodeGroups(t, admin+"/wsgi/groups", nil)["shop"]
		if n := len(after.pids("serving")); n != 2 {
			t.Fatalf("%d processes serving during the restart: %+v", n, after)
		}
		if !after.Restarting {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still restarting after 20s: %+v", after)
		}
	}
	c.waitLog("reload finished", `"failed":0`)
	for _, pid := range after.pids("serving") {
		if slices.Contains(before, pid) {
			t.Errorf("pid %d serves on after the restart: before %v, after %v", pid, before, after.pids("serving"))
		}
	}
	stopClients()
	if len(failures) != 0 {
		t.Errorf("%d requests failed during the restart (%d served); the first: %s", len(failures), served.Load(), failures[0])
	}
	t.Logf("%d requests served, none failed", served.Load())
}
