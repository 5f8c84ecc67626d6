package caddywsgi_test

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const groupsGlobals = `admin off
	wsgi_daemon shop processes=2 threads=2 python={python}
	wsgi_daemon blog {
		processes 1
		threads 1
		python {python}
		env BLOG_TITLE "Group Blog"
	}`

// TestDaemonGroups: several groups, several scripts in a group, several
// sites; each request reaches the group its configuration names.
func TestDaemonGroups(t *testing.T) {
	second := freePort(t)
	c, err := launchCaddy(t, groupsGlobals, fmt.Sprintf(`:{http_port} {
	wsgi_script /shop {apps}/app.wsgi process_group=shop
	wsgi_script /blog {apps}/app.wsgi {
		process_group blog
	}
	wsgi_script /other {apps}/validated.wsgi process_group=shop
}
:%d {
	wsgi_script / {apps}/app.wsgi process_group=shop
}`, second))
	if err != nil {
		t.Fatal(err)
	}
	groupOf := func(url string) (string, string) {
		t.Helper()
		res, body := get(t, plainClient, "GET", url, nil)
		env := environOf(t, res, body)
		return fmt.Sprint(env["mod_wsgi.process_group"]), fmt.Sprint(env["BLOG_TITLE_SEEN"])
	}
	if g, _ := groupOf(c.URL("/shop/env")); g != "shop" {
		t.Errorf("/shop ran in group %q", g)
	}
	if g, _ := groupOf(c.URL("/blog/env")); g != "blog" {
		t.Errorf("/blog ran in group %q", g)
	}
	if g, _ := groupOf("http://127.0.0.1:" + strconv.Itoa(second) + "/env"); g != "shop" {
		t.Errorf("the second site ran in group %q", g)
	}
	if _, body := get(t, plainClient, "POST", c.URL("/other/"), strings.NewReader("x")); body != "validated:x" {
		t.Errorf("/other: %q", body)
	}
	// shop's three scripts share its two processes, as in mod_wsgi, and
	// each request reaches its own script.
	if pids := workerPIDs(t, c); len(pids) != 3 {
		t.Errorf("%d worker processes, want 3: shop's 2, running its three scripts, and blog's 1", len(pids))
	}
	res, body := get(t, plainClient, "GET", c.URL("/shop/env"), nil)
	if script := fmt.Sprint(environOf(t, res, body)["SCRIPT_FILENAME"]); script != appsDir(t)+"/app.wsgi" {
		t.Errorf("/shop ran %q", script)
	}

	// The group's settings reach its processes: blog has one process with
	// one thread and its own environment.
	pids := map[string]bool{}
	for i := 0; i < 4; i++ {
		_, pid := get(t, plainClient, "GET", c.URL("/blog/pid"), nil)
		pids[pid] = true
	}
	if len(pids) != 1 {
		t.Errorf("blog (processes 1) answered from %d processes", len(pids))
	}
	_, env := get(t, plainClient, "GET", c.URL("/blog/env"), nil)
	if !strings.Contains(env, `"wsgi.multithread": false`) || !strings.Contains(env, `"wsgi.multiprocess": false`) {
		t.Errorf("blog environ: %s", env)
	}
	get(t, plainClient, "GET", c.URL("/blog/logs"), nil)
	c.waitLog("to-stdout", `"group":"blog"`, `"uri":"/blog/logs"`)
}

func TestDaemonGroupEnv(t *testing.T) {
	c, err := launchCaddy(t, groupsGlobals, `:{http_port} {
	wsgi_script / {apps}/app.wsgi process_group=blog
}`)
	if err != nil {
		t.Fatal(err)
	}
	if _, body := get(t, plainClient, "GET", c.URL("/getenv?name=BLOG_TITLE"), nil); body != "Group Blog" {
		t.Errorf("BLOG_TITLE in the worker: %q", body)
	}
}

