package cli

// The attack suite: script commands for testdata/script/attack_*.txtar, the
// attacks that need a Go test (a NUL byte in argv, a real setuid-root binary), and the
// row table that `make attacks` prints (testdata/attacks.sh).
//
// Every attack ends with the status docs/behaviour.md §7 gives, and proves that nothing
// outside the intended mailbox changed (a snapshot of the whole work tree, base included,
// before and after) and that what changed inside it belongs to the delivery uid, never to root.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"vdeliver/internal/beneath"
	"vdeliver/internal/setuid"
)

func init() {
	scriptCmds["snapshot"] = cmdSnapshot
	scriptCmds["attack"] = cmdAttack
	scriptCmds["setenvx"] = cmdSetenvx
	scriptCmds["hardlink"] = cmdHardlink
	scriptCmds["waitopen"] = cmdWaitOpen
	scriptCmds["attempt"] = cmdAttempt

	// A copy of this test binary installed as <dir>/setuid-bin/vdeliver stands in for an
	// installed vdeliver; its compiled-in configuration directory is <dir>/etc (a real
	// build has /etc/postfix, changeable only with -ldflags -X).
	if exe, err := os.Executable(); err == nil && filepath.Base(filepath.Dir(exe)) == "setuid-bin" {
		setuid.ConfigDir = filepath.Join(filepath.Dir(filepath.Dir(exe)), "etc")
	}
}

// --- snapshots ---

// node is what the snapshot keeps of one file: enough to see any write, chmod, chown,
// replacement or new hard link. Directories are compared by their entries (each its own
// node) and attributes, not by mtime or size, which any entry below changes.
type node struct {
	mode     fs.FileMode
	uid, gid uint32
	ino      uint64
	nlink    uint64
	size     int64
	mtime    int64
	sum      [32]byte // regular files
	link     string   // symbolic links
}

// hugeFile is the size above which the snapshot takes a file's times instead of its bytes.
const hugeFile = 1 << 30

// snapshotTree records every entry under dir except the names skip accepts (relative,
// slash-separated).
func snapshotTree(dir string, skip func(rel string) bool) (map[string]node, error) {
	out := map[string]node{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		if rel != "." && skip != nil && skip(rel) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		n := node{mode: fi.Mode(), uid: st.Uid, gid: st.Gid, ino: st.Ino}
		switch {
		case fi.IsDir():
		case fi.Mode()&fs.ModeSymlink != 0:
			n.link, _ = os.Readlink(p)
		case fi.Mode().IsRegular() && st.Size > hugeFile:
			// A sparse file an attack made huge: reading it would take minutes, and any
			// write moves its mtime or ctime.
			n.nlink, n.size, n.mtime = uint64(st.Nlink), st.Size, st.Mtim.Nano()
			n.sum[0], n.sum[1] = byte(st.Ctim.Nano()), byte(st.Ctim.Nano()>>8)
		case fi.Mode().IsRegular():
			n.nlink, n.size, n.mtime = uint64(st.Nlink), st.Size, st.Mtim.Nano()
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			h := sha256.New()
			_, err = io.Copy(h, f)
			f.Close()
			if err != nil {
				return err
			}
			copy(n.sum[:], h.Sum(nil))
		default: // FIFO, device: never read
			n.nlink, n.mtime = uint64(st.Nlink), st.Mtim.Nano()
		}
		out[rel] = n
		return nil
	})
	return out, err
}

// under reports whether rel is one of the prefixes or below one.
func under(rel string, prefixes []string) bool {
	for _, p := range prefixes {
		p = strings.TrimSuffix(p, "/")
		if rel == p || strings.HasPrefix(rel, p+"/") {
			return true
		}
	}
	return false
}

// compareTrees returns the paths outside allowed that differ between before and after,
// and the new or changed paths inside allowed whose owner is not uid:gid.
func compareTrees(before, after map[string]node, allowed []string, uid, gid uint32) (outside, wrongOwner []string) {
	for rel, a := range after {
		b, ok := before[rel]
		if ok && b == a {
			continue
		}
		if !under(rel, allowed) {
			outside = append(outside, rel)
			continue
		}
		if a.uid != uid || a.gid != gid {
			wrongOwner = append(wrongOwner, fmt.Sprintf("%s (%d:%d)", rel, a.uid, a.gid))
		}
	}
	for rel := range before {
		if _, ok := after[rel]; !ok && !under(rel, allowed) {
			outside = append(outside, rel+" (removed)")
		}
	}
	sort.Strings(outside)
	sort.Strings(wrongOwner)
	return outside, wrongOwner
}

// scriptSkip leaves out what the script itself manages: ctl/ (lock holders, signals) and
// the log file a root caller may name.
func scriptSkip(rel string) bool {
	return rel == "ctl" || strings.HasPrefix(rel, "ctl/") || rel == "vdeliver.log"
}

var snapshots sync.Map // *testscript.TestScript -> map[string]node

// attemptExits holds, per script, the exit code the last attempt wanted and got, for the
// attack that follows it.
var attemptExits sync.Map // *testscript.TestScript -> [2]int

// attempt EXIT args...: runs vdeliver as deliver does, but leaves the verdict on the exit
// code to the next attack, so that an attack that fails still gets its row in the table.
func cmdAttempt(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 1 {
		ts.Fatalf("usage: attempt exit args...")
	}
	want, got := runVdeliver(ts, args)
	attemptExits.Store(ts, [2]int{want, got})
}

// snapshot: records the work directory tree, which the next attack compares against.
func cmdSnapshot(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 0 {
		ts.Fatalf("usage: snapshot")
	}
	snap, err := snapshotTree(ts.Getenv("WORK"), scriptSkip)
	ts.Check(err)
	snapshots.Store(ts, snap)
}

