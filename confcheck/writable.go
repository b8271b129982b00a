package confcheck

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"vdeliver/deliver"
)

// mailboxWrites: for every mailbox whose path can be known (the entries of
// virtual_mailbox_maps' text sources), the directory the delivery has to create or write
// in must be writable by the uid and gid the id maps give that address, by mode bits
// with that gid only (the delivery clears the supplementary groups when it switches).
// Otherwise every delivery to it defers 4.2.0 (maildir: "create maildir file: Permission
// denied"). One finding per directory and identity, naming the first address.
func (c *checker) mailboxWrites() {
	base := c.get("virtual_mailbox_base")
	if !strings.HasPrefix(base, "/") {
		return // base-unset, base-relative
	}
	if fi, err := os.Stat(base); err != nil || !fi.IsDir() {
		return // base-missing
	}
	type denied struct {
		dir      string
		uid, gid uint32
		first    string
		count    int
		file     string
		line     int
		err      error
		isBase   bool
		missing  bool
	}
	minUID, err := c.cf.Int("virtual_minimum_uid")
	if err != nil {
		return // parameter-error
	}
	var order []*denied
	type target struct {
		dir      string
		uid, gid uint32
	}
	seen := map[target]*denied{}
	for _, t := range c.specs("virtual_mailbox_maps") {
		for _, e := range t.entries {
			if deliver.CheckMailbox(e.value) != nil {
				continue // mailbox-dotdot, mailbox-invalid
			}
			key := strings.ToLower(e.key)
			uid, ok1 := c.idFor("virtual_uid_maps", key)
			gid, ok2 := c.idFor("virtual_gid_maps", key)
			if !ok1 || !ok2 || uid == 0 || gid == 0 || int64(uid) < minUID {
				continue // the id findings
			}
			dir, missing, err := writeTarget(base, e.value)
			if err == nil && !missing {
				err = mayWrite(dir, uid, gid)
			}
			if err == nil && !missing {
				continue
			}
			k := target{dir, uid, gid}
			if d := seen[k]; d != nil {
				d.count++
				continue
			}
			d := &denied{dir: dir, uid: uid, gid: gid, first: e.key, count: 1, file: t.name, line: e.line, err: err,
				isBase: filepath.Clean(dir) == filepath.Clean(base), missing: missing}
			seen[k] = d
			order = append(order, d)
		}
	}
	bfile, bline := c.where("virtual_mailbox_base")
	for _, d := range order {
		more := ""
		if d.count > 1 {
			more = fmt.Sprintf(" and %d more", d.count-1)
		}
		switch {
		case d.missing:
			c.add(d.file, d.line, Error, "mbox-dir-missing",
				fmt.Sprintf("the directory %s of the mbox of %s%s does not exist: vdeliver creates mbox files, not their directories, so deliveries defer (4.2.0)", d.dir, d.first, more),
				fmt.Sprintf("create it for the mailbox owner: install -d -o %d -g %d -m 0700 %s", d.uid, d.gid, d.dir))
		case d.isBase:
			c.add(bfile, bline, Error, "base-not-writable",
				fmt.Sprintf("uid %d gid %d, which the mailboxes of %s%s belong to, cannot create directories in virtual_mailbox_base %s (%v): deliveries defer (4.2.0)", d.uid, d.gid, d.first, more, d.dir, d.err),
				fmt.Sprintf("give the mailbox owner the base: chown %d:%d %s (or create each domain directory owned by it)", d.uid, d.gid, d.dir))
		default:
			c.add(d.file, d.line, Error, "mailbox-not-writable",
				fmt.Sprintf("uid %d gid %d cannot write %s, where the mailbox of %s%s is delivered (%v): deliveries defer (4.2.0)", d.uid, d.gid, d.dir, d.first, more, d.err),
				fmt.Sprintf("chown -R %d:%d %s", d.uid, d.gid, d.dir))
		}
	}
}

// idFor is the id the first table of param that answers gives key, as a delivery parses
// it; ok is false when no table answers or the answer is not an id.
func (c *checker) idFor(param, key string) (uint32, bool) {
	for _, t := range c.specs(param) {
		if t.t == nil {
			return 0, false
		}
		v, hit, err := t.t.Lookup(c.ctx, key)
		if err != nil {
			return 0, false
		}
		if !hit {
			continue
		}
		n, err := deliver.ParseID(v)
		if err != nil {
			return 0, false
		}
		return uint32(n), true
	}
	return 0, false
}

// writeTarget is the directory a delivery to mailbox (a virtual_mailbox_maps result)
// must be able to write in: for a maildir its tmp/ when that exists, else the deepest
// existing directory on its path (where the first missing one is made); for an mbox its
// directory, which the delivery does not create (missing).
func writeTarget(base, mailbox string) (dir string, missing bool, err error) {
	p := filepath.Join(base, strings.TrimLeft(mailbox, "/"))
	if strings.HasSuffix(mailbox, "/") {
		if fi, err := os.Stat(filepath.Join(p, "tmp")); err == nil && fi.IsDir() {
			return filepath.Join(p, "tmp"), false, nil
		}
		for d := p; ; d = filepath.Dir(d) {
			fi, err := os.Stat(d)
			if err == nil {
				if !fi.IsDir() {
					return d, false, fmt.Errorf("%s is not a directory", d)
				}
				return d, false, nil
			}
			if !errors.Is(err, fs.ErrNotExist) || d == "/" {
				return d, false, err
			}
		}
	}
	d := filepath.Dir(p)
	if _, err := os.Stat(d); errors.Is(err, fs.ErrNotExist) {
		return d, true, nil
	}
	return d, false, nil
}

// mayWrite reports, by mode bits, why uid and gid cannot create entries in dir: search
// permission on every directory above it, write and search on dir. Root may.
func mayWrite(dir string, uid, gid uint32) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	check := func(p string, bits fs.FileMode) error {
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok || uid == 0 {
			return nil
		}
		perm := fi.Mode().Perm()
		var have fs.FileMode
		switch {
		case st.Uid == uid:
			have = perm >> 6
		case st.Gid == gid:
			have = perm >> 3
		default:
			have = perm
		}
		if have&bits != bits {
			return fmt.Errorf("%s is mode %#o, owner %d:%d", p, perm, st.Uid, st.Gid)
		}
		return nil
	}
	var above []string
	for d := filepath.Dir(abs); ; d = filepath.Dir(d) {
		above = append(above, d)
		if d == "/" {
			break
		}
	}
	slices.Reverse(above)
	for _, d := range above {
		if err := check(d, 1); err != nil {
			return err
		}
	}
	return check(abs, 3)
}
