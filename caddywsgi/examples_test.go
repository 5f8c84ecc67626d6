package caddywsgi_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// exampleChecks lists, for each directory in caddyfile_examples/, requests
// and a text each response must contain. Every example must have an entry.
var exampleChecks = map[string][]struct{ path, want string }{
	"hello": {{"/", "Hello from caddy-wsgi!"}},
}

// TestCaddyfileExamples runs each example as its README says, from the
// repository root, and checks that it serves what it should.
func TestCaddyfileExamples(t *testing.T) {
	root, _ := filepath.Abs("..")
	dirs, err := os.ReadDir(filepath.Join(root, "caddyfile_examples"))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range dirs {
		if !d.IsDir() {
			continue
		}
		t.Run(d.Name(), func(t *testing.T) {
			checks, ok := exampleChecks[d.Name()]
			if !ok {
				t.Fatalf("caddyfile_examples/%s has no checks in exampleChecks", d.Name())
			}
			port := freePort(t)
			env := []string{"PORT=" + strconv.Itoa(port)}
			if filepath.IsAbs(python()) {
				// The examples run python3 from PATH: make that the test venv's.
				env = append(env, "PATH="+filepath.Dir(python())+":"+os.Getenv("PATH"))
			}
			c, err := runCaddyfile(t, filepath.Join(root, "caddyfile_examples", d.Name(), "Caddyfile"), root, env, false)
			if err != nil {
				t.Fatal(err)
			}
			c.HTTPPort = port
			for _, check := range checks {
				res, body := get(t, plainClient, "GET", c.URL(check.path), nil)
				if res.StatusCode != 200 || !strings.Contains(body, check.want) {
					t.Errorf("%s: %d %q, want %q", check.path, res.StatusCode, body, check.want)
				}
			}
		})
	}
}
