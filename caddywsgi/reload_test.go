package caddywsgi_test

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestReloadKeepsUnchangedPool: a config reload that leaves an application's
// settings alone keeps its worker processes; one that changes them starts
// new ones and stops the old.
func TestReloadKeepsUnchangedPool(t *testing.T) {
	adminPort := freePort(t)
	site := func(extra string, threads int) string {
		return fmt.Sprintf(`:{http_port} {
	route {
		respond /extra %q 200
		wsgi_script / {apps}/app.wsgi {
			python {python}
			threads %d
		}
	}
}`, extra, threads)
	}
	c, err := launchCaddy(t, fmt.Sprintf("admin localhost:%d", adminPort), site("one", 2))
	if err != nil {
		t.Fatal(err)
	}
	_, pid := get(t, plainClient, "GET", c.URL("/pid"), nil)

	load := func(config string) {
		t.Helper()
		if status, body := loadCaddyfile(t, adminPort, c.HTTPPort, config); status != 200 {
			t.Fatalf("reload: %d %s", status, body)
		}
	}

	load(site("two", 2))
	if _, body := get(t, plainClient, "GET", c.URL("/extra"), nil); body != "two" {
		t.Fatalf("the new config is not serving: %q", body)
	}
	if _, after := get(t, plainClient, "GET", c.URL("/pid"), nil); after != pid {
		t.Errorf("unchanged pool restarted across a reload: pid %s became %s", pid, after)
	}

	// A changed pool is replaced, and a request in flight on the old one
	// finishes first.
	sleeping := inBackground(c.URL("/sleep?ms=1000"))
	c.waitLog("sleeping for 1000 ms")
	load(site("three", 3))
	if o := <-sleeping; o.status != 200 || o.body != "slept" {
		t.Errorf("the request in flight across the reload: %+v", o)
	}
	_, changed := get(t, plainClient, "GET", c.URL("/pid"), nil)
	if changed == pid {
		t.Errorf("changed pool kept its process %s", pid)
	}
	waitExit(t, pid)

	// A pool no longer in the config is stopped.
	load(":{http_port} {\n\trespond \"no wsgi\" 200\n}")
	if _, body := get(t, plainClient, "GET", c.URL("/pid"), nil); body != "no wsgi" {
		t.Errorf("after removing the application: %q", body)
	}
	waitExit(t, changed)
}

// loadCaddyfile replaces the config of the Caddy whose admin API listens on
// adminPort with a Caddyfile (with the placeholders of startCaddy), through
// POST /load as `caddy reload` does, and returns the API's answer.
func loadCaddyfile(t *testing.T, adminPort, httpPort int, config string) (int, string) {
	return loadCaddyfileGlobals(t, adminPort, httpPort, "", config)
}

// loadCaddyfileGlobals is loadCaddyfile with global options of its own.
func loadCaddyfileGlobals(t *testing.T, adminPort, httpPort int, globals, config string) (int, string) {
	t.Helper()
	adapted := strings.NewReplacer("{apps}", appsDir(t), "{python}", python(), "{http_port}", fmt.Sprint(httpPort)).Replace(
		fmt.Sprintf("{\n\tadmin localhost:%d\n\tpersist_config off\n\t%s\n}\n%s", adminPort, globals, config))
	req, _ := http.NewRequest("POST", fmt.Sprintf("http://localhost:%d/load", adminPort), strings.NewReader(adapted))
	req.Header.Set("Content-Type", "text/caddyfile")
	res, err := plainClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	// The old server closes its idle keep-alive connections as it shuts
	// down. A request written on one as its close crosses it is reset, and
	// net/http does not retry a request it has written: any client's lot
	// with any server that closes idle connections, not what a test of a
	// reload is about. Requests after the reload use new connections.
	plainClient.CloseIdleConnections()
	return res.StatusCode, string(body)
}

