package pool

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"go.uber.org/zap"
)

// runtimePrefix begins the name of a pool's runtime directory, which goes on
// with Caddy's pid: caddy-wsgi-PID-RANDOM. A Caddy that is killed cannot
// remove its directories; the pid tells them from a running Caddy's.
const runtimePrefix = "caddy-wsgi-"

// removeStaleRuntimeDirs removes from dir the runtime directories of Caddy
// processes that are no longer running, and only this user's: another
// user's files are not ours to delete.
func removeStaleRuntimeDirs(dir string, log *zap.Logger) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	euid := uint32(os.Geteuid())
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), runtimePrefix)
		pidText, _, dash := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidText)
		if !ok || !dash || err != nil || pid <= 0 || !e.IsDir() {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue
		}
		if st, ok := info.Sys().(*syscall.Stat_t); !ok || st.Uid != euid {
			continue
		}
		// EPERM is a live process of another user.
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			continue
		}
		path := filepath.Join(dir, e.Name())
		if err := os.RemoveAll(path); err != nil {
			log.Warn("could not remove the runtime directory of a Caddy process that is no longer running",
				zap.String("path", path), zap.Int("pid", pid), zap.Error(err))
			continue
		}
		log.Info("removed the runtime directory of a Caddy process that is no longer running",
			zap.String("path", path), zap.Int("pid", pid))
	}
}