// attack NAME CODE [mailbox...]: the last command printed exactly one status line with
// CODE and nothing on stderr; since the snapshot nothing changed except under the
// mailbox paths, and what changed there belongs to the delivery uid. Records the row for
// `make attacks` and takes a new snapshot.
func cmdAttack(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: attack name code [mailbox...]")
	}
	name, want, allowed := args[0], args[1], args[2:]
	v, ok := snapshots.Load(ts)
	if !ok {
		ts.Fatalf("attack without snapshot")
	}
	work := ts.Getenv("WORK")
	after, err := snapshotTree(work, scriptSkip)
	ts.Check(err)
	uid, gid := deliveryUID()
	outside, wrongOwner := compareTrees(v.(map[string]node), after, allowed, uint32(uid), uint32(gid))
	snapshots.Store(ts, after)
	out := ts.ReadFile("stdout")
	got, _, _ := strings.Cut(out, " ")
	recordAttack(name, want, got, len(outside))
	if got != want {
		ts.Fatalf("%s: status %q, want %s (stdout %q)", name, got, want, out)
	}
	if e, ok := attemptExits.LoadAndDelete(ts); ok {
		if e := e.([2]int); e[0] != e[1] {
			ts.Fatalf("%s: vdeliver exited %d, want %d", name, e[1], e[0])
		}
	}
	if strings.Count(out, "\n") != 1 || !strings.HasSuffix(out, "\n") {
		ts.Fatalf("%s: stdout is not exactly one line: %q", name, out)
	}
	if e := ts.ReadFile("stderr"); e != "" {
		ts.Fatalf("%s: stderr %q", name, e)
	}
	if len(outside) > 0 {
		ts.Fatalf("%s: changed outside the mailbox: %s", name, strings.Join(outside, ", "))
	}
	if len(wrongOwner) > 0 {
		ts.Fatalf("%s: written with the wrong owner (want %d:%d): %s", name, uid, gid, strings.Join(wrongOwner, ", "))
	}
}

var attackTableMu sync.Mutex

// recordAttack appends one row (attack, expected, got, files touched outside) to the file
// named by VDELIVER_ATTACK_TABLE, for testdata/attacks.sh.
func recordAttack(name, want, got string, outside int) {
	file := os.Getenv("VDELIVER_ATTACK_TABLE")
	if file == "" {
		return
	}
	attackTableMu.Lock()
	defer attackTableMu.Unlock()
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	clean := strings.NewReplacer("\t", " ", "\n", " ").Replace
	fmt.Fprintf(f, "%s\t%s\t%s\t%d\n", clean(name), want, clean(got), outside)
}

// --- small script commands ---

// setenvx NAME VALUE: sets NAME to a value a script line cannot hold: nl, cr, tab, or
// a*N (N bytes "a").
func cmdSetenvx(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: setenvx name nl|cr|tab|a*N")
	}
	v := map[string]string{"nl": "\n", "cr": "\r", "tab": "\t"}[args[1]]
	if n, ok := strings.CutPrefix(args[1], "a*"); ok {
		k, err := strconv.Atoi(n)
		ts.Check(err)
		v = strings.Repeat("a", k)
	}
	if v == "" {
		ts.Fatalf("setenvx: unknown value %q", args[1])
	}
	ts.Setenv(args[0], v)
}

// hardlink old new
func cmdHardlink(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: hardlink old new")
	}
	ts.Check(os.Link(ts.MkAbs(args[0]), ts.MkAbs(args[1])))
}

// waitopen path: waits (up to 15 s) until the script's latest background process holds
// path open — for vdeliver, the sign that it is past safe_open and waiting for the lock.
func cmdWaitOpen(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: waitopen path")
	}
	bg := ts.BackgroundCmds()
	if len(bg) == 0 {
		ts.Fatalf("waitopen: no background command")
	}
	pid := bg[len(bg)-1].Process.Pid
	fi, err := os.Stat(ts.MkAbs(args[0]))
	ts.Check(err)
	st := fi.Sys().(*syscall.Stat_t)
	deadline := time.Now().Add(15 * time.Second)
	for !slices.Contains(openers(st.Dev, st.Ino), pid) {
		if time.Now().After(deadline) {
			ts.Fatalf("%s: not opened by pid %d within 15s", args[0], pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// openers returns the pids of the processes that hold the file dev/ino open.
func openers(dev, ino uint64) []int {
	var pids []int
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		fds, _ := os.ReadDir(filepath.Join("/proc", p.Name(), "fd"))
		for _, fd := range fds {
			fi, err := os.Stat(filepath.Join("/proc", p.Name(), "fd", fd.Name()))
			if err != nil {
				continue
			}
			if st := fi.Sys().(*syscall.Stat_t); st.Dev == dev && st.Ino == ino {
				pids = append(pids, pid)
				break
			}
		}
	}
	return pids
}

func mboxDevIno(t *testing.T, path string) (dev, ino uint64) {
	t.Helper()
	fi, err := os.Stat(path)
	must(t, err)
	st := fi.Sys().(*syscall.Stat_t)
	return st.Dev, st.Ino
}

// --- a NUL byte in the arguments ---

// No exec can carry a NUL byte in argv, so this attack runs run() itself, in a child copy
// of the test binary (an identity switch there could never reach this process).
func TestAttackNULArguments(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "main.cf"), "virtual_mailbox_domains = example.com\n"+
		"virtual_mailbox_base = "+dir+"/vmail\nvirtual_mailbox_maps = static:x/\n"+
		"virtual_uid_maps = static:5000\nvirtual_gid_maps = static:5000\n")
	for _, tc := range []struct {
		name, want string
		exit       int
		args       []string
	}{
		{"recipient with NUL", "5.1.3 bad recipient address syntax\n", 65, []string{"--", "a\x00b@example.com"}},
		{"sender with NUL", "5.1.7 bad sender address syntax\n", 65, []string{"-f", "a\x00b@example.org", "--", "a@example.com"}},
		{"original recipient with NUL", "5.1.3 bad original recipient address syntax\n", 65, []string{"-a", "a\x00b@example.com", "--", "a@example.com"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, err := snapshotTree(dir, nil)
			if err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(os.Args[0])
			args, err := json.Marshal(append([]string{"-c", dir}, tc.args...))
			if err != nil {
				t.Fatal(err)
			}
			cmd.Env = append(os.Environ(), "VDELIVER_NUL_CHILD="+string(args))
			cmd.Stdin = strings.NewReader("Subject: x\n\ny\n")
			var out, errOut bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &errOut
			err = cmd.Run()
			exit := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				exit = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			after, err := snapshotTree(dir, nil)
			if err != nil {
				t.Fatal(err)
			}
			outside, _ := compareTrees(before, after, nil, 0, 0)
			got, _, _ := strings.Cut(out.String(), " ")
			recordAttack(tc.name, tc.want[:5], got, len(outside))
			if exit != tc.exit || out.String() != tc.want || errOut.Len() != 0 {
				t.Fatalf("exit %d, stdout %q, stderr %q; want %d, %q, nothing", exit, out.String(), errOut.String(), tc.exit, tc.want)
			}
			if len(outside) != 0 {
				t.Fatalf("changed: %v", outside)
			}
		})
	}
}

// nulChild is the child of TestAttackNULArguments, started by TestMain when
// VDELIVER_NUL_CHILD is set: it runs run() with the arguments it is given (a JSON list: an
// environment variable cannot hold NUL either) and returns its status.
func nulChild(a string) int {
	var args []string
	if err := json.Unmarshal([]byte(a), &args); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	args = append([]string{"vdeliver"}, args...)
	return run(context.Background(), args, os.Stdin, os.Stdout, os.Stderr, func(string) string { return "" })
}

