package cli

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
	"golang.org/x/sys/unix"
)

// Script commands of the postmap_* and query_* scripts.
func init() {
	scriptCmds["needpostmap"] = cmdNeedPostmap
	scriptCmds["gentable"] = cmdGenTable
	scriptCmds["ttystderr"] = cmdTTYStderr
}

// needpostmap [type...]: checks for Debian's postmap before a script that compares
// with it. It must be in the script's $PATH (CI's has /usr/sbin) and read each table
// type (default cdb); $POSTMAP is set to it and $PFCONF to an empty Postfix
// configuration directory, so "exec $POSTMAP -c $PFCONF ..." needs no configured mail
// system. A missing postmap fails when CI=true (CI installs postfix and postfix-cdb);
// elsewhere the script's next line, "[!exec:postmap] skip", skips it. A postmap that
// cannot read the type fails: half an installation is a broken one.
func cmdNeedPostmap(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("usage: needpostmap [type...]")
	}
	if len(args) == 0 {
		args = []string{"cdb"}
	}
	bin := ""
	for _, dir := range filepath.SplitList(ts.Getenv("PATH")) {
		if p := filepath.Join(dir, "postmap"); unix.Access(p, unix.X_OK) == nil {
			bin = p
			break
		}
	}
	if bin == "" {
		if os.Getenv("CI") == "true" {
			ts.Fatalf("CI=true but Postfix's postmap is not in $PATH (apt-get install postfix postfix-cdb)")
		}
		return
	}
	conf := ts.MkAbs(".postfix")
	ts.Check(os.MkdirAll(conf, 0o755))
	ts.Check(os.WriteFile(filepath.Join(conf, "main.cf"), nil, 0o644))
	out, err := exec.Command(filepath.Join(filepath.Dir(bin), "postconf"), "-c", conf, "-m").Output()
	if err != nil {
		ts.Fatalf("postconf -m: %v", err)
	}
	types := strings.Fields(string(out))
	for _, t := range args {
		if !slices.Contains(types, t) {
			ts.Fatalf("Postfix's postmap cannot read %s: tables (Debian: apt-get install postfix-%s)", t, t)
		}
	}
	ts.Setenv("POSTMAP", bin)
	ts.Setenv("PFCONF", conf)
}

// gentable file n: writes a source table of n entries, "UserI@Example.ORG" mapped to
// "example.org/userI/", i from 0.
func cmdGenTable(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: gentable file n")
	}
	n, err := strconv.Atoi(args[1])
	ts.Check(err)
	f, err := os.Create(ts.MkAbs(args[0]))
	ts.Check(err)
	w := bufio.NewWriter(f)
	for i := range n {
		fmt.Fprintf(w, "User%d@Example.ORG\texample.org/user%d/\n", i, i)
	}
	ts.Check(w.Flush())
	ts.Check(f.Close())
}

// ttystderr file exit args...: runs vdeliver with its standard error on a
// pseudo-terminal (standard input empty, standard output ignored) and fails unless it
// exits with exactly exit; what the terminal received is written to file.
func cmdTTYStderr(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: ttystderr file exit args...")
	}
	want, err := strconv.Atoi(args[1])
	ts.Check(err)
	ptm, pts, err := openPTY()
	ts.Check(err)
	defer ptm.Close()
	bin, err := exec.LookPath("vdeliver")
	ts.Check(err)
	cmd := exec.Command(bin, args[2:]...)
	cmd.Dir = ts.MkAbs(".")
	cmd.Env = []string{"PATH=" + ts.Getenv("PATH"), "HOME=/no-home", "TZ=UTC", "TMPDIR=" + ts.Getenv("TMPDIR")}
	cmd.Stderr = pts
	ts.Check(cmd.Start())
	pts.Close()
	var got strings.Builder
	done := make(chan error, 1)
	go func() {
		_, err := io.Copy(&got, ptm)
		done <- err
	}()
	err = cmd.Wait()
	// The child is gone and we closed our copy of the terminal, so reading ends (EIO
	// on Linux once the last slave descriptor is closed).
	if cerr := <-done; cerr != nil && !errors.Is(cerr, unix.EIO) {
		ts.Fatalf("reading the terminal: %v", cerr)
	}
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		ts.Fatalf("running vdeliver: %v", err)
	}
	ts.Check(os.WriteFile(ts.MkAbs(args[0]), []byte(got.String()), 0o644))
	if code != want {
		ts.Fatalf("vdeliver exited %d, want %d; terminal:\n%q", code, want, got.String())
	}
}

