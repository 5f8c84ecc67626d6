package caddywsgi_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
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
		adapted := strings.NewReplacer("{apps}", appsDir(t), "{python}", python(), "{http_port}", fmt.Sprint(c.HTTPPort)).Replace(config)
		req, _ := http.NewRequest("POST", fmt.Sprintf("http://localhost:%d/load", adminPort), strings.NewReader(
			fmt.Sprintf("{\n\tadmin localhost:%d\n\tpersist_config off\n}\n%s", adminPort, adapted)))
		req.Header.Set("Content-Type", "text/caddyfile")
		res, err := plainClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Fatalf("reload: %d %s", res.StatusCode, body)
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