func writeFile(t testing.TB, path, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// --- a real setuid-root binary ---

// setuidInstall is a copy of this test binary installed as vdeliver would be with
// `make install-setuid` (owner root, group 5000 — the MTA's delivery user — mode 4750),
// with its own compiled-in configuration directory etc/ beside it.
type setuidInstall struct {
	dir, bin string
	cwd      string // the caller's working directory; "" is dir
}

const (
	mtaUID        = 5000 // pipe(8)'s user=vmail: the caller
	aliceUID      = 5001 // recipients with their own uids (virtual_uid_maps)
	bobUID        = 5002
	trustedCaller = 5003 // listed in vdeliver_trusted_uids
	strangerID    = 5004 // neither in the group nor trusted
	vmailGID      = 5000
)

var setuidMsg = "Subject: hi\n\nbody\n"

func newSetuidInstall(t *testing.T, extraCF string) *setuidInstall {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("not root: installing a setuid-root binary and running it as another uid needs root (CI runs as root)")
	}
	dir := t.TempDir()
	in := &setuidInstall{dir: dir, bin: filepath.Join(dir, "setuid-bin", "vdeliver")}
	for _, d := range []string{filepath.Dir(dir), dir} {
		must(t, os.Chmod(d, 0o755))
	}
	exe, err := os.Executable()
	must(t, err)
	b, err := os.ReadFile(exe)
	must(t, err)
	must(t, os.MkdirAll(filepath.Dir(in.bin), 0o755))
	must(t, os.WriteFile(in.bin, b, 0o755))
	// chown first: a chown clears the set-uid bit.
	must(t, os.Chown(in.bin, 0, vmailGID))
	must(t, os.Chmod(in.bin, os.ModeSetuid|0o750))
	cf := "virtual_mailbox_domains = example.com\n" +
		"virtual_mailbox_base = " + dir + "/vmail\n" +
		"virtual_mailbox_maps = texthash:" + dir + "/etc/vmailbox\n" +
		"virtual_uid_maps = texthash:" + dir + "/etc/uids\n" +
		"virtual_gid_maps = static:5000\n" +
		"virtual_mailbox_lock = flock\n" +
		"deliver_lock_delay = 1s\n" +
		"deliver_lock_attempts = 30\n" +
		"vdeliver_trusted_uids = 5003\n" + extraCF
	writeFile(t, filepath.Join(dir, "etc", "main.cf"), cf)
	writeFile(t, filepath.Join(dir, "etc", "vmailbox"), "alice@example.com  alice/\nbob@example.com  bob/mbox\n")
	writeFile(t, filepath.Join(dir, "etc", "uids"), "alice@example.com  5001\nbob@example.com  5002\n")
	// An alternate configuration directory owned by root, for the trusted caller.
	must(t, os.MkdirAll(filepath.Join(dir, "etc2"), 0o755))
	writeFile(t, filepath.Join(dir, "etc2", "main.cf"), cf)
	// Each recipient owns its directory under a root-owned base.
	must(t, os.Mkdir(filepath.Join(dir, "vmail"), 0o755))
	for _, u := range []struct {
		name string
		uid  int
	}{{"alice", aliceUID}, {"bob", bobUID}} {
		p := filepath.Join(dir, "vmail", u.name)
		must(t, os.MkdirAll(p, 0o700))
		must(t, os.Chown(p, u.uid, vmailGID))
	}
	// outside/ is writable by everyone: only vdeliver's own rules can keep mail out of it.
	must(t, os.MkdirAll(filepath.Join(dir, "outside"), 0o777))
	must(t, os.Chmod(filepath.Join(dir, "outside"), 0o777))
	writeFile(t, filepath.Join(dir, "outside", "target"), "outside\n")
	must(t, os.Chmod(filepath.Join(dir, "outside", "target"), 0o666))
	// evil/ is the caller's own configuration: everything under it is the caller's.
	writeFile(t, filepath.Join(dir, "evil", "main.cf"), "virtual_mailbox_domains = example.com\n"+
		"virtual_mailbox_base = "+dir+"/outside\nvirtual_mailbox_maps = static:target\n"+
		"virtual_uid_maps = static:5000\nvirtual_gid_maps = static:5000\n")
	must(t, filepath.WalkDir(filepath.Join(dir, "evil"), func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Chown(p, mtaUID, vmailGID)
	}))
	return in
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// start runs the installed binary as uid:gid with exactly env (nil: empty) and the test
// message on stdin, without waiting.
func (in *setuidInstall) command(uid, gid int, env []string, args ...string) (*exec.Cmd, *bytes.Buffer, *bytes.Buffer) {
	cmd := exec.Command(in.bin, args...)
	cmd.Dir = in.dir
	if in.cwd != "" {
		cmd.Dir = in.cwd
	}
	cmd.Env = append([]string{}, env...)
	cmd.Stdin = strings.NewReader(setuidMsg)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}}
	return cmd, &out, &errOut
}

func exitCode(t *testing.T, err error) int {
	t.Helper()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0
}

// attack runs one setuid attack and checks the exact status line, the exit code, an
// empty stderr, that nothing changed outside mailbox (relative to the install) and that
// whatever changed inside it belongs to owner (uid) and group 5000.
func (in *setuidInstall) attack(t *testing.T, name string, uid, gid int, env []string, wantExit int, wantOut string, mailbox string, owner int, args ...string) {
	t.Helper()
	skipBin := func(rel string) bool { return rel == "setuid-bin" || strings.HasPrefix(rel, "setuid-bin/") }
	before, err := snapshotTree(in.dir, skipBin)
	must(t, err)
	cmd, out, errOut := in.command(uid, gid, env, args...)
	exit := exitCode(t, cmd.Run())
	after, err := snapshotTree(in.dir, skipBin)
	must(t, err)
	var allowed []string
	if mailbox != "" {
		allowed = []string{mailbox}
	}
	outside, wrongOwner := compareTrees(before, after, allowed, uint32(owner), vmailGID)
	got, _, _ := strings.Cut(out.String(), " ")
	recordAttack("setuid: "+name, wantOut[:5], got, len(outside))
	if exit != wantExit || out.String() != wantOut || errOut.Len() != 0 {
		t.Errorf("%s: exit %d, stdout %q, stderr %q; want %d, %q, nothing", name, exit, out.String(), errOut.String(), wantExit, wantOut)
	}
	if len(outside) > 0 {
		t.Errorf("%s: changed outside %q: %v", name, mailbox, outside)
	}
	if len(wrongOwner) > 0 {
		t.Errorf("%s: written with an owner other than %d:%d: %v", name, owner, vmailGID, wrongOwner)
	}
}

