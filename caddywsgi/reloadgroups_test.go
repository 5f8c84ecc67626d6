package caddywsgi_test

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
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
	served := map[string]int{}
	steadyPIDs := map[string]bool{}
	steady, changing := c.URL("/steady/pid"), c.URL("/changing/getenv?name=VERSION")
	versions := []string{"b", "a"}
	const reloads = 10
	failures := duringLoad(t, []string{steady, changing}, func() {
		for i := range reloads {
			time.Sleep(2 * time.Second) // the pace of the reloads, under load
			config := strings.NewReplacer("{python}", python(), "{apps}", appsDir(t), "{http_port}", strconv.Itoa(c.HTTPPort)).
				Replace(fmt.Sprintf("{\n\t%s\n\tpersist_config off\n}\n%s\n", globals(versions[i%2]), site))
			req, _ := http.NewRequest("POST", fmt.Sprintf("http://localhost:%d/load", adminPort), strings.NewReader(config))
			req.Header.Set("Content-Type", "text/caddyfile")
			res, err := plainClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != 200 {
				t.Errorf("reload %d: %d %s", i, res.StatusCode, body)
				return
			}
			if _, got := get(t, plainClient, "GET", changing, nil); got != versions[i%2] {
				t.Errorf("after reload %d the changed group has VERSION %q, want %q", i, got, versions[i%2])
			}
		}
	}, func(url, body string) {
		served[url]++
		if url == steady {
			steadyPIDs[body] = true
		}
	})

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
