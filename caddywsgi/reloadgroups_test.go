package caddywsgi_test

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestReloadsChangingAGroup: `caddy reload` every 2 s for 20 s, alternating
// two configs that leave one daemon group alone and change another's env,
// loses no request to either group while clients keep both busy. A changed
// group's new processes serve before the old ones stop taking requests.
func TestReloadsChangingAGroup(t *testing.T) {
	if testing.Short() {
		t.Skip("20 s of reloads")
	}
	adminPort := freePort(t)
	globals := func(version string) string {
		return fmt.Sprintf(`admin localhost:%d
	wsgi_daemon steady processes=2 threads=2 python={python}
	wsgi_daemon changing processes=2 threads=2 python={python} env=VERSION=%s`, adminPort, version)
	}
	const site = `:{http_port} {
	wsgi_script /steady {apps}/app.wsgi process_group=steady
	wsgi_script /changing {apps}/app.wsgi process_group=changing
}`
	c, err := launchCaddy(t, globals("a"), site)
	if err != nil {
		t.Fatal(err)
	}
	// Each request on a connection of its own, so that requests reach the
	// servers of both configs while Caddy replaces one with the other.
	client := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	var mu sync.Mutex
	served := map[string]int{}
	steadyPIDs := map[string]bool{}
	var failures []string
	done := make(chan struct{})
	var wg sync.WaitGroup
	for i := range 8 {
		url := c.URL("/steady/pid")
		if i%2 == 1 {
			url = c.URL("/changing/getenv?name=VERSION")
		}
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
					// Caddy's own loss, not the handler's: see duringLoad.
					t.Logf("connection failed: %v", err)
				case err != nil:
					failures = append(failures, fmt.Sprintf("%s: %d %v", url, res.StatusCode, err))
				case res.StatusCode != 200:
					failures = append(failures, fmt.Sprintf("%s: %d %s", url, res.StatusCode, body))
				default:
					served[url]++
					if i%2 == 0 {
						steadyPIDs[body] = true
					}
				}
				mu.Unlock()
			}
		}()
	}

	versions := []string{"b", "a"}
	const reloads = 10
	for i := range reloads {
		time.Sleep(2 * time.Second) // the pace of the reloads, under load
		config := strings.NewReplacer("{python}", python(), "{apps}", appsDir(t), "{http_port}", strconv.Itoa(c.HTTPPort)).
			Replace(fmt.Sprintf("{\n\t%s\n\tpersist_config off\n}\n%s\n", globals(versions[i%2]), site))
		req, _ := http.NewRequest("POST", fmt.Sprintf("http://localhost:%d/load", adminPort), strings.NewReader(config))
		req.Header.Set("Content-Type", "text/caddyfile")
		res, err := plainClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Fatalf("reload %d: %d %s", i, res.StatusCode, body)
		}
		if _, got := get(t, plainClient, "GET", c.URL("/changing/getenv?name=VERSION"), nil); got != versions[i%2] {
			t.Errorf("after reload %d the changed group has VERSION %q, want %q", i, got, versions[i%2])
		}
	}
	close(done)
	wg.Wait()

	t.Logf("served: %v", served)
	if len(failures) > 0 {
		t.Errorf("%d requests failed across %d reloads: %q", len(failures), reloads, failures)
	}
	if len(served) != 2 {
		t.Errorf("served %v, want both groups", served)
	}
	if len(steadyPIDs) != 2 {
		t.Errorf("the unchanged group answered from processes %v, want its 2 all along", steadyPIDs)
	}
}