const (
	okMaildir = "2.0.0 delivered to maildir\n"
	okMbox    = "2.0.0 delivered to mailbox\n"
	cfgError  = "4.3.5 mail system configuration error\n"
)

func TestSetuidAttacks(t *testing.T) {
	in := newSetuidInstall(t, "")
	pipeEnv := []string{"MAIL_CONFIG=" + filepath.Join(in.dir, "etc"), "TZ=UTC", "LANG=C", "PATH=/usr/bin:/bin"}

	// The point of setuid: the MTA's user delivers as each recipient's own uid.
	in.attack(t, "deliver as the mapped uid (maildir)", mtaUID, vmailGID, pipeEnv, 0, okMaildir, "vmail/alice", aliceUID, "-f", "a@example.org", "--", "alice@example.com")
	in.attack(t, "deliver as the mapped uid (mbox)", mtaUID, vmailGID, pipeEnv, 0, okMbox, "vmail/bob", bobUID, "-f", "a@example.org", "--", "bob@example.com")
	in.attack(t, "no MAIL_CONFIG at all", mtaUID, vmailGID, nil, 0, okMaildir, "vmail/alice", aliceUID, "--", "alice@example.com")

	// The caller may not choose the configuration.
	evil := filepath.Join(in.dir, "evil")
	in.attack(t, "-c the caller's own main.cf", mtaUID, vmailGID, pipeEnv, 75, cfgError, "", 0, "-c", evil, "--", "alice@example.com")
	in.attack(t, "MAIL_CONFIG the caller's own main.cf", mtaUID, vmailGID, []string{"MAIL_CONFIG=" + evil}, 75, cfgError, "", 0, "--", "alice@example.com")
	in.attack(t, "-o virtual_mailbox_base", mtaUID, vmailGID, pipeEnv, 75, cfgError, "", 0, "-o", "virtual_mailbox_base="+in.dir+"/outside", "--", "alice@example.com")
	in.attack(t, "-o virtual_uid_maps=static:0", mtaUID, vmailGID, pipeEnv, 75, cfgError, "", 0, "-o", "virtual_uid_maps=static:0", "--", "alice@example.com")
	in.attack(t, "-c the default directory itself", mtaUID, vmailGID, pipeEnv, 75, cfgError, "", 0, "-c", filepath.Join(in.dir, "etc"), "--", "alice@example.com")

	// A log file the caller names would be opened as root.
	in.attack(t, "--log-file outside the base", mtaUID, vmailGID, pipeEnv, 75, cfgError, "", 0, "--log-file", in.dir+"/outside/log", "--", "alice@example.com")
	in.attack(t, "--log-file with a usage error", mtaUID, vmailGID, pipeEnv, 75, "4.3.5 command line usage error: flag provided but not defined: -bogus\n", "", 0,
		"--log-file", in.dir+"/outside/log", "--bogus", "--", "alice@example.com")

	// A trusted uid may use another root-owned configuration, and only that.
	in.attack(t, "trusted uid, -c a root-owned directory", trustedCaller, vmailGID, pipeEnv, 0, okMaildir, "vmail/alice", aliceUID, "-c", filepath.Join(in.dir, "etc2"), "--", "alice@example.com")
	in.attack(t, "trusted uid, -o", trustedCaller, vmailGID, pipeEnv, 0, okMaildir, "vmail/alice", aliceUID, "-o", "virtual_mailbox_limit=0", "--", "alice@example.com")
	in.attack(t, "trusted uid, -c a directory it owns", trustedCaller, vmailGID, pipeEnv, 75, cfgError, "", 0, "-c", evil, "--", "alice@example.com")
	in.attack(t, "trusted uid, --log-file", trustedCaller, vmailGID, pipeEnv, 75, cfgError, "", 0, "--log-file", in.dir+"/outside/log", "--", "alice@example.com")

	// Refuse to run when anyone but root could change the binary or the configuration.
	for _, tc := range []struct {
		name string
		path string
		mode os.FileMode
		uid  int
	}{
		{"binary writable by others", in.bin, os.ModeSetuid | 0o757, 0},
		{"binary writable by its group", in.bin, os.ModeSetuid | 0o770, 0},
		{"main.cf writable by others", filepath.Join(in.dir, "etc", "main.cf"), 0o646, 0},
		{"main.cf owned by the caller", filepath.Join(in.dir, "etc", "main.cf"), 0o644, mtaUID},
		{"configuration directory group-writable", filepath.Join(in.dir, "etc"), fs.ModeDir | 0o775, 0},
		{"directory above the configuration owned by the caller", in.dir, fs.ModeDir | 0o755, mtaUID},
	} {
		withOwnerMode(t, tc.path, tc.uid, tc.mode, func() {
			in.attack(t, tc.name, mtaUID, vmailGID, pipeEnv, 75, cfgError, "", 0, "--", "alice@example.com")
		})
	}
	in.attack(t, "after the install is restored", mtaUID, vmailGID, pipeEnv, 0, okMaildir, "vmail/alice", aliceUID, "--", "alice@example.com")
}

// withOwnerMode runs f with path owned by uid (its group kept) and of mode, and puts
// owner and mode back after.
func withOwnerMode(t *testing.T, path string, uid int, mode os.FileMode, f func()) {
	t.Helper()
	fi, err := os.Stat(path)
	must(t, err)
	st := fi.Sys().(*syscall.Stat_t)
	defer func() {
		must(t, os.Chown(path, int(st.Uid), int(st.Gid)))
		must(t, os.Chmod(path, fi.Mode()))
	}()
	must(t, os.Chown(path, uid, int(st.Gid)))
	must(t, os.Chmod(path, mode))
	f()
}

