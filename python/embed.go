// Package python embeds the caddy-wsgi worker runtime, which runs inside the
// user's own Python interpreter.
package python

import (
	"embed"
	"io/fs"
	"os"
	"path/filepath"
)

//go:embed caddy-wsgi-worker.py caddy_wsgi/*.py
var files embed.FS

// Entrypoint is the script, relative to the directory Extract wrote to, that
// starts a worker.
const Entrypoint = "caddy-wsgi-worker.py"

// Extract writes the runtime into dir. The files are world-readable, so that
// workers running as another user can load them; they hold no secrets.
func Extract(dir string) error {
	return fs.WalkDir(files, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		target := filepath.Join(dir, path)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		data, err := files.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o644)
	})
}
