package pool

import (
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// The user the access checks are made for: no account needs to exist, the
// kernel checks numbers.
const (
	testerUID   = 54321
	testerGroup = 54322 // a supplementary group
)

var tester = accessor{name: "tester", uid: testerUID, gid: testerUID, groups: []uint32{testerGroup}}

// accessTree is a directory tree for one access check: t.TempDir, reachable
// by everyone, and helpers that make entries with a mode and owner.
type accessTree struct {
	t    *testing.T
	base string
}

func newAccessTree(t *testing.T) accessTree {
	base := t.TempDir()
	// t.TempDir's parent is private to root.
	for _, dir := range []string{filepath.Dir(base), base} {
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return accessTree{t, base}
}

// dir makes the directory rel with mode, owned by uid and gid.
func (tr accessTree) dir(rel string, mode os.FileMode, uid, gid int) string {
	path := filepath.Join(tr.base, rel)
	if err := os.MkdirAll(path, 0o755); err != nil {
		tr.t.Fatal(err)
	}
	tr.own(path, mode, uid, gid)
	return path
}

// file makes the file rel, a copy of /bin/true so that it runs, with mode,
// owned by uid and gid.
func (tr accessTree) file(rel string, mode os.FileMode, uid, gid int) string {
	path := filepath.Join(tr.base, rel)
	data, err := os.ReadFile("/bin/true")
	if err != nil {
		tr.t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		tr.t.Fatal(err)
	}
	tr.own(path, mode, uid, gid)
	return path
}

func (tr accessTree) own(path string, mode os.FileMode, uid, gid int) {
	if err := os.Chown(path, uid, gid); err != nil {
		tr.t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		tr.t.Fatal(err)
	}
}

func (tr accessTree) link(rel, target string) string {
	path := filepath.Join(tr.base, rel)
	if err := os.Symlink(target, path); err != nil {
		tr.t.Fatal(err)
	}
	return path
}

// allowACL gives uid read and search access to path by a POSIX access ACL
// (the setfacl -m u:UID:rx of it), written as the kernel's xattr.
func allowACL(t *testing.T, path string, uid uint32) {
	const undefined = 0xffffffff
	acl := binary.LittleEndian.AppendUint32(nil, 2) // version
	for _, e := range []struct {
		tag, perm uint16
		id        uint32
	}{{1, 7, undefined}, {2, 5, uid}, {4, 0, undefined}, {0x10, 5, undefined}, {0x20, 0, undefined}} {
		acl = binary.LittleEndian.AppendUint16(acl, e.tag)
		acl = binary.LittleEndian.AppendUint16(acl, e.perm)
		acl = binary.LittleEndian.AppendUint32(acl, e.id)
	}
	if err := unix.Setxattr(path, "system.posix_acl_access", acl, 0); err != nil {
		t.Skipf("no POSIX ACLs here: %v", err)
	}
}

// TestCheckAccess: the checks made before workers start refuse what the
// kernel would refuse the workers' user, name the path, the user and the
// fix, and allow what the kernel allows: each case runs the interpreter,
// enters the directory or reads the file as that user to compare.
func TestCheckAccess(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root, to make files of other users")
	}
	const me, grp = testerUID, testerGroup
	for _, tc := range []struct {
		name string
		// setup makes the tree and returns the configuration to check and
		// the command that does as the workers would, to ask the kernel.
		setup func(tr accessTree) (Config, *exec.Cmd)
		want  string // "" for no error; B is the tree's base
	}{
		{"working directory private to root", func(tr accessTree) (Config, *exec.Cmd) {
			dir := tr.dir("app", 0o700, 0, 0)
			return Config{Python: "/bin/true", Dir: dir}, inDirCmd(dir)
		}, "the working directory B/app cannot be entered by user tester: B/app is not searchable for that user (mode 0700, owner root, group root); chmod o+x B/app"},
		{"working directory open to a supplementary group", func(tr accessTree) (Config, *exec.Cmd) {
			dir := tr.dir("app", 0o750, 0, grp)
			return Config{Python: "/bin/true", Dir: dir}, inDirCmd(dir)
		}, ""},
		{"working directory open to the primary group", func(tr accessTree) (Config, *exec.Cmd) {
			dir := tr.dir("app", 0o070, 0, me)
			return Config{Python: "/bin/true", Dir: dir}, inDirCmd(dir)
		}, ""},
		{"working directory whose owner class refuses", func(tr accessTree) (Config, *exec.Cmd) {
			dir := tr.dir("app", 0o075, me, 0)
			return Config{Python: "/bin/true", Dir: dir}, inDirCmd(dir)
		}, "the working directory B/app cannot be entered by user tester: B/app is not searchable for that user (mode 0075, owner 54321, group root); chmod u+x B/app"},
		{"working directory under a private directory", func(tr accessTree) (Config, *exec.Cmd) {
			tr.dir("private", 0o700, 0, 0)
			dir := tr.dir("private/app", 0o755, 0, 0)
			return Config{Python: "/bin/true", Dir: dir}, inDirCmd(dir)
		}, "the working directory B/private/app cannot be entered by user tester: B/private is not searchable for that user (mode 0700, owner root, group root); chmod o+x B/private"},
		{"working directory with an ACL for the user", func(tr accessTree) (Config, *exec.Cmd) {
			dir := tr.dir("app", 0o700, 0, 0)
			allowACL(tr.t, dir, me)
			return Config{Python: "/bin/true", Dir: dir}, inDirCmd(dir)
		}, ""},
		{"interpreter under a private directory", func(tr accessTree) (Config, *exec.Cmd) {
			tr.dir("root", 0o700, 0, 0)
			tr.dir("root/bin", 0o755, 0, 0)
			python := tr.file("root/bin/python3.11", 0o755, 0, 0)
			return Config{Python: python}, exec.Command(python)
		}, "the interpreter B/root/bin/python3.11 cannot be run by user tester: B/root is not searchable for that user (mode 0700, owner root, group root); use an interpreter outside B/root such as /usr/bin/python3, or chmod o+x B/root"},
		{"interpreter linked to from a virtualenv", func(tr accessTree) (Config, *exec.Cmd) {
			tr.dir("root", 0o700, 0, 0)
			tr.dir("root/bin", 0o755, 0, 0)
			tr.file("root/bin/python3.11", 0o755, 0, 0)
			tr.dir("venv/bin", 0o755, 0, 0)
			tr.link("venv/bin/python3", filepath.Join(tr.base, "root/bin/python3.11"))
			python := tr.link("venv/bin/python", "python3")
			return Config{Python: python}, exec.Command(python)
		}, "the interpreter B/venv/bin/python (B/root/bin/python3.11) cannot be run by user tester: B/root is not searchable for that user (mode 0700, owner root, group root); use an interpreter outside B/root such as /usr/bin/python3, or chmod o+x B/root"},
		{"interpreter linked to, reachable", func(tr accessTree) (Config, *exec.Cmd) {
			tr.dir("base/bin", 0o755, 0, 0)
			tr.file("base/bin/python3.11", 0o755, 0, 0)
			tr.dir("venv/bin", 0o755, 0, 0)
			python := tr.link("venv/bin/python", "../../base/bin/python3.11")
			return Config{Python: python}, exec.Command(python)
		}, ""},
		{"interpreter not executable by others", func(tr accessTree) (Config, *exec.Cmd) {
			python := tr.file("python3", 0o744, 0, 0)
			return Config{Python: python}, exec.Command(python)
		}, "the interpreter B/python3 cannot be run by user tester: B/python3 is not executable for that user (mode 0744, owner root, group root); use another interpreter such as /usr/bin/python3, or chmod o+x B/python3"},
		{"interpreter relative to the working directory", func(tr accessTree) (Config, *exec.Cmd) {
			dir := tr.dir("app", 0o755, 0, 0)
			tr.file("app/python3", 0o700, 0, 0)
			cmd := exec.Command("./python3")
			cmd.Dir = dir
			return Config{Python: "./python3", Dir: dir}, cmd
		}, "the interpreter B/app/python3 cannot be run by user tester: B/app/python3 is not executable for that user (mode 0700, owner root, group root); use another interpreter such as /usr/bin/python3, or chmod o+x B/app/python3"},
		{"virtualenv of copies whose base is private", func(tr accessTree) (Config, *exec.Cmd) {
			tr.dir("root", 0o700, 0, 0)
			tr.dir("root/bin", 0o755, 0, 0)
			tr.dir("venv/bin", 0o755, 0, 0)
			python := tr.file("venv/bin/python", 0o755, 0, 0)
			write(tr.t, filepath.Join(tr.base, "venv/pyvenv.cfg"), "home = "+filepath.Join(tr.base, "root/bin")+"\ninclude-system-site-packages = false\n")
			// The kernel runs the copy; the interpreter then fails to find
			// its standard library in the base directory.
			return Config{Python: python}, inDirCmd(filepath.Join(tr.base, "root/bin"))
		}, "the virtualenv's base interpreter directory B/root/bin (home in B/venv/pyvenv.cfg) cannot be entered by user tester: B/root is not searchable for that user (mode 0700, owner root, group root); build the virtualenv from an interpreter outside B/root such as /usr/bin/python3, or chmod o+x B/root"},
		{"unreadable script", func(tr accessTree) (Config, *exec.Cmd) {
			script := tr.file("app.wsgi", 0o600, 0, 0)
			return Config{Python: "/bin/true", Apps: []App{{Target: script, Type: TypeScript}}}, readCmd(script)
		}, "the WSGI script B/app.wsgi cannot be read by user tester: B/app.wsgi is not readable for that user (mode 0600, owner root, group root); chmod o+r B/app.wsgi"},
		{"script readable by its group", func(tr accessTree) (Config, *exec.Cmd) {
			script := tr.file("app.wsgi", 0o640, 0, grp)
			return Config{Python: "/bin/true", Apps: []App{{Target: script, Type: TypeScript}}}, readCmd(script)
		}, ""},
		{"script in a private directory", func(tr accessTree) (Config, *exec.Cmd) {
			tr.dir("app", 0o750, 0, 0)
			script := tr.file("app/app.wsgi", 0o644, 0, 0)
			return Config{Python: "/bin/true", Apps: []App{{Target: script, Type: TypeScript}}}, readCmd(script)
		}, "the WSGI script B/app/app.wsgi cannot be read by user tester: B/app is not searchable for that user (mode 0750, owner root, group root); chmod o+x B/app"},
		{"script relative to the working directory", func(tr accessTree) (Config, *exec.Cmd) {
			dir := tr.dir("app", 0o755, 0, 0)
			script := tr.file("app/app.wsgi", 0o600, me, 0)
			os.Chmod(script, 0o060)
			return Config{Python: "/bin/true", Dir: dir, Apps: []App{{Target: "app.wsgi", Type: TypeScript}}}, readCmd(script)
		}, "the WSGI script B/app/app.wsgi cannot be read by user tester: B/app/app.wsgi is not readable for that user (mode 0060, owner 54321, group root); chmod u+r B/app/app.wsgi"},
		{"unreadable PasteDeploy configuration", func(tr accessTree) (Config, *exec.Cmd) {
			ini := tr.file("app.ini", 0o600, 0, 0)
			return Config{Python: "/bin/true", Apps: []App{{Target: ini, Type: TypePaste}}}, readCmd(ini)
		}, "the PasteDeploy configuration B/app.ini cannot be read by user tester: B/app.ini is not readable"},
		{"unreadable import script", func(tr accessTree) (Config, *exec.Cmd) {
			script := tr.file("preload.py", 0o600, 0, 0)
			return Config{Python: "/bin/true", ImportScript: script}, readCmd(script)
		}, "the import script B/preload.py cannot be read by user tester: B/preload.py is not readable"},
		{"module applications are not files", func(tr accessTree) (Config, *exec.Cmd) {
			return Config{Python: "/bin/true", Apps: []App{{Target: "app:application", Type: TypeModule}}}, exec.Command("/bin/true")
		}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := newAccessTree(t)
			cfg, kernel := tc.setup(tr)
			err := checkAccess(cfg, &identity{name: tester.name, cred: &syscall.Credential{Uid: tester.uid, Gid: tester.gid, Groups: tester.groups}})
			want := strings.ReplaceAll(tc.want, "B/", tr.base+"/")
			switch {
			case want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case want != "" && (err == nil || !strings.HasPrefix(err.Error(), want)):
				t.Errorf("error %v\nwant    %s", err, want)
			}
			kernel.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: tester.uid, Gid: tester.gid, Groups: tester.groups}}
			if out, kerr := kernel.CombinedOutput(); (kerr == nil) != (want == "") {
				t.Errorf("the kernel disagrees: %v %s", kerr, out)
			}
		})
	}
}