// The base and the tables decide where mail lands and as whom: a caller that can change
// the base or a directory above it (rename it, put a symlink in its place) or a table
// file or a directory above one (choose uid and path) owns every mailbox. A setuid-root
// run refuses (4.3.5) as it does for main.cf.
func TestSetuidBaseAndTableOwners(t *testing.T) {
	in := newSetuidInstall(t, "virtual_gid_maps = texthash:$config_directory/../tables/gids\n"+
		"virtual_mailbox_base = $config_directory/../spool/vmail\n"+
		"virtual_mailbox_domains = $config_directory/../tables/domains\n"+
		"vdeliver_quota_maps = texthash:$config_directory/../tables/quota\n")
	tables, spool := filepath.Join(in.dir, "tables"), filepath.Join(in.dir, "spool")
	writeFile(t, filepath.Join(tables, "gids"), "alice@example.com  5000\nbob@example.com  5000\n")
	writeFile(t, filepath.Join(tables, "quota"), "alice@example.com  1000000S\n")
	writeFile(t, filepath.Join(tables, "domains"), "# the domains\nexample.com\n")
	must(t, os.Mkdir(spool, 0o755))
	must(t, os.Rename(filepath.Join(in.dir, "vmail"), filepath.Join(spool, "vmail")))
	pipeEnv := []string{"MAIL_CONFIG=" + filepath.Join(in.dir, "etc")}
	in.attack(t, "base and tables owned by root", mtaUID, vmailGID, pipeEnv, 0, okMaildir, "spool/vmail/alice", aliceUID, "--", "alice@example.com")
	for _, tc := range []struct {
		name string
		path string
		mode os.FileMode
		uid  int
	}{
		{"base owned by the caller", filepath.Join(spool, "vmail"), fs.ModeDir | 0o755, mtaUID},
		{"base group-writable", filepath.Join(spool, "vmail"), fs.ModeDir | 0o775, 0},
		{"base world-writable and sticky", filepath.Join(spool, "vmail"), fs.ModeDir | fs.ModeSticky | 0o777, 0},
		{"directory above the base owned by the caller", spool, fs.ModeDir | 0o755, mtaUID},
		{"table file owned by the caller", filepath.Join(tables, "gids"), 0o644, mtaUID},
		{"table file writable by others", filepath.Join(in.dir, "etc", "uids"), 0o646, 0},
		{"quota table owned by the caller", filepath.Join(tables, "quota"), 0o644, mtaUID},
		{"directory above a table group-writable", tables, fs.ModeDir | 0o775, 0},
	} {
		withOwnerMode(t, tc.path, tc.uid, tc.mode, func() {
			in.attack(t, tc.name, mtaUID, vmailGID, pipeEnv, 75, cfgError, "", 0, "--", "alice@example.com")
		})
	}
	// A domain list file names a table that the caller owns.
	writeFile(t, filepath.Join(tables, "callers"), "example.com  ok\n")
	must(t, os.Chown(filepath.Join(tables, "callers"), mtaUID, vmailGID))
	writeFile(t, filepath.Join(tables, "domains"), "texthash:"+filepath.Join(tables, "callers")+"\n")
	in.attack(t, "domain list file naming a table owned by the caller", mtaUID, vmailGID, pipeEnv, 75, cfgError, "", 0, "--", "alice@example.com")
	writeFile(t, filepath.Join(tables, "domains"), "example.com\n")
	// A world-writable sticky directory above the base is accepted, as /tmp above main.cf.
	must(t, os.Chmod(spool, fs.ModeSticky|0o777))
	in.attack(t, "world-writable sticky directory above the base", mtaUID, vmailGID, pipeEnv, 0, okMaildir, "spool/vmail/alice", aliceUID, "--", "alice@example.com")
	must(t, os.Chmod(spool, 0o755))
	// The attack itself: the caller renames the base it can write above and puts a
	// symlink to a directory of its choosing in its place.
	must(t, os.Chown(spool, mtaUID, 0))
	must(t, os.Rename(filepath.Join(spool, "vmail"), filepath.Join(spool, "vmail.real")))
	must(t, os.Symlink(filepath.Join(in.dir, "outside"), filepath.Join(spool, "vmail")))
	in.attack(t, "base replaced by a symlink", mtaUID, vmailGID, pipeEnv, 75, cfgError, "", 0, "--", "alice@example.com")
}

// Relative table names resolve in $queue_directory, as for Postfix's daemons, never in
// the caller's working directory, where the caller would choose uid and mailbox path.
func TestSetuidRelativeTables(t *testing.T) {
	in := newSetuidInstall(t, "queue_directory = $config_directory/../queue\n"+
		"virtual_mailbox_maps = texthash:vmailbox\nvirtual_uid_maps = texthash:uids\n")
	queue := filepath.Join(in.dir, "queue")
	writeFile(t, filepath.Join(queue, "vmailbox"), "alice@example.com  alice/\n")
	writeFile(t, filepath.Join(queue, "uids"), "alice@example.com  5001\n")
	// The caller's own directory, with tables of its choosing.
	in.cwd = filepath.Join(in.dir, "outside", "w")
	writeFile(t, filepath.Join(in.cwd, "vmailbox"), "alice@example.com  bob/injected/\n")
	writeFile(t, filepath.Join(in.cwd, "uids"), "alice@example.com  5002\n")
	must(t, filepath.WalkDir(in.cwd, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Chown(p, mtaUID, vmailGID)
	}))
	pipeEnv := []string{"MAIL_CONFIG=" + filepath.Join(in.dir, "etc")}
	in.attack(t, "relative table names, the caller's working directory", mtaUID, vmailGID, pipeEnv, 0, okMaildir, "vmail/alice", aliceUID, "--", "alice@example.com")
	// A queue_directory that cannot be entered defers: the tables are not where the
	// administrator put them.
	must(t, os.Rename(queue, queue+".gone"))
	in.attack(t, "relative table names, no queue_directory", mtaUID, vmailGID, pipeEnv, 75, cfgError, "", 0, "--", "alice@example.com")
}

// Mode 4750 with the MTA user's group: nobody else can even start it.
func TestSetuidStranger(t *testing.T) {
	in := newSetuidInstall(t, "")
	cmd, _, _ := in.command(strangerID, strangerID, nil, "--", "alice@example.com")
	err := cmd.Run()
	if !errors.Is(err, fs.ErrPermission) {
		t.Fatalf("uid %d outside group %d started the 4750 binary: %v", strangerID, vmailGID, err)
	}
}

// A subcommand never runs as root: explain with the caller's own main.cf naming a table
// only root can read shows nothing of it.
func TestSetuidSubcommandRunsAsCaller(t *testing.T) {
	in := newSetuidInstall(t, "")
	secret := filepath.Join(in.dir, "etc", "secret")
	writeFile(t, secret, "alice@example.com  SECRET-VALUE/\n")
	must(t, os.Chmod(secret, 0o600))
	writeFile(t, filepath.Join(in.dir, "evil", "main.cf"), "virtual_mailbox_domains = example.com\n"+
		"virtual_mailbox_base = "+in.dir+"/outside\nvirtual_mailbox_maps = texthash:"+secret+"\n"+
		"virtual_uid_maps = static:5000\nvirtual_gid_maps = static:5000\n")
	must(t, os.Chown(filepath.Join(in.dir, "evil", "main.cf"), mtaUID, vmailGID))
	before, err := snapshotTree(in.dir, nil)
	must(t, err)
	cmd, out, errOut := in.command(mtaUID, vmailGID, nil, "explain", "-c", filepath.Join(in.dir, "evil"), "alice@example.com")
	exit := exitCode(t, cmd.Run())
	after, err := snapshotTree(in.dir, nil)
	must(t, err)
	outside, _ := compareTrees(before, after, nil, 0, 0)
	all := out.String() + errOut.String()
	leaked := strings.Contains(all, "SECRET-VALUE")
	got := "exit " + strconv.Itoa(exit)
	if leaked {
		got = "leaked"
	}
	recordAttack("setuid: explain reading a root-only table", "exit 1", got, len(outside))
	if leaked || exit != 1 || !strings.Contains(errOut.String(), "permission denied") {
		t.Fatalf("exit %d, output:\n%s", exit, all)
	}
	if len(outside) > 0 {
		t.Fatalf("changed: %v", outside)
	}
}

