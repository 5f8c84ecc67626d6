package pool

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestInterpreter: python_home's interpreter wins, then python, then
// python3.
func TestInterpreter(t *testing.T) {
	venv, prefix, empty := t.TempDir(), t.TempDir(), t.TempDir()
	for _, path := range []string{venv + "/bin/python", venv + "/bin/python3", prefix + "/bin/python3"} {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, nil, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct{ python, home, want string }{
		{"", "", "python3"},
		{"python3.11", "", "python3.11"},
		{"/opt/bin/python", "", "/opt/bin/python"},
		{"", venv, venv + "/bin/python"},
		{"python3.11", venv, venv + "/bin/python"},
		{"", prefix, prefix + "/bin/python3"},
	} {
		if got, err := Interpreter(tc.python, tc.home); err != nil || got != tc.want {
			t.Errorf("Interpreter(%q, %q) = %q, %v; want %q", tc.python, tc.home, got, err, tc.want)
		}
	}
	if _, err := Interpreter("", empty); err == nil || !strings.Contains(err.Error(), empty+" has no bin/python") {
		t.Errorf("a home without an interpreter: %v", err)
	}
}
