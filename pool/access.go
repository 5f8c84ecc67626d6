package pool

// Checks, made before any worker starts, that the workers' user can run the
// interpreter, enter the working directory and read the application's
// files. Without them a mistake surfaces as exec's "fork/exec
// /usr/bin/python3: permission denied" (which blames the interpreter for a
// working directory it cannot enter) or as a bare "permission denied".
//
// Caddy may be root checking for another user, so access(2) cannot answer:
// the checks apply the kernel's rules to the mode bits, owner and group of
// every directory on the way and of the file. A file or directory with an
// access control list is not judged (the kernel may grant what the mode
// bits seem to refuse).

import (
	"bufio"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// accessor is a user as the kernel checks file permissions.
type accessor struct {
	name     string
	uid, gid uint32
	groups   []uint32
}

// workerAccessor is who the workers run as: id, or Caddy's own user.
func workerAccessor(id *identity) accessor {
	if id != nil {
		return accessor{name: id.name, uid: id.cred.Uid, gid: id.cred.Gid, groups: id.cred.Groups}
	}
	a := accessor{name: strconv.Itoa(os.Geteuid()), uid: uint32(os.Geteuid()), gid: uint32(os.Getegid())}
	if u, err := user.Current(); err == nil {
		a.name = u.Username
	}
	groups, _ := os.Getgroups()
	for _, g := range groups {
		a.groups = append(a.groups, uint32(g))
	}
	return a
}

// Permission bits, as in the "other" class of a mode.
const (
	permRead    = 4
	permExecute = 1 // run a file, or search (enter) a directory
)

// may reports whether a may read or execute (search) the file at path.
func (a accessor) may(path string, info fs.FileInfo, perm uint32) bool {
	st, ok := info.Sys().(*syscall.Stat_t)
	if !ok {
		return true
	}
	mode := st.Mode & 0o777
	switch {
	case a.uid == 0:
		// Root needs an execute bit to run a file, nothing else.
		return perm != permExecute || info.IsDir() || mode&0o111 != 0
	case st.Uid == a.uid:
		// The owner class applies to the owner even where others may more.
		mode >>= 6
	case st.Gid == a.gid || slices.Contains(a.groups, st.Gid):
		mode >>= 3
	}
	return mode&perm == perm || hasACL(path)
}

func hasACL(path string) bool {
	_, err := unix.Getxattr(path, "system.posix_acl_access", nil)
	return err == nil
}

// refusal is a file or directory that a may not read, run or search.
type refusal struct {
	path string
	info fs.FileInfo
	perm uint32
}

// reason is "DIR is not searchable for that user (mode 0700, owner root,
// group root)".
func (r *refusal) reason() string {
	st := r.info.Sys().(*syscall.Stat_t)
	adjective := "readable"
	switch {
	case r.perm == permExecute && r.info.IsDir():
		adjective = "searchable"
	case r.perm == permExecute:
		adjective = "executable"
	}
	return fmt.Sprintf("%s is not %s for that user (mode %04o, owner %s, group %s)",
		r.path, adjective, st.Mode&0o7777, userName(st.Uid), groupName(st.Gid))
}

// chmod is the command that gives a the access r refuses.
func (a accessor) chmod(r *refusal) string {
	st := r.info.Sys().(*syscall.Stat_t)
	class := "o"
	switch {
	case st.Uid == a.uid:
		class = "u"
	case st.Gid == a.gid || slices.Contains(a.groups, st.Gid):
		class = "g"
	}
	perm := "r"
	if r.perm == permExecute {
		perm = "x"
	}
	return fmt.Sprintf("chmod %s+%s %s", class, perm, r.path)
}

// reach follows path (absolute) as the kernel does for a: every directory
// on the way must be searchable, and symbolic links are followed wherever
// they are. It returns the path resolved and its information, or the
// directory that refuses a with the path resolved as far as it goes. An
// error (a missing file, a loop) ends the check: starting the worker
// reports those well enough.
func (a accessor) reach(path string) (string, fs.FileInfo, *refusal, error) {
	resolved := "/"
	info, err := os.Stat(resolved)
	if err != nil {
		return "", nil, nil, err
	}
	rest := strings.Split(path, "/")
	for links := 0; len(rest) > 0; {
		name := rest[0]
		rest = rest[1:]
		if name == "" || name == "." {
			continue
		}
		if !a.may(resolved, info, permExecute) {
			return filepath.Join(append([]string{resolved, name}, rest...)...), nil, &refusal{resolved, info, permExecute}, nil
		}
		next := filepath.Join(resolved, name)
		if info, err = os.Lstat(next); err != nil {
			return "", nil, nil, err
		}
		if info.Mode()&fs.ModeSymlink == 0 {
			resolved = next
			continue
		}
		if links++; links > 40 {
			return "", nil, nil, fmt.Errorf("%s: too many levels of symbolic links", path)
		}
		target, err := os.Readlink(next)
		if err != nil {
			return "", nil, nil, err
		}
		if filepath.IsAbs(target) {
			resolved = "/"
		}
		rest = append(strings.Split(target, "/"), rest...)
		if info, err = os.Stat(resolved); err != nil {
			return "", nil, nil, err
		}
	}
	return resolved, info, nil, nil
}

// check is reach, then perm on the file reached.
func (a accessor) check(path string, perm uint32) (string, *refusal) {
	resolved, info, refused, err := a.reach(path)
	if err != nil {
		return "", nil
	}
	if refused != nil {
		return resolved, refused
	}
	if !a.may(resolved, info, perm) {
		return resolved, &refusal{resolved, info, perm}
	}
	return resolved, nil
}

// checkAccess checks that the workers' user can run cfg's interpreter,
// enter its working directory and read its application files.
func checkAccess(cfg Config, id *identity) error {
	a := workerAccessor(id)
	python := cfg.Python
	if !strings.Contains(python, "/") {
		found, err := exec.LookPath(python)
		if err != nil {
			return nil // starting the worker says so
		}
		python = found
	}
	python = inDir(cfg.Dir, python)
	if resolved, r := a.check(python, permExecute); r != nil {
		return fmt.Errorf("the interpreter %s cannot be run by user %s: %s; use %s",
			shown(python, resolved), a.name, r.reason(), a.otherInterpreter(r))
	}
	if cfgFile, home := venvHome(python); home != "" {
		if _, r := a.check(home, permExecute); r != nil {
			return fmt.Errorf("the virtualenv's base interpreter directory %s (home in %s) cannot be entered by user %s: %s; build the virtualenv from %s",
				home, cfgFile, a.name, r.reason(), a.otherInterpreter(r))
		}
	}
	if cfg.Dir != "" {
		dir := inDir("", cfg.Dir)
		if resolved, r := a.check(dir, permExecute); r != nil {
			return fmt.Errorf("the working directory %s cannot be entered by user %s: %s; %s",
				shown(dir, resolved), a.name, r.reason(), a.chmod(r))
		}
	}
	type file struct{ what, path string }
	var files []file
	for _, app := range cfg.Apps {
		switch app.Type {
		case TypeScript:
			files = append(files, file{"the WSGI script", app.Target})
		case TypePaste:
			files = append(files, file{"the PasteDeploy configuration", app.Target})
		}
	}
	if cfg.ImportScript != "" {
		files = append(files, file{"the import script", cfg.ImportScript})
	}
	for _, f := range files {
		path := inDir(cfg.Dir, f.path)
		if resolved, r := a.check(path, permRead); r != nil {
			return fmt.Errorf("%s %s cannot be read by user %s: %s; %s",
				f.what, shown(path, resolved), a.name, r.reason(), a.chmod(r))
		}
	}
	return nil
}

// otherInterpreter is the fix for an interpreter that a cannot run: another
// one, or the chmod.
func (a accessor) otherInterpreter(r *refusal) string {
	const system = "/usr/bin/python3"
	where := "an interpreter outside " + r.path
	if !r.info.IsDir() {
		where = "another interpreter"
	}
	if resolved, refused := a.check(system, permExecute); refused == nil && resolved != "" &&
		!strings.HasPrefix(resolved, r.path+"/") && resolved != r.path {
		where += " such as " + system
	}
	return where + ", or " + a.chmod(r)
}

// venvHome is the base interpreter's directory of a virtualenv's
// interpreter: the home in the pyvenv.cfg that CPython looks for next to
// the path it is started as, or one directory up.
func venvHome(python string) (cfgFile, home string) {
	for _, dir := range []string{filepath.Dir(python), filepath.Dir(filepath.Dir(python))} {
		cfgFile = filepath.Join(dir, "pyvenv.cfg")
		f, err := os.Open(cfgFile)
		if err != nil {
			continue
		}
		defer f.Close()
		lines := bufio.NewScanner(f)
		for lines.Scan() {
			key, value, ok := strings.Cut(lines.Text(), "=")
			if ok && strings.TrimSpace(key) == "home" && filepath.IsAbs(strings.TrimSpace(value)) {
				return cfgFile, strings.TrimSpace(value)
			}
		}
		return "", ""
	}
	return "", ""
}

// inDir is path made absolute as a worker in dir (or Caddy's working
// directory, if empty) would see it.
func inDir(dir, path string) string {
	if !filepath.IsAbs(path) && dir != "" {
		path = filepath.Join(dir, path)
	}
	if abs, err := filepath.Abs(path); err == nil {
		return abs
	}
	return path
}

// shown is "PATH", or "PATH (RESOLVED)" when symbolic links lead elsewhere.
func shown(path, resolved string) string {
	if resolved == "" || resolved == path {
		return path
	}
	return path + " (" + resolved + ")"
}

func userName(uid uint32) string {
	if u, err := user.LookupId(strconv.FormatUint(uint64(uid), 10)); err == nil {
		return u.Username
	}
	return strconv.FormatUint(uint64(uid), 10)
}

func groupName(gid uint32) string {
	if g, err := user.LookupGroupId(strconv.FormatUint(uint64(gid), 10)); err == nil {
		return g.Name
	}
	return strconv.FormatUint(uint64(gid), 10)
}
