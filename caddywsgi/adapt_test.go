package caddywsgi_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddytest"
)

// TestCaddyfileAdapt checks that each testdata/adapt/*.caddyfiletest
// Caddyfile adapts to the JSON below its separator line, as Caddy's own
// caddyfile_adapt tests do.
func TestCaddyfileAdapt(t *testing.T) {
	files, _ := filepath.Glob("testdata/adapt/*.caddyfiletest")
	if len(files) == 0 {
		t.Fatal("no adapt fixtures")
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		caddyfile, json, ok := strings.Cut(string(data), "----------")
		if !ok {
			t.Fatalf("%s: no separator line", file)
		}
		if !caddytest.CompareAdapt(t, file, caddyfile, "caddyfile", strings.TrimSpace(json)) {
			t.Errorf("%s: the adapted JSON differs", file)
		}
	}
}