// TestDaemonGroupConfigErrors: mistakes stop `caddy run` and say what and
// where.
func TestDaemonGroupConfigErrors(t *testing.T) {
	for name, tc := range map[string]struct {
		globals, site string
		want          []string
	}{
		"undefined group": {"wsgi_daemon shop threads=2", `:{http_port} {
	wsgi_script / {apps}/app.wsgi process_group=blog
}`, []string{`wsgi_script: process_group \"blog\" is not defined; the groups are: shop, at `, "Caddyfile:7"}},
		"no groups at all": {"", `:{http_port} {
	wsgi_script / {apps}/app.wsgi process_group=blog
}`, []string{`wsgi_script: process_group \"blog\": no daemon process groups are defined (wsgi_daemon), at `, "Caddyfile:7"}},
		"settings beside process_group": {"wsgi_daemon shop threads=2", `:{http_port} {
	wsgi_script / {apps}/app.wsgi process_group=shop threads=4
}`, []string{"the group's settings belong in its wsgi_daemon"}},
		"defined twice": {"wsgi_daemon shop threads=2\n\twsgi_daemon shop threads=3", `:{http_port} {
	respond "x"
}`, []string{"wsgi_daemon shop is defined twice"}},
		"unknown setting": {"wsgi_daemon shop thread=2", `:{http_port} {
	respond "x"
}`, []string{`wsgi_daemon shop: unknown setting \"thread\"; did you mean threads?`, "Caddyfile:4"}},
		"bad value": {"wsgi_daemon shop {\n\t\tmaximum_requests lots\n\t}", `:{http_port} {
	respond "x"
}`, []string{`wsgi_daemon shop: maximum_requests must be a whole number of at least 1, not \"lots\"`}},
	} {
		t.Run(name, func(t *testing.T) {
			log, code := runUntilExit(t, tc.site, tc.globals)
			if code == 0 {
				t.Fatalf("caddy run succeeded:\n%s", log)
			}
			for _, w := range tc.want {
				if !strings.Contains(log, w) {
					t.Errorf("the error does not mention %q:\n%s", w, log)
				}
			}
		})
	}
}

func TestRequestTimeout(t *testing.T) {
	c := startCaddy(t, `:{http_port} {
	wsgi_script / {apps}/app.wsgi {
		python {python}
		threads 2
		request_timeout 300ms
	}
}`)
	_, pid := get(t, plainClient, "GET", c.URL("/pid"), nil)
	res, body := get(t, plainClient, "GET", c.URL("/sleep?ms=20000"), nil)
	if res.StatusCode != 504 {
		t.Errorf("a request over request_timeout: %d %q, want 504", res.StatusCode, body)
	}
	c.waitLog("request_timeout passed; recycling the worker process", `"uri":"/sleep?ms=20000"`)

	// A response that has started is broken off instead.
	res2, err := plainClient.Get(c.URL("/stream"))
	if err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(res2.Body); err == nil {
		t.Errorf("a started response over request_timeout read cleanly: %q", b)
	}
	res2.Body.Close()

	// The process that ran them was replaced.
	res, after := get(t, plainClient, "GET", c.URL("/pid"), nil)
	if res.StatusCode != 200 || after == pid {
		t.Errorf("after the timeouts: %d, pid %s (was %s)", res.StatusCode, after, pid)
	}
}

// TestPythonHome: python_home runs the group in a virtualenv, with a package
// the system interpreter lacks.
func TestPythonHome(t *testing.T) {
	if !filepath.IsAbs(python()) {
		t.Fatal("CADDY_WSGI_TEST_PYTHON must name the test virtualenv's interpreter (scripts/test sets it)")
	}
	venv := filepath.Dir(filepath.Dir(python()))
	if exec.Command("python3", "-c", "import django").Run() == nil {
		t.Fatal("the system python3 has Django, so this test would prove nothing")
	}
	c, err := launchCaddy(t, "admin off\n\twsgi_daemon venv python_home="+venv, `:{http_port} {
	wsgi_script / {apps}/venv.wsgi process_group=venv
}`)
	if err != nil {
		t.Fatal(err)
	}
	res, body := get(t, plainClient, "GET", c.URL("/"), nil)
	if res.StatusCode != 200 || !strings.HasPrefix(body, "django ") || !strings.HasSuffix(body, " from "+venv) {
		t.Errorf("%d %q, want Django from %s", res.StatusCode, body, venv)
	}
}

