package caddywsgi_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

const (
	testUser  = "caddywsgi-test"
	testExtra = "caddywsgi-extra"
)

// systemPython is an interpreter any user can run. scripts/test installs it.
const systemPython = "/usr/bin/python3"

// ensureTestUser creates an unprivileged user and a second group for it, and
// returns the user's credentials.
func ensureTestUser() (*syscall.Credential, error) {
	if _, err := user.LookupGroup(testExtra); err != nil {
		if out, err := exec.Command("groupadd", "--system", testExtra).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("groupadd: %v %s", err, out)
		}
	}
	return ensureSystemUser(testUser, testExtra)
}

// ensureSystemUser creates, unless it exists, a system user called name with
// no home and no login shell, in a group of its own and in the extra groups,
// and returns its credentials.
func ensureSystemUser(name string, groups ...string) (*syscall.Credential, error) {
	if _, err := user.Lookup(name); err != nil {
		args := []string{"--system", "--home-dir", "/nonexistent/" + name, "--no-create-home", "--shell", "/usr/sbin/nologin"}
		if len(groups) > 0 {
			args = append(args, "--groups", strings.Join(groups, ","))
		}
		if out, err := exec.Command("useradd", append(args, name)...).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("useradd %s: %v %s", name, err, out)
		}
	}
	u, err := user.Lookup(name)
	if err != nil {
		return nil, err
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// lookupTestUser returns the test user and its second group.
func lookupTestUser(t *testing.T) (*user.User, *user.Group) {
	t.Helper()
	u, err := user.Lookup(testUser)
	if err != nil {
		t.Fatal(err)
	}
	g, err := user.LookupGroup(testExtra)
	if err != nil {
		t.Fatal(err)
	}
	return u, g
}

// whoami is what app.wsgi's /whoami reports about the worker.
type whoami struct {
	UID, GID int
	Groups   []int
	HOME     string
	USER     string
}

func askWhoami(t *testing.T, c *caddy) whoami {
	t.Helper()
	res, body := get(t, plainClient, "GET", c.URL("/whoami"), nil)
	if res.StatusCode != 200 {
		t.Fatalf("%d %s", res.StatusCode, body)
	}
	var me whoami
	if err := json.Unmarshal([]byte(body), &me); err != nil {
		t.Fatal(err)
	}
	return me
}

func TestWorkersRunAsUser(t *testing.T) {
	c, err := launchRootCaddy(t, "admin off\n\twsgi_daemon unprivileged user="+testUser+" python="+systemPython, `:{http_port} {
	wsgi_script / {apps}/app.wsgi process_group=unprivileged
}`)
	if err != nil {
		t.Fatal(err)
	}
	u, extra := lookupTestUser(t)
	me := askWhoami(t, c)
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	extraID, _ := strconv.Atoi(extra.Gid)
	if me.UID != uid || me.GID != gid {
		t.Errorf("worker runs as uid %d gid %d, want %d %d", me.UID, me.GID, uid, gid)
	}
	if !slices.Contains(me.Groups, extraID) || slices.Contains(me.Groups, 0) {
		t.Errorf("worker groups %v, want %d (the user's) and not root's", me.Groups, extraID)
	}
	if me.HOME != u.HomeDir || me.USER != testUser {
		t.Errorf("HOME %q USER %q, want %q %q", me.HOME, me.USER, u.HomeDir, testUser)
	}
}

func TestWorkerGroupSettings(t *testing.T) {
	c, err := launchRootCaddy(t, "admin off\n\twsgi_daemon unprivileged user="+testUser+" group=nogroup supplementary_groups=adm python="+systemPython, `:{http_port} {
	wsgi_script / {apps}/app.wsgi process_group=unprivileged
}`)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := lookupTestUser(t)
	_, body := get(t, plainClient, "GET", c.URL("/whoami"), nil)
	nogroup, _ := user.LookupGroup("nogroup")
	adm, _ := user.LookupGroup("adm")
	want := `"gid": ` + nogroup.Gid + `, "groups": [` + adm.Gid + `]`
	if !strings.Contains(body, want) || !strings.Contains(body, `"uid": `+u.Uid) {
		t.Errorf("whoami %s, want uid %s and %s", body, u.Uid, want)
	}
}

// TestRootWorkersNeedUser: a root Caddy refuses to run workers as root
// unless the configuration says user root.
func TestRootWorkersNeedUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	log, code := runUntilExitAs(t, true, `:{http_port} {
	wsgi_script / {apps}/app.wsgi python={python}
}`)
	if code == 0 || !strings.Contains(log, "Caddy runs as root and no user is configured for the workers: set user") {
		t.Errorf("exit %d, log:\n%s", code, log)
	}
	c, err := launchRootCaddy(t, "admin off", `:{http_port} {
	wsgi_script / {apps}/app.wsgi python={python} user=root
}`)
	if err != nil {
		t.Fatal(err)
	}
	if me := askWhoami(t, c); me.UID != 0 || me.USER != "root" {
		t.Errorf("with user root: %+v", me)
	}
}

// TestWorkersRunAsCaddysUser: with no user setting, a Caddy that is not root
// runs its workers as its own user.
func TestWorkersRunAsCaddysUser(t *testing.T) {
	c := startCaddy(t, `:{http_port} {
	wsgi_script / {apps}/app.wsgi python={python}
}`)
	want := os.Getuid()
	if caddyUser != nil {
		want = int(caddyUser.Uid)
	}
	if me := askWhoami(t, c); me.UID != want {
		t.Errorf("worker runs as %+v, want Caddy's uid %d", me, want)
	}
}

func TestUnknownUserStopsCaddy(t *testing.T) {
	log, code := runUntilExit(t, `:{http_port} {
	wsgi_script / {apps}/app.wsgi user=no-such-user-here
}`)
	if code == 0 || !strings.Contains(log, `user \"no-such-user-here\": user: unknown user no-such-user-here`) {
		t.Errorf("exit %d, log:\n%s", code, log)
	}
}

// TestWorkerSocketsHaveNoAddress: every socket a worker holds is one end of
// a socket pair, with no path or abstract name another local user could
// connect to.
func TestWorkerSocketsHaveNoAddress(t *testing.T) {
	c := startCaddy(t, twoSingleThreadProcesses)
	named := map[string]string{} // socket inode -> address, for bound UNIX sockets
	table, err := os.ReadFile("/proc/net/unix")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(table), "\n")[1:] {
		if f := strings.Fields(line); len(f) >= 8 {
			named[f[6]] = f[7]
		}
	}
	for _, pid := range workerPIDs(t, c) {
		fds, _ := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd")
		sockets := 0
		for _, fd := range fds {
			link, _ := os.Readlink("/proc/" + strconv.Itoa(pid) + "/fd/" + fd.Name())
			inode, ok := strings.CutPrefix(link, "socket:[")
			if !ok {
				continue
			}
			sockets++
			if addr, bound := named[strings.TrimSuffix(inode, "]")]; bound {
				t.Errorf("worker %d holds a socket bound to %q", pid, addr)
			}
		}
		if sockets == 0 {
			t.Errorf("worker %d holds no socket: the check proves nothing", pid)
		}
	}
}