// While a delivery waits for the mbox lock, every thread of the real setuid process has
// switched to the recipient: real, effective, saved and file-system uid and gid, and no
// supplementary groups.
func TestSetuidEveryThreadSwitched(t *testing.T) {
	in := newSetuidInstall(t, "")
	if _, err := exec.LookPath("flock"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("flock(1) not installed (CI=true: a missing tool fails)")
		}
		t.Skip("flock(1) not installed")
	}
	mbox := filepath.Join(in.dir, "vmail", "bob", "mbox")
	writeFile(t, mbox, "")
	must(t, os.Chown(mbox, bobUID, vmailGID))
	must(t, os.Chmod(mbox, 0o600))
	ctl := t.TempDir()
	held, release := filepath.Join(ctl, "held"), filepath.Join(ctl, "release")
	// The command runs only once flock(1) holds the lock.
	holder := exec.Command("flock", mbox, "sh", "-c", `: > "$0"; while [ ! -e "$1" ]; do sleep 0.05; done`, held, release)
	must(t, holder.Start())
	defer func() {
		os.WriteFile(release, nil, 0o644)
		holder.Wait()
	}()
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(held); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("flock(1) did not take the lock within 15s")
		}
	}
	cmd, out, errOut := in.command(mtaUID, vmailGID, nil, "--", "bob@example.com")
	// The caller has a supplementary group (pipe(8) gives its command the user's gid as
	// one, Postfix's set_ugid), which the identity switch must clear on every thread.
	cmd.SysProcAttr.Credential.Groups = []uint32{vmailGID + 7}
	must(t, cmd.Start())
	pid := cmd.Process.Pid
	// vdeliver has the mailbox open once it waits for the lock.
	deadline := time.Now().Add(15 * time.Second)
	for !slices.Contains(openers(mboxDevIno(t, mbox)), pid) {
		if time.Now().After(deadline) {
			t.Fatalf("vdeliver (pid %d) never opened %s", pid, mbox)
		}
		time.Sleep(20 * time.Millisecond)
	}
	var status []string
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", pid))
	must(t, err)
	for _, f := range tasks {
		b, err := os.ReadFile(f)
		must(t, err)
		var ids []string
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "Uid:") || strings.HasPrefix(l, "Gid:") || strings.HasPrefix(l, "Groups:") {
				ids = append(ids, strings.Join(strings.Fields(l), " "))
			}
		}
		status = append(status, strings.Join(ids, "; "))
	}
	must(t, os.WriteFile(release, nil, 0o644))
	exit := exitCode(t, cmd.Wait())
	if len(status) < 2 {
		t.Fatalf("read %d threads of vdeliver (pid %d), want several", len(status), pid)
	}
	want := "Uid: 5002 5002 5002 5002; Gid: 5000 5000 5000 5000; Groups:"
	for _, s := range status {
		if s != want {
			t.Errorf("thread: %q, want %q", s, want)
		}
	}
	if exit != 0 || out.String() != okMbox || errOut.Len() != 0 {
		t.Fatalf("exit %d, stdout %q, stderr %q", exit, out.String(), errOut.String())
	}
}

// The environment of a setuid run is the caller's: LD_PRELOAD, TMPDIR and a PATH with a
// fake postmap(1) must not run code or write files, as root or at all.
func TestSetuidHostileEnvironment(t *testing.T) {
	for _, tool := range []string{"cc", "postmap"} {
		if _, err := exec.LookPath(tool); err != nil {
			if _, err2 := os.Stat("/usr/sbin/" + tool); err2 == nil {
				continue
			}
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s not installed (CI=true: a missing tool fails)", tool)
			}
			t.Skipf("%s not installed", tool)
		}
	}
	in := newSetuidInstall(t, "")
	// A table type vdeliver reads through postmap(1): cidr, with nothing in it that
	// matches, first in virtual_mailbox_maps.
	writeFile(t, filepath.Join(in.dir, "etc", "none.cidr"), "192.0.2.0/24  nothing/\n")
	cf := filepath.Join(in.dir, "etc", "main.cf")
	b, err := os.ReadFile(cf)
	must(t, err)
	writeFile(t, cf, strings.Replace(string(b), "virtual_mailbox_maps = ", "virtual_mailbox_maps = cidr:"+in.dir+"/etc/none.cidr, ", 1))

	tools := t.TempDir()
	must(t, os.Chmod(tools, 0o755))
	pwned := filepath.Join(in.dir, "outside", "pwned")
	// LD_PRELOAD: a library whose constructor records who ran it.
	src := filepath.Join(tools, "evil.c")
	writeFile(t, src, `#include <stdio.h>
#include <unistd.h>
__attribute__((constructor)) static void evil(void) {
	FILE *f = fopen("`+pwned+`", "a");
	if (f) { fprintf(f, "preload uid %d euid %d\n", (int)getuid(), (int)geteuid()); fclose(f); }
}
`)
	so := filepath.Join(tools, "evil.so")
	if out, err := exec.Command("cc", "-shared", "-fPIC", "-o", so, src).CombinedOutput(); err != nil {
		t.Fatalf("cc: %v\n%s", err, out)
	}
	// PATH: a postmap that records who ran it and answers with a path outside the base.
	evilBin := filepath.Join(tools, "bin")
	writeFile(t, filepath.Join(evilBin, "postmap"), "#!/bin/sh\necho \"postmap uid $(id -u)\" >> "+pwned+"\necho ../outside/\nexit 0\n")
	must(t, os.Chmod(filepath.Join(evilBin, "postmap"), 0o755))

	// The library works: a plain run of a dynamically linked program loads it.
	if out, err := exec.Command("env", "LD_PRELOAD="+so, "true").CombinedOutput(); err != nil {
		t.Fatalf("control run: %v\n%s", err, out)
	}
	if b, err := os.ReadFile(pwned); err != nil || !strings.HasPrefix(string(b), "preload uid 0") {
		t.Fatalf("control run did not load the library: %q, %v", b, err)
	}
	must(t, os.Remove(pwned))

	env := []string{
		"MAIL_CONFIG=" + filepath.Join(in.dir, "etc"),
		"LD_PRELOAD=" + so,
		"LD_LIBRARY_PATH=" + tools,
		"TMPDIR=" + filepath.Join(in.dir, "outside"),
		"PATH=" + evilBin + ":/usr/bin:/bin",
		"GOTRACEBACK=all",
		"TZ=/dev/zero",
	}
	in.attack(t, "LD_PRELOAD, TMPDIR, hostile PATH and TZ", mtaUID, vmailGID, env, 0, okMaildir, "vmail/alice", aliceUID, "--", "alice@example.com")
	if b, err := os.ReadFile(pwned); err == nil {
		t.Fatalf("hostile environment ran code: %s", b)
	}
}

