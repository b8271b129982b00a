package deliver

import (
	"fmt"
	"os"

	"vdeliver/internal/privilege"
)

// identity is the uid/gid this process writes as. Root may become any recipient once;
// there is no way back, so a run that would need two identities defers the second.
type identity struct {
	switched bool
	uid, gid uint32
}

// become makes the process the recipient before anything under the base is opened.
// Started as root (or setuid root): supplementary groups cleared, then gid, then uid —
// real, effective and saved, on every thread (the standard library's all-threads path
// since Go 1.16). Started as anyone else: deliver only as ourselves.
func (id *identity) become(uid, gid uint32) error {
	if id.switched {
		if uid == id.uid && gid == id.gid {
			return nil
		}
		return fmt.Errorf("already running as uid %d gid %d, cannot switch to uid %d gid %d in the same run (set the transport's destination_recipient_limit = 1)", id.uid, id.gid, uid, gid)
	}
	if err := canBecome(uid, gid); err != nil {
		return err
	}
	if os.Geteuid() == 0 {
		if err := privilege.Become(int(uid), int(gid)); err != nil {
			return err
		}
	}
	id.switched, id.uid, id.gid = true, uid, gid
	return nil
}

// canBecome reports whether a process with our ids could deliver as uid and gid: root as
// anyone but root, anyone else only as itself. It changes nothing.
func canBecome(uid, gid uint32) error {
	if os.Geteuid() == 0 {
		if uid == 0 || gid == 0 {
			return fmt.Errorf("refusing to deliver as uid %d gid %d", uid, gid)
		}
		return nil
	}
	if os.Geteuid() != int(uid) || os.Getegid() != int(gid) {
		return fmt.Errorf("running as uid %d gid %d, but the recipient's mailbox belongs to uid %d gid %d (run vdeliver as that user, or as root)",
			os.Geteuid(), os.Getegid(), uid, gid)
	}
	return nil
}
