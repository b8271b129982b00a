// Package privilege is the one place where vdeliver changes its uid and gid. Three
// changes exist, each for one caller:
//
//   - Drop: a setuid-root start that is not a delivery becomes its caller for good
//     (internal/setuid), keeping the caller's supplementary groups, which the setuid
//     exec kept;
//   - Become: a delivery started as root becomes the recipient for good, with no
//     supplementary groups, before anything under the base is opened (deliver);
//   - Effective: root building a cdb table writes it as the source file's owner, with the
//     effective ids only, and switches back (vdeliver postmap, as postmap(1) does).
//
// The switches for good set the real, effective and saved ids, gid before uid (after the
// uid changes the gid can no longer be). Every change applies to every thread of the
// process, so that no goroutine runs on a thread that kept root or the caller's groups:
// the ids and groups are set through package syscall, whose Setres*id and Setgroups
// change all threads since Go 1.16. (golang.org/x/sys/unix's Setgroups changes only the
// calling thread.)
package privilege

import (
	"fmt"
	"os"
	"syscall"
)

// Drop makes the process uid and gid for good, keeping its supplementary groups.
func Drop(uid, gid int) error {
	if err := forGood(uid, gid); err != nil {
		return err
	}
	if os.Geteuid() != uid || os.Getegid() != gid {
		return fmt.Errorf("dropping to uid %d gid %d did not take effect", uid, gid)
	}
	return nil
}

// Become makes the process uid and gid for good, with no supplementary groups.
func Become(uid, gid int) error {
	if err := syscall.Setgroups([]int{}); err != nil {
		return fmt.Errorf("setgroups: %w", err)
	}
	if err := forGood(uid, gid); err != nil {
		return err
	}
	if os.Geteuid() != uid || os.Getegid() != gid {
		return fmt.Errorf("identity switch to uid %d gid %d did not take effect", uid, gid)
	}
	return nil
}

// forGood sets the real, effective and saved gid, then uid.
func forGood(uid, gid int) error {
	if err := syscall.Setresgid(gid, gid, gid); err != nil {
		return fmt.Errorf("setresgid %d: %w", gid, err)
	}
	if err := syscall.Setresuid(uid, uid, uid); err != nil {
		return fmt.Errorf("setresuid %d: %w", uid, err)
	}
	return nil
}

// Effective switches the effective uid and gid to uid and gid, with gid as the only
// supplementary group, while the real and saved uid stay root; restore switches back to
// the ids and groups of before. The process must be root.
func Effective(uid, gid int) (restore func() error, err error) {
	groups, err := syscall.Getgroups()
	if err != nil {
		return nil, fmt.Errorf("getgroups: %w", err)
	}
	euid, egid := os.Geteuid(), os.Getegid()
	restore = func() error {
		// The saved uid is still root, so root can be had back.
		if err := syscall.Setresuid(-1, euid, -1); err != nil {
			return fmt.Errorf("back to uid %d: %w", euid, err)
		}
		if err := syscall.Setresgid(-1, egid, -1); err != nil {
			return fmt.Errorf("back to gid %d: %w", egid, err)
		}
		if err := syscall.Setgroups(groups); err != nil {
			return fmt.Errorf("setgroups: %w", err)
		}
		return nil
	}
	// Groups and gid first: after the uid changes we may no longer change them.
	if err := syscall.Setgroups([]int{gid}); err != nil {
		return nil, fmt.Errorf("setgroups %d: %w", gid, err)
	}
	if err := syscall.Setresgid(-1, gid, -1); err != nil {
		_ = restore()
		return nil, fmt.Errorf("setegid %d: %w", gid, err)
	}
	if err := syscall.Setresuid(-1, uid, -1); err != nil {
		_ = restore()
		return nil, fmt.Errorf("seteuid %d: %w", uid, err)
	}
	return restore, nil
}
