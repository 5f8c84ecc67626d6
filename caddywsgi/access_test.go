package caddywsgi_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestAccessCheckedBeforeStart: a root Caddy whose workers run as another
// user that cannot enter the application's directory, run the interpreter
// or read the script refuses to start, naming the path, the user and the
// fix, instead of exec's "permission denied" on the interpreter.
func TestAccessCheckedBeforeStart(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	app, err := os.ReadFile(filepath.Join(appsDir(t), "app.wsgi"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		// setup makes the tree under base (which the user can enter) and
		// returns the script and the interpreter.
		setup func(t *testing.T, base string) (script, python string)
		want  string // B is base
	}{
		{"app directory not enterable", func(t *testing.T, base string) (string, string) {
			return accessFile(t, filepath.Join(base, "app"), 0o700, "app.wsgi", app, 0o644), systemPython
		}, "the working directory B/app cannot be entered by user " + testUser + ": B/app is not searchable for that user (mode 0700, owner root, group root); chmod o+x B/app"},
		{"interpreter under a private directory", func(t *testing.T, base string) (string, string) {
			private := accessDir(t, filepath.Join(base, "root"), 0o700)
			accessLink(t, systemPython, filepath.Join(private, "python3"))
			venv := accessDir(t, filepath.Join(base, "venv", "bin"), 0o755)
			python := accessLink(t, filepath.Join(private, "python3"), filepath.Join(venv, "python"))
			return accessFile(t, filepath.Join(base, "app"), 0o755, "app.wsgi", app, 0o644), python
		}, "the interpreter B/venv/bin/python (B/root/python3) cannot be run by user " + testUser + ": B/root is not searchable for that user (mode 0700, owner root, group root); use an interpreter outside B/root such as /usr/bin/python3, or chmod o+x B/root"},
		{"unreadable script", func(t *testing.T, base string) (string, string) {
			return accessFile(t, filepath.Join(base, "app"), 0o755, "app.wsgi", app, 0o600), systemPython
		}, "the WSGI script B/app/app.wsgi cannot be read by user " + testUser + ": B/app/app.wsgi is not readable for that user (mode 0600, owner root, group root); chmod o+r B/app/app.wsgi"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			// t.TempDir's parent is private to root.
			for _, dir := range []string{filepath.Dir(base), base} {
				if err := os.Chmod(dir, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			script, python := tc.setup(t, base)
			log, code := runUntilExitAs(t, true, `:{http_port} {
	wsgi_script / `+script+` user=`+testUser+` python=`+python+`
}`)
			if want := strings.ReplaceAll(tc.want, "B/", base+"/"); code == 0 || !strings.Contains(log, want) {
				t.Errorf("exit %d, want the error\n%s\nin the log:\n%s", code, want, log)
			}
		})
	}
}

func accessDir(t *testing.T, dir string, mode os.FileMode) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, mode); err != nil {
		t.Fatal(err)
	}
	return dir
}

// accessFile writes name in dir, both with their modes, and returns its path.
func accessFile(t *testing.T, dir string, dirMode os.FileMode, name string, data []byte, mode os.FileMode) string {
	t.Helper()
	path := filepath.Join(accessDir(t, dir, dirMode), name)
	if err := os.WriteFile(path, data, mode); err != nil {
		t.Fatal(err)
	}
	return path
}

func accessLink(t *testing.T, target, path string) string {
	t.Helper()
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}
	return path
}
