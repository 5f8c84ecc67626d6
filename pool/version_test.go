package pool

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/zap"
)

// TestOldInterpreterGetsVersionMessage: an interpreter older than the worker
// runtime supports fails the pool's start with a message that says so and
// names it, not a SyntaxError from the runtime. It needs an old CPython:
// pyenv's, where present.
func TestOldInterpreterGetsVersionMessage(t *testing.T) {
	home, _ := os.UserHomeDir()
	pythons, _ := filepath.Glob(filepath.Join(home, ".pyenv/versions/3.[0-8].*/bin/python"))
	old, _ := filepath.Glob(filepath.Join(home, ".pyenv/versions/2.*/bin/python"))
	pythons = append(pythons, old...)
	if len(pythons) == 0 {
		t.Skip("no Python older than 3.9 on this machine")
	}
	for _, python := range pythons {
		version := strings.Split(filepath.Base(filepath.Dir(filepath.Dir(python))), "-")[0]
		t.Run(version, func(t *testing.T) {
			cfg := lifecycleConfig(t, 1, 1)
			cfg.Python = python
			p, err := New(cfg, zap.NewNop())
			if err == nil {
				p.Close()
				t.Fatal("the pool started")
			}
			want := "caddy-wsgi needs Python 3.9 or newer; " + python + " is " + version +
				": set python or python_home to a newer interpreter"
			if !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "SyntaxError") {
				t.Errorf("error %q, want it to contain %q", err, want)
			}
		})
	}
}
