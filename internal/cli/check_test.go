package cli

import (
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
)

// Script commands for the check_*.txtar and explain_*.txtar scripts.
func init() {
	scriptCmds["seedcopy"] = cmdSeedCopy
	scriptCmds["age"] = cmdAge
	scriptCmds["pipeuser"] = cmdPipeUser
	scriptCmds["subst"] = cmdSubst
	scriptCmds["cmpwork"] = cmdCmpWork
	scriptCmds["chownid"] = cmdChownID
}

// pipeuser: sets PIPEUSER, PIPEUID and PIPEGID to the account a master.cf user= can name
// in a script: nobody as root (a real other user, so permissions are really checked),
// ourselves otherwise (nobody could not reach the work directory).
func cmdPipeUser(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 0 {
		ts.Fatalf("usage: pipeuser")
	}
	name := "nobody"
	if os.Geteuid() != 0 {
		u, err := user.Current()
		ts.Check(err)
		name = u.Username
	}
	u, err := user.Lookup(name)
	ts.Check(err)
	ts.Setenv("PIPEUSER", name)
	ts.Setenv("PIPEUID", u.Uid)
	ts.Setenv("PIPEGID", u.Gid)
}

// chownid uid gid path: gives path (recursively) to uid:gid when running as root (the mailbox owner
// of a check script, which must be able to write the base); nothing otherwise.
func cmdChownID(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: chownid uid gid path")
	}
	if os.Geteuid() != 0 {
		return
	}
	uid, err := strconv.Atoi(args[0])
	ts.Check(err)
	gid, err := strconv.Atoi(args[1])
	ts.Check(err)
	ts.Check(filepath.WalkDir(ts.MkAbs(args[2]), func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	}))
}

// subst file...: replaces @NAME@ with the value of the environment variable NAME, for
// files such as master.cf whose own ${name} must stay as written.
func cmdSubst(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) == 0 {
		ts.Fatalf("usage: subst file...")
	}
	re := regexp.MustCompile(`@([A-Z_]+)@`)
	for _, a := range args {
		p := ts.MkAbs(a)
		b, err := os.ReadFile(p)
		ts.Check(err)
		b = re.ReplaceAllFunc(b, func(m []byte) []byte { return []byte(ts.Getenv(string(m[1 : len(m)-1]))) })
		ts.Check(os.WriteFile(p, b, 0o644))
	}
}

// cmpwork file want: file (or stdout) equals want byte for byte once "$WORK" in want is
// replaced by the work directory; nothing else is expanded, so ${recipient} in an
// expected message stays as written.
func cmdCmpWork(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: cmpwork file want")
	}
	got := ts.ReadFile(args[0])
	want := strings.ReplaceAll(ts.ReadFile(args[1]), "$WORK", ts.Getenv("WORK"))
	if got != want {
		ts.Fatalf("%s differs from %s:\n--- got\n%s--- want\n%s", args[0], args[1], got, want)
	}
}

// seedcopy dir: copies the seed configuration testdata/example (main.cf and its tables)
// into dir, so a script checks the very files `make demo` and the README use.
func cmdSeedCopy(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: seedcopy dir")
	}
	dst := ts.MkAbs(args[0])
	ts.Check(os.MkdirAll(dst, 0o755))
	for _, name := range []string{"main.cf", "vmailbox", "virtual"} {
		b, err := os.ReadFile(filepath.Join(repoRoot, "testdata", "example", name))
		ts.Check(err)
		ts.Check(os.WriteFile(filepath.Join(dst, name), b, 0o644))
	}
}

// age path seconds: sets path's modification time that many seconds into the past, to
// make a compiled table older than its source without sleeping.
func cmdAge(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: age path seconds")
	}
	n, err := strconv.Atoi(args[1])
	ts.Check(err)
	t := time.Now().Add(-time.Duration(n) * time.Second)
	ts.Check(os.Chtimes(ts.MkAbs(args[0]), t, t))
}