// openPTY opens a pseudo-terminal pair with /dev/ptmx (posix_openpt, unlockpt,
// ptsname), in raw-ish output mode so that bytes arrive as written.
func openPTY() (ptm, pts *os.File, err error) {
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, nil, err
	}
	fd := int(m.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		m.Close()
		return nil, nil, fmt.Errorf("unlockpt: %w", err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		m.Close()
		return nil, nil, fmt.Errorf("ptsname: %w", err)
	}
	s, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		m.Close()
		return nil, nil, err
	}
	// No "\n" to "\r\n" translation: the file then holds exactly what was written.
	t, err := unix.IoctlGetTermios(int(s.Fd()), unix.TCGETS)
	if err == nil {
		t.Oflag &^= unix.OPOST
		err = unix.IoctlSetTermios(int(s.Fd()), unix.TCSETS, t)
	}
	if err != nil {
		m.Close()
		s.Close()
		return nil, nil, fmt.Errorf("termios: %w", err)
	}
	return m, s, nil
}

// TestPostmapOwner: as Postfix's postmap, root building a table from a source someone
// else owns writes it as that owner, so that owner's say-so never creates a root-owned
// file; -o keeps root; root is given back after each table; and an owner who may not
// write where the table goes is refused, the old table staying. A Go test rather than a
// script because it needs a skip when not root, which a script command cannot give.
func TestPostmapOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("not root: this test checks what postmap does when root runs it on someone else's file")
	}
	t.Parallel()
	bin, err := exec.LookPath("vdeliver") // put in $PATH by testscript.Main
	if err != nil {
		t.Fatal(err)
	}
	uid, gid := deliveryUID()
	top := t.TempDir()
	if err := os.Chmod(top, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(path string, own bool) {
		t.Helper()
		if err := os.WriteFile(path, []byte("a b\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if own {
			if err := os.Chown(path, uid, gid); err != nil {
				t.Fatal(err)
			}
		}
	}
	postmap := func(want int, args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, append([]string{"postmap"}, args...)...)
		cmd.Dir = top
		out, err := cmd.CombinedOutput()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != want {
			t.Fatalf("vdeliver postmap %q: exit %d, want %d; output:\n%s", args, code, want, out)
		}
		return string(out)
	}
	owner := func(path string) [2]uint32 {
		t.Helper()
		fi, err := os.Stat(filepath.Join(top, path))
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		return [2]uint32{st.Uid, st.Gid}
	}
	users, root := [2]uint32{uint32(uid), uint32(gid)}, [2]uint32{0, 0}

	// A directory the source's owner controls.
	ownDir := filepath.Join(top, "own")
	if err := os.Mkdir(ownDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(ownDir, uid, gid); err != nil {
		t.Fatal(err)
	}
	write(filepath.Join(ownDir, "src"), true)
	write(filepath.Join(top, "rootsrc"), false)

	postmap(0, "cdb:own/src")
	if got := owner("own/src.cdb"); got != users {
		t.Errorf("own/src.cdb: owner %v, want the source's %v", got, users)
	}
	postmap(0, "-o", "cdb:own/src")
	if got := owner("own/src.cdb"); got != root {
		t.Errorf("-o: own/src.cdb: owner %v, want root", got)
	}
	postmap(0, "cdb:own/src", "cdb:rootsrc")
	if got := owner("own/src.cdb"); got != users {
		t.Errorf("own/src.cdb: owner %v, want %v", got, users)
	}
	if got := owner("rootsrc.cdb"); got != root {
		t.Errorf("rootsrc.cdb after a foreign table: owner %v, want root (root not given back?)", got)
	}

	// A source the user owns in a directory only root may write: refused, as postmap
	// refuses it, and the table built before (as root, -o) stays.
	roDir := filepath.Join(top, "ro")
	if err := os.Mkdir(roDir, 0o755); err != nil {
		t.Fatal(err)
	}
	write(filepath.Join(roDir, "src"), true)
	postmap(0, "-o", "cdb:ro/src")
	before, err := os.ReadFile(filepath.Join(roDir, "src.cdb"))
	if err != nil {
		t.Fatal(err)
	}
	out := postmap(1, "cdb:ro/src")
	if !regexp.MustCompile(`^vdeliver postmap: cdb:ro/src: cdb: open ro/\.src\.cdb\.tmp[0-9]+: permission denied\n$`).MatchString(out) {
		t.Errorf("output %q, want a permission error naming the temporary file", out)
	}
	after, err := os.ReadFile(filepath.Join(roDir, "src.cdb"))
	if err != nil || string(after) != string(before) || owner("ro/src.cdb") != root {
		t.Errorf("the old table changed: %v", err)
	}
	if ents, _ := os.ReadDir(roDir); len(ents) != 2 {
		t.Errorf("ro holds %d entries, want src and src.cdb", len(ents))
	}
}