// Without the set-uid bit the same binary works as the single vmail user, with -c and
// --log-file allowed (they are the caller's own rights then).
func TestNotSetuidSingleUser(t *testing.T) {
	in := newSetuidInstall(t, "")
	must(t, os.Chmod(in.bin, 0o755))
	own := filepath.Join(in.dir, "own")
	writeFile(t, filepath.Join(own, "main.cf"), "virtual_mailbox_domains = example.com\n"+
		"virtual_mailbox_base = "+own+"/vmail\nvirtual_mailbox_maps = static:alice/\n"+
		"virtual_uid_maps = inline:{x@example.com=5000, y@example.com=5001}\nvirtual_gid_maps = static:5000\n")
	must(t, os.MkdirAll(filepath.Join(own, "vmail"), 0o755))
	must(t, filepath.WalkDir(own, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Chown(p, mtaUID, vmailGID)
	}))
	in.attack(t, "no set-uid bit: deliver as the vmail user", mtaUID, vmailGID, nil, 0, okMaildir, "own", mtaUID,
		"-c", own, "--log-file", filepath.Join(own, "log"), "--", "x@example.com")
	b, err := os.ReadFile(filepath.Join(own, "log"))
	if err != nil || !strings.Contains(string(b), "status=sent") {
		t.Fatalf("log: %q, %v", b, err)
	}
	// And as vmail it cannot deliver for another uid.
	in.attack(t, "no set-uid bit: another recipient's uid", mtaUID, vmailGID, nil, 75, cfgError, "", 0, "-c", own, "--", "y@example.com")
}

// The detector itself: every kind of change outside the allowed paths is seen, and a
// file of the wrong owner inside them too.
func TestCompareTrees(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "outside", "f"), "x\n")
	writeFile(t, filepath.Join(dir, "outside", "g"), "x\n")
	writeFile(t, filepath.Join(dir, "outside", "h"), "x\n")
	writeFile(t, filepath.Join(dir, "box", "old"), "x\n")
	before, err := snapshotTree(dir, nil)
	must(t, err)
	writeFile(t, filepath.Join(dir, "outside", "f"), "y\n")                              // same size, new bytes
	must(t, os.Chmod(filepath.Join(dir, "outside", "g"), 0o600))                         // chmod
	must(t, os.Link(filepath.Join(dir, "outside", "h"), filepath.Join(dir, "box", "h"))) // hard link from inside
	writeFile(t, filepath.Join(dir, "new"), "")                                          // a new file
	writeFile(t, filepath.Join(dir, "box", "mail"), "m\n")                               // allowed
	after, err := snapshotTree(dir, nil)
	must(t, err)
	uid := uint32(os.Getuid()) + 1 // nobody's files are "right"
	outside, wrong := compareTrees(before, after, []string{"box"}, uid, uid)
	if want := []string{"new", "outside/f", "outside/g", "outside/h"}; !slices.Equal(outside, want) {
		t.Errorf("outside = %q, want %q", outside, want)
	}
	if len(wrong) != 2 || !strings.HasPrefix(wrong[0], "box/h ") || !strings.HasPrefix(wrong[1], "box/mail ") {
		t.Errorf("wrong owner = %q, want box/h and box/mail", wrong)
	}
}

// --- the Go runtime's fatal errors ---

// buildVdeliver builds the command itself (not this test binary, which may carry the
// race detector and its address-space needs) into dir, with the confinement this test
// binary uses.
func buildVdeliver(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "vdeliver")
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("go is not in PATH: %v", err)
	}
	args := []string{"build", "-o", bin}
	if r, err := beneath.Open(os.TempDir()); err == nil {
		if !r.Kernel() {
			// This test binary confines with os.Root: so does the command it runs.
			args = append(args, "-tags", "beneath_osroot")
		}
		r.Close()
	}
	if out, err := exec.Command(goCmd, append(args, "vdeliver")...).CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	must(t, os.Chmod(dir, 0o755))
	return bin
}

