package confcheck

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"vdeliver/internal/rootonly"
)

// relativeTables: a relative table name is read in $queue_directory, where pipe(8) starts
// vdeliver and Postfix's daemons run, not where main.cf is; whoever reads main.cf is
// easily misled, and a shell's working directory used to decide.
func (c *checker) relativeTables() {
	queue := c.get("queue_directory")
	for _, t := range c.order {
		// openTables took proxy: off; a name that is no file has no directory.
		if _, dir := rootonly.TableFiles(t.typ + ":" + t.name); dir == "" || filepath.IsAbs(t.name) {
			continue
		}
		file, line := c.where(t.param)
		c.add(file, line, Warning, "table-relative",
			fmt.Sprintf("%s: table %s names a relative path: Postfix's daemons and vdeliver read it in queue_directory, as %s", t.param, t.spec, filepath.Join(queue, t.name)),
			"give the table's full path, starting with /")
	}
}

// setuidInstalled reports whether vdeliver runs setuid-root: the program the master.cf
// entry runs, or this very binary, is owned by root with the set-uid bit.
func (c *checker) setuidInstalled() bool {
	if c.lmtp != nil {
		// vdeliver lmtp runs as spawn(8)'s user= whether or not the program is set-uid.
		return false
	}
	paths := []string{"/proc/self/exe"}
	for _, s := range c.vdeliverServices() {
		if p, ok := s.Pipe(); ok && len(p.Argv) > 0 {
			paths = append(paths, p.Argv[0].Text)
		}
	}
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			continue
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Uid == 0 && fi.Mode()&fs.ModeSetuid != 0 {
			return true
		}
	}
	return false
}

// setuidOwners: in a setuid-root install a delivery refuses (4.3.5) when anyone but root
// can change the mailbox base, a table file, a /file of a domain list or a directory
// above them (a sticky world-writable directory above is accepted): the caller could
// otherwise choose where each recipient's mail is written, as that recipient.
func (c *checker) setuidOwners() {
	if !c.setuid {
		return
	}
	const why = ": a setuid-root vdeliver defers every delivery (4.3.5), because whoever can change it chooses where mail is written and as whom"
	if base := c.get("virtual_mailbox_base"); filepath.IsAbs(base) {
		if err := rootonly.Check(base, true); err != nil && !errors.Is(err, fs.ErrNotExist) {
			file, line := c.where("virtual_mailbox_base")
			c.add(file, line, Error, "setuid-base-owner", "virtual_mailbox_base: "+errText(err)+why,
				"make the base and every directory above it owned by root and writable by nobody else (chown root, chmod go-w)")
		}
	}
	for _, param := range append(append([]string{}, tableParams...), "virtual_mailbox_domains", "mydestination") {
		file, line := c.where(param)
		reported := map[string]bool{}
		for _, it := range rootonly.ListFiles(c.get(param)) {
			if reported[it.Item] {
				continue
			}
			if err := rootonly.Check(it.File, true); err != nil && !errors.Is(err, fs.ErrNotExist) {
				reported[it.Item] = true
				c.add(file, line, Error, "setuid-table-owner", fmt.Sprintf("%s: %s: %s%s", param, it.Item, errText(err), why),
					"make the table, its .db/.cdb, a file of a list and every directory above them owned by root and writable by nobody else (chown root, chmod go-w)")
			}
		}
	}
}
