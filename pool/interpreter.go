package pool

import (
	"fmt"
	"os"
	"path/filepath"
)

// Interpreter is the Python a group runs: python_home's own bin/python (or
// bin/python3), else python, else python3. A name without a slash is looked
// up in PATH when a process starts.
func Interpreter(python, pythonHome string) (string, error) {
	if pythonHome == "" {
		if python == "" {
			return "python3", nil
		}
		return python, nil
	}
	// The home's own interpreter is what makes its site-packages the ones
	// used: CPython finds a virtualenv's pyvenv.cfg next to the path it was
	// started as. Absolute, because exec resolves a relative path against
	// cmd.Dir.
	home, err := filepath.Abs(pythonHome)
	if err != nil {
		return "", err
	}
	// An installation prefix may have only python3; a virtualenv has both.
	for _, name := range []string{"python", "python3"} {
		path := filepath.Join(home, "bin", name)
		if info, err := os.Stat(path); err == nil && !info.IsDir() {
			return path, nil
		}
	}
	return "", fmt.Errorf("python home %s has no bin/python or bin/python3", home)
}