// TestMemoryLimitMinimumInJSON: a JSON config gets the Caddyfile's check of
// memory_limit, when Caddy provisions it, in a group of the wsgi app and in
// a handler's own group.
func TestMemoryLimitMinimumInJSON(t *testing.T) {
	for name, tc := range map[string]struct{ groups, handler string }{
		"wsgi app group":      {`"shop": {"memory_limit": 512}`, `"process_group": "shop"`},
		"handler's own group": {`"shop": {}`, `"memory_limit": 512`},
	} {
		t.Run(name, func(t *testing.T) {
			dir := caddyDir(t)
			config := fmt.Sprintf(`{
	"admin": {"disabled": true},
	"apps": {
		"wsgi": {"groups": {%s}},
		"http": {"servers": {"srv0": {"listen": [":%d"], "routes": [
			{"handle": [{"handler": "wsgi", "app": %q, %s}]}
		]}}}
	}
}`, tc.groups, freePort(t), filepath.Join(appsDir(t), "app.wsgi"), tc.handler)
			file := filepath.Join(dir, "caddy.json")
			if err := os.WriteFile(file, []byte(config), 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := caddyCommand(dir, false, "validate", "--config", file).CombinedOutput()
			want := "memory_limit 512 is 512 bytes, under the minimum of 1MiB"
			if err == nil || !strings.Contains(string(out), want) {
				t.Errorf("caddy validate: %v, want an error containing %q:\n%s", err, want, out)
			}
		})
	}
}

// TestImplicitGroupPerMount: without process_group, each wsgi_script runs in
// a group of its own, even with the same script and settings as another, as
// mod_wsgi gives each host and mount point an interpreter of its own: one
// script at two mount points, and in two sites at the same mount point, runs
// in three processes, each seeing only its own mount point, in a group named
// after its site and mount point.
func TestImplicitGroupPerMount(t *testing.T) {
	second := freePort(t)
	c := startCaddy(t, fmt.Sprintf(`:{http_port} {
	wsgi_script /a {apps}/app.wsgi python={python}
	wsgi_script /b {apps}/app.wsgi python={python}
}
:%d {
	wsgi_script /a {apps}/app.wsgi python={python}
}`, second))
	secondSite := "http://127.0.0.1:" + strconv.Itoa(second)
	mounts := []struct{ base, scriptName string }{{c.URL("/a"), "/a"}, {c.URL("/b"), "/b"}, {secondSite + "/a", "/a"}}
	pids := map[string]string{}
	groups := map[string]string{}
	for round := range 2 {
		for _, m := range mounts {
			_, pid := get(t, plainClient, "GET", m.base+"/pid", nil)
			res, body := get(t, plainClient, "GET", m.base+"/env", nil)
			env := environOf(t, res, body)
			if env["SCRIPT_NAME"] != m.scriptName {
				t.Errorf("%s: SCRIPT_NAME %q", m.base, env["SCRIPT_NAME"])
			}
			if round == 0 {
				pids[m.base], groups[m.base] = pid, fmt.Sprint(env["mod_wsgi.process_group"])
			} else if pid != pids[m.base] {
				t.Errorf("%s: served by process %s, then %s", m.base, pids[m.base], pid)
			}
		}
	}
	if len(pids) != 3 || pids[mounts[0].base] == pids[mounts[1].base] || pids[mounts[0].base] == pids[mounts[2].base] ||
		pids[mounts[1].base] == pids[mounts[2].base] {
		t.Errorf("the three mounts share processes: %v", pids)
	}
	first := ":" + strconv.Itoa(c.HTTPPort)
	for base, want := range map[string]string{
		mounts[0].base: first + "/a",
		mounts[1].base: first + "/b",
		mounts[2].base: ":" + strconv.Itoa(second) + "/a",
	} {
		if groups[base] != want {
			t.Errorf("%s: group %q, want %q", base, groups[base], want)
		}
	}
}