// zeros is an endless message of NUL bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// A fatal error of the Go runtime exits 2, which pipe(8) bounces, with a trace on stderr
// that pipe(8) shows the sender. vdeliver never exits with a bouncing status unless it
// decided to bounce: too few file descriptors defers at start (4.3.0), and a fatal error
// that can still happen after start (here: memory, under an address-space limit) kills
// the process with SIGABRT, which pipe(8) defers ("Command died with signal 6"), with
// nothing on stderr.
func TestAttackRuntimeLimits(t *testing.T) {
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("sh not installed")
	}
	dir := t.TempDir()
	bin := buildVdeliver(t, filepath.Join(dir, "bin"))
	uid, gid := deliveryUID()
	writeFile(t, filepath.Join(dir, "main.cf"), "virtual_mailbox_domains = example.com\n"+
		"virtual_mailbox_base = "+dir+"/vmail\nvirtual_mailbox_maps = static:bob/\n"+
		fmt.Sprintf("virtual_uid_maps = static:%d\nvirtual_gid_maps = static:%d\nvirtual_mailbox_limit = 0\n", uid, gid))
	must(t, os.Mkdir(filepath.Join(dir, "vmail"), 0o755))
	must(t, os.Chown(filepath.Join(dir, "vmail"), uid, gid))
	for _, d := range []string{filepath.Dir(dir), dir} {
		must(t, os.Chmod(d, 0o755))
	}
	small := func() io.Reader { return strings.NewReader("Subject: x\n\ny\n") }
	for _, tc := range []struct {
		name, limit string
		msg         func() io.Reader
		want        string
	}{
		{"RLIMIT_NOFILE 5", "ulimit -n 5", small, "4.3.0"},
		{"RLIMIT_NOFILE 6", "ulimit -n 6", small, "4.3.0"},
		{"RLIMIT_NOFILE 7", "ulimit -n 7", small, "4.3.0"},
		{"RLIMIT_NOFILE 12", "ulimit -n 12", small, "4.3.0"},
		{"RLIMIT_NOFILE 63", "ulimit -n 63", small, "4.3.0"},
		{"RLIMIT_NOFILE 64", "ulimit -n 64", small, "2.0.0"},
		{"400 MB message in 2 GB of address space", "ulimit -v 2000000", func() io.Reader { return io.LimitReader(zeros{}, 400<<20) }, "SIGABRT"},
	} {
		before, err := snapshotTree(dir, nil)
		must(t, err)
		cmd := exec.Command("sh", "-c", tc.limit+` && exec "$0" "$@"`, bin, "-c", dir, "--", "bob@example.com")
		cmd.Stdin = tc.msg()
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		if os.Geteuid() == 0 {
			// Not root: root could raise the hard limit.
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}}
		}
		err = cmd.Run()
		var ee *exec.ExitError
		got := ""
		switch {
		case errors.As(err, &ee) && ee.Sys().(syscall.WaitStatus).Signaled():
			got = strings.ToUpper("SIG" + unixSignalName(ee.Sys().(syscall.WaitStatus).Signal()))
		case errors.As(err, &ee) && ee.ExitCode() != 75:
			got = fmt.Sprintf("exit %d", ee.ExitCode())
		case err != nil && ee == nil:
			t.Fatal(err)
		default:
			got, _, _ = strings.Cut(out.String(), " ")
		}
		after, err := snapshotTree(dir, func(rel string) bool { return rel == "bin" || strings.HasPrefix(rel, "bin/") })
		must(t, err)
		delete(before, "bin")
		for rel := range before {
			if rel == "bin" || strings.HasPrefix(rel, "bin/") {
				delete(before, rel)
			}
		}
		outside, _ := compareTrees(before, after, []string{"vmail/bob"}, uint32(uid), uint32(gid))
		recordAttack(tc.name, tc.want, got, len(outside))
		if got != tc.want || errOut.Len() != 0 || len(outside) != 0 {
			t.Errorf("%s: got %s (stdout %q, stderr %d bytes: %.200q), want %s; changed outside: %v", tc.name, got, out.String(), errOut.Len(), errOut.String(), tc.want, outside)
		}
		if got != "SIGABRT" && strings.Count(out.String(), "\n") != 1 {
			t.Errorf("%s: stdout is not one line: %q", tc.name, out.String())
		}
	}
}

// unixSignalName is "abrt" for SIGABRT, as the row shows it.
func unixSignalName(s syscall.Signal) string {
	if s == syscall.SIGABRT {
		return "abrt"
	}
	return fmt.Sprint(int(s))
}

// --- the mailbox owner racing its own maildir ---

// While deliveries run, the mailbox owner swaps its own tmp/ and new/ for symlinks out of
// the base and back. Nothing may escape, and the promise holds for every delivery: a
// success means its message is in the maildir exactly once, a deferral that it is
// nowhere (a retry must not deliver it twice), and nothing is left in tmp/.
func TestAttackMaildirOwnerRace(t *testing.T) {
	dir := t.TempDir()
	bin := buildVdeliver(t, filepath.Join(dir, "bin"))
	uid, gid := deliveryUID()
	writeFile(t, filepath.Join(dir, "main.cf"), "virtual_mailbox_domains = example.com\n"+
		"virtual_mailbox_base = "+dir+"/vmail\nvirtual_mailbox_maps = static:bob/\n"+
		fmt.Sprintf("virtual_uid_maps = static:%d\nvirtual_gid_maps = static:%d\n", uid, gid))
	for _, d := range []string{filepath.Dir(dir), dir} {
		must(t, os.Chmod(d, 0o755))
	}
	box := filepath.Join(dir, "vmail", "bob")
	for _, d := range []string{"tmp", "new", "cur"} {
		must(t, os.MkdirAll(filepath.Join(box, d), 0o700))
	}
	must(t, filepath.WalkDir(filepath.Join(dir, "vmail"), func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Chown(p, uid, gid)
	}))
	outside := filepath.Join(dir, "outside")
	must(t, os.Mkdir(outside, 0o777))
	must(t, os.Chmod(outside, 0o777))

	done := make(chan struct{})
	var swapper sync.WaitGroup
	swapper.Add(1)
	go func() {
		defer swapper.Done()
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			default:
			}
			d := filepath.Join(box, []string{"tmp", "new"}[i%2])
			if os.Rename(d, d+".moved") != nil {
				continue
			}
			os.Symlink(outside, d)
			time.Sleep(time.Duration(i%7) * 100 * time.Microsecond)
			os.Remove(d)
			os.Rename(d+".moved", d)
			time.Sleep(time.Duration(1+i%5) * 200 * time.Microsecond)
		}
	}()
	const n = 100
	delivered := make([]bool, n)
	for i := range n {
		cmd := exec.Command(bin, "-c", dir, "--", "bob@example.com")
		cmd.Stdin = strings.NewReader(fmt.Sprintf("Subject: race %d\n\nmessage %d\n", i, i))
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		if os.Geteuid() == 0 {
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}}
		}
		exit := exitCode(t, cmd.Run())
		switch {
		case exit == 0 && strings.HasPrefix(out.String(), "2.0.0 "):
			delivered[i] = true
		case exit == 75 && strings.HasPrefix(out.String(), "4."):
		default:
			t.Errorf("delivery %d: exit %d, stdout %q, stderr %q", i, exit, out.String(), errOut.String())
		}
	}
	close(done)
	swapper.Wait()

	copies := make([]int, n)
	left := 0
	must(t, filepath.WalkDir(box, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		if rel, _ := filepath.Rel(box, p); strings.HasPrefix(rel, "tmp") {
			left++ // not a delivery: readers do not look in tmp/
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		var i int
		if _, err := fmt.Sscanf(string(b[bytes.Index(b, []byte("\nmessage "))+1:]), "message %d", &i); err == nil && i >= 0 && i < n {
			copies[i]++
		}
		return nil
	}))
	lost, dup, deferred := 0, 0, 0
	for i := range n {
		switch {
		case delivered[i] && copies[i] == 0:
			lost++
		case delivered[i] && copies[i] > 1, !delivered[i] && copies[i] > 0:
			dup++
		}
		if !delivered[i] {
			deferred++
		}
	}
	escaped, _ := os.ReadDir(outside)
	got := fmt.Sprintf("%d lost, %d duplicated, %d left in tmp", lost, dup, left)
	recordAttack(fmt.Sprintf("maildir owner swapping tmp/ and new/ (%d deliveries)", n), "0 lost, 0 duplicated, 0 left in tmp", got, len(escaped))
	t.Logf("%d of %d deferred; %s; %d files outside", deferred, n, got, len(escaped))
	if lost+dup+left+len(escaped) != 0 {
		t.Errorf("%s, %d outside the base", got, len(escaped))
	}
}