// TestReloadLosesNoRequest: requests keep being served across a config
// reload that replaces an application's pool, by the old pool until the new
// one is up: when the new application fails to load (Caddy keeps the old
// config), and when it loads (the old pool stops).
func TestReloadLosesNoRequest(t *testing.T) {
	adminPort := freePort(t)
	script := filepath.Join(caddyDir(t), "reloaded.wsgi")
	// The script as edited before each reload.
	edit := func(code string) {
		t.Helper()
		if err := os.WriteFile(script, []byte("import os, time\n"+code), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	version := func(v string) string {
		return fmt.Sprintf(`
def application(environ, start_response):
    body = b'%s %%d' %% os.getpid()
    start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', str(len(body)))])
    return [body]
`, v)
	}
	// Changing threads makes the reload start a new pool.
	site := func(threads int) string {
		return fmt.Sprintf(`:{http_port} {
	wsgi_script / %s {
		python {python}
		threads %d
		script_reloading off
	}
}`, script, threads)
	}
	edit(version("one"))
	c, err := launchCaddy(t, fmt.Sprintf("admin localhost:%d", adminPort), site(2))
	if err != nil {
		t.Fatal(err)
	}
	_, before := get(t, plainClient, "GET", c.URL("/"), nil)

	// Caddy starts the apps of a config, and stops those of the old one, in
	// no fixed order: each reload goes a few times to meet the orders that
	// lost requests. Loading slowly keeps the new server waiting for its
	// pool while requests arrive.
	for i := range 4 {
		edit("time.sleep(0.5)\nraise SyntaxError('broken on purpose')\n")
		served := 0
		failures := duringLoad(t, []string{c.URL("/")}, func() {
			if status, body := loadCaddyfile(t, adminPort, c.HTTPPort, site(3)); status == 200 || !strings.Contains(body, "broken on purpose") {
				t.Errorf("the reload with a broken script: %d %s", status, body)
			}
		}, func(string, string) { served++ })
		if len(failures) > 0 || served == 0 {
			t.Errorf("failed reload %d: %d requests served, %d failed: %q", i, served, len(failures), failures)
		}
	}
	if _, after := get(t, plainClient, "GET", c.URL("/"), nil); after != before {
		t.Errorf("after the failed reloads: %q, want the old application's %q", after, before)
	}

	for i := range 4 {
		v := fmt.Sprint("v", i)
		edit("time.sleep(0.5)\n" + version(v))
		served := 0
		failures := duringLoad(t, []string{c.URL("/")}, func() {
			if status, body := loadCaddyfile(t, adminPort, c.HTTPPort, site(4+i)); status != 200 {
				t.Errorf("the reload: %d %s", status, body)
			}
		}, func(string, string) { served++ })
		if len(failures) > 0 || served == 0 {
			t.Errorf("reload %d: %d requests served, %d failed: %q", i, served, len(failures), failures)
		}
		if _, after := get(t, plainClient, "GET", c.URL("/"), nil); !strings.HasPrefix(after, v+" ") {
			t.Errorf("after reload %d: %q, want the new application", i, after)
		}
	}
}

// duringLoad requests each of urls from four clients in a loop while
// reload runs, each request on a connection of its own so that they reach
// the servers of both configs (their listening sockets share the port). It
// calls served, one call at a time, with each 200 response's url and body,
// and returns the responses that were not a 200. Connections that fail
// without a response are logged, not returned: they are Caddy's own loss,
// which a reload without any wsgi handler has too (the kernel resets the
// connections still waiting in the accept queue of a listening socket that
// closes).
func duringLoad(t *testing.T, urls []string, reload func(), served func(url, body string)) (failures []string) {
	client := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	var mu sync.Mutex
	done := make(chan struct{})
	var wg sync.WaitGroup
	for i := range 4 * len(urls) {
		url := urls[i%len(urls)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				res, body, err := fetch(client, "GET", url, nil)
				mu.Lock()
				switch {
				case err != nil && res == nil:
					t.Logf("connection failed: %v", err)
				case err != nil:
					failures = append(failures, fmt.Sprintf("%s: %d %v", url, res.StatusCode, err))
				case res.StatusCode != 200:
					failures = append(failures, fmt.Sprintf("%s: %d %s", url, res.StatusCode, body))
				default:
					served(url, body)
				}
				mu.Unlock()
			}
		}()
	}
	// Deferred, so that the clients stop before the test ends even if
	// reload stops it with t.Fatal.
	defer wg.Wait()
	defer close(done)
	reload()
	return failures
}