// TestCheckAccessAsRoot: root workers may do anything but run a file with no
// execute bit.
func TestCheckAccessAsRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root, to make files of other users")
	}
	tr := newAccessTree(t)
	dir := tr.dir("app", 0o700, testerUID, testerUID)
	script := tr.file("app/app.wsgi", 0o000, testerUID, testerUID)
	root := &identity{name: "root", cred: &syscall.Credential{}}
	if err := checkAccess(Config{Python: "/bin/true", Dir: dir, Apps: []App{{Target: script, Type: TypeScript}}}, root); err != nil {
		t.Error(err)
	}
	python := tr.file("app/python3", 0o644, 0, 0)
	want := "the interpreter " + python + " cannot be run by user root: " + python + " is not executable for that user (mode 0644, owner root, group root)"
	if err := checkAccess(Config{Python: python}, root); err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("error %v, want %s", err, want)
	}
}

// inDirCmd enters dir, as starting a worker there does.
func inDirCmd(dir string) *exec.Cmd {
	cmd := exec.Command("/bin/true")
	cmd.Dir = dir
	return cmd
}

// readCmd reads a file, as a worker loading it does.
func readCmd(path string) *exec.Cmd {
	return exec.Command("/bin/sh", "-c", `exec cat "$1" >/dev/null`, "sh", path)
}
