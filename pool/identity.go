package pool

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"strconv"
	"syscall"
)

// identity is who the workers run as when it is not Caddy's own user.
type identity struct {
	name string // the user's, for error messages
	cred *syscall.Credential
	env  []string // HOME, USER and LOGNAME of that user
}

// ErrRoot is a pool that would run its workers as root without being told
// to: an application bug or exploit would then own the machine.
var ErrRoot = errors.New("Caddy runs as root and no user is configured for the workers: set user to the account they should run as (such as www-data), or to root to allow running them as root")

// lookupIdentity resolves Config.User, Group and SupplementaryGroups, so that
// a mistake stops the pool from starting rather than every spawn failing.
func lookupIdentity(cfg Config) (*identity, error) {
	if cfg.User == "" {
		if cfg.Group != "" || len(cfg.SupplementaryGroups) > 0 {
			return nil, fmt.Errorf("group and supplementary_groups need user")
		}
		if os.Geteuid() == 0 {
			return nil, ErrRoot
		}
		return nil, nil
	}
	u, err := user.Lookup(cfg.User)
	if err != nil {
		return nil, fmt.Errorf("user %q: %w", cfg.User, err)
	}
	uid, _ := strconv.ParseUint(u.Uid, 10, 32)
	gid, _ := strconv.ParseUint(u.Gid, 10, 32)
	if euid := os.Geteuid(); euid != 0 && uint64(euid) != uid {
		return nil, fmt.Errorf("running workers as user %q needs Caddy to run as root", cfg.User)
	}
	if cfg.Group != "" {
		if gid, err = groupID(cfg.Group); err != nil {
			return nil, err
		}
	}
	// Without supplementary groups configured, the user's own, as initgroups
	// gives a login.
	names := cfg.SupplementaryGroups
	if names == nil {
		if names, err = u.GroupIds(); err != nil {
			return nil, fmt.Errorf("groups of user %q: %w", cfg.User, err)
		}
	}
	groups := make([]uint32, 0, len(names))
	for _, name := range names {
		id, err := groupID(name)
		if err != nil {
			return nil, err
		}
		groups = append(groups, uint32(id))
	}
	return &identity{
		name: u.Username,
		cred: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: groups},
		env:  []string{"HOME=" + u.HomeDir, "USER=" + u.Username, "LOGNAME=" + u.Username},
	}, nil
}

// String is the name of the user the workers run as: Caddy's own for a nil
// identity.
func (id *identity) String() string {
	if id != nil {
		return id.name
	}
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return strconv.Itoa(os.Geteuid())
}

// groupID accepts a group name or number.
func groupID(name string) (uint64, error) {
	if id, err := strconv.ParseUint(name, 10, 32); err == nil {
		return id, nil
	}
	g, err := user.LookupGroup(name)
	if err != nil {
		return 0, fmt.Errorf("group %q: %w", name, err)
	}
	return strconv.ParseUint(g.Gid, 10, 32)
}
