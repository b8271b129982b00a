package lookup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"strings"
	"syscall"
)

// findPostmap locates Postfix's postmap(1); a variable so tests can pretend it is absent.
var findPostmap = func() (string, error) {
	if p, err := exec.LookPath("postmap"); err == nil {
		return p, nil
	}
	return exec.LookPath("/usr/sbin/postmap")
}

// patternTypes are the Postfix table types that are not fixed-key (no DICT_FLAG_FIXED):
// they are asked only with the full address.
var patternTypes = map[string]bool{"regexp": true, "pcre": true, "cidr": true, "randmap": true}

// postmapTable looks keys up by running "postmap -q KEY type:name", one process per
// query: slow, but it reads exactly what Postfix reads (lmdb, dbm, sdbm, cidr, mysql,
// pgsql, sqlite, ldap, ...).
type postmapTable struct {
	base
	postmap string
	inner   string // type:name without proxy:
	opt     *Options
}

func openPostmap(spec, typ, name, inner string, opt *Options) (Table, error) {
	bin, err := findPostmap()
	if err != nil {
		return nil, fmt.Errorf("table %s: %s: no postmap(1) to read it: %w", spec, typ, ErrUnsupported)
	}
	fixed := !patternTypes[typ]
	if typ == "unionmap" || typ == "pipemap" {
		// Postfix marks a composite fixed when any of its members is fixed.
		fixed = false
		for _, m := range SplitList(strings.TrimSuffix(strings.TrimPrefix(name, "{"), "}")) {
			if mt, _, err := ParseSpec(m); err == nil && !patternTypes[mt] {
				fixed = true
			}
		}
	}
	// No query at open: each costs a process. What a query would find out first is
	// checked here: the table's file exists and this process can read it (postmap runs
	// with our ids). A type postmap does not know fails at the first lookup, with
	// postmap's own "unsupported dictionary type" and the same deferral.
	if file := tableFile(typ, name); file != "" {
		if err := readable(file); err != nil {
			return nil, fmt.Errorf("table %s: %w", spec, err)
		}
	}
	o := *opt
	return &postmapTable{base: base{name: spec, fixed: fixed}, postmap: bin, inner: inner, opt: &o}, nil
}

// tableFile is the file Postfix opens for a table of type typ named name, for the types
// whose file can be told from the name: "" for the others (nis:, environ:, a composite,
// an ldap: or SQL table configured in main.cf rather than in a file).
func tableFile(typ, name string) string {
	switch typ {
	case "lmdb":
		return name + ".lmdb"
	case "cidr":
		return name
	case "sqlite", "mysql", "pgsql", "ldap":
		// A name that is not a path is a prefix of main.cf parameters (cfg_parser).
		if strings.HasPrefix(name, "/") || strings.HasPrefix(name, ".") {
			return name
		}
	}
	return ""
}

// readable opens file for reading and closes it. A file this process cannot read gives
// an error wrapping fs.ErrPermission that names the file and the user, because the
// delivering user is often not the one who wrote the table.
func readable(file string) error {
	f, err := os.Open(file)
	if err == nil {
		return f.Close()
	}
	if errors.Is(err, fs.ErrPermission) {
		uid := os.Geteuid()
		who := strconv.Itoa(uid)
		if u, uerr := user.LookupId(who); uerr == nil {
			who += " (" + u.Username + ")"
		}
		return fmt.Errorf("%s is not readable by uid %s: %w", file, who, err)
	}
	return err
}

// ViaPostmap reports whether t is answered by Postfix's postmap(1), one process per
// lookup, rather than read by vdeliver or asked through proxymap(8). Such a table is
// opened without a query, so only a lookup shows a type postmap does not know or a
// database it cannot reach.
func ViaPostmap(t Table) bool {
	_, ok := t.(*postmapTable)
	return ok
}

// Lookup runs postmap -f -q. -f keeps the key as given, as virtual(8) opens its tables
// without a fold flag. Exit 0 is a hit; exit 1 with nothing but warnings on stderr is a
// miss; anything else (a "fatal:" line, another status, a signal) is an error.
func (t *postmapTable) Lookup(ctx context.Context, key string) (string, bool, error) {
	args := []string{"-f"}
	if t.opt.ConfigDir != "" {
		args = append(args, "-c", t.opt.ConfigDir)
	}
	args = append(args, "-q", key, t.inner)
	cmd := exec.CommandContext(ctx, t.postmap, args...)
	if euid := os.Geteuid(); euid == 0 && os.Getuid() != 0 {
		// A set-uid run: postmap(1) takes a process whose real and effective ids differ
		// for an unsafe one and then honours -c only for a directory that root's own
		// /etc/postfix/main.cf lists in alternate_config_directories. Run it with the
		// effective ids as its real ones, as virtual(8)'s tables are opened by root.
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{
			Uid: 0, Gid: uint32(os.Getegid()), Groups: []uint32{}}}
	}
	var stdout, stderr cappedBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if stdout.over || stderr.over {
		return "", false, fmt.Errorf("postmap -q %s: more than %d bytes of output", t.inner, maxPostmapOutput)
	}
	msg := strings.TrimSpace(stderr.String())
	fatal := ""
	for _, l := range strings.Split(msg, "\n") {
		// Postfix's logger writes each control character as '?', so the line breaks and
		// tabs of a database library's message ("Connection refused\n\tIs the server
		// running ... connections?\n") arrive as "??": a space inside the line, nothing
		// at its end.
		if strings.HasSuffix(l, "??") {
			l = l[:len(l)-1]
		}
		l = strings.ReplaceAll(l, "??", " ")
		switch {
		case strings.Contains(l, ": fatal: "), strings.Contains(l, ": panic: "), strings.Contains(l, ": error: "):
			if fatal == "" {
				fatal = l
			}
		case l != "":
			t.opt.warn(Warning{Msg: l})
		}
	}
	if err == nil && fatal == "" {
		return strings.TrimSuffix(stdout.String(), "\n"), true, nil
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() == 1 && fatal == "" {
		return "", false, nil
	}
	if ctx.Err() != nil {
		return "", false, ctx.Err()
	}
	if strings.Contains(fatal, "unsupported dictionary type") {
		return "", false, &noModuleError{fatal: fatal}
	}
	if fatal != "" {
		return "", false, fmt.Errorf("postmap -q: %s", fatal)
	}
	return "", false, fmt.Errorf("postmap -q: %w", err)
}

// noModuleError is postmap(1)'s "unsupported dictionary type": Postfix has no module for
// the table type.
type noModuleError struct{ fatal string }

func (e *noModuleError) Error() string {
	return fmt.Sprintf("postmap -q: %s: %v", e.fatal, ErrUnsupported)
}

func (e *noModuleError) Unwrap() []error { return []error{ErrUnsupported, ErrNoModule} }

// maxPostmapOutput bounds what is kept of postmap(1)'s output: a table's value must not
// decide how much memory a delivery asks for.
const maxPostmapOutput = 16 << 20

// cappedBuffer keeps at most maxPostmapOutput bytes and notes that there was more; the
// rest is read and dropped, so that the child is never blocked on a full pipe.
type cappedBuffer struct {
	bytes.Buffer
	over bool
}

func (c *cappedBuffer) Write(p []byte) (int, error) {
	if room := maxPostmapOutput - c.Len(); len(p) > room {
		c.over = true
		c.Buffer.Write(p[:max(room, 0)])
		return len(p), nil
	}
	return c.Buffer.Write(p)
}
