package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"vdeliver/internal/beneath"
)

// deliveryUID is the identity script deliveries run as: a real unprivileged uid when the
// tests run as root (CI), so every script also proves the privilege drop; ourselves
// otherwise.
func deliveryUID() (uid, gid int) {
	if os.Geteuid() == 0 {
		return 5000, 5000
	}
	return os.Getuid(), os.Getgid()
}

// repoRoot is the repository's top directory, which holds testdata/ and docs/: a test
// runs in its package's directory.
const repoRoot = "../.."

func TestMain(m *testing.M) {
	if a := os.Getenv("VDELIVER_NUL_CHILD"); a != "" {
		os.Exit(nulChild(a))
	}
	testscript.Main(m, map[string]func(){"vdeliver": func() { Main("") }})
}

// scriptCmds are the custom testscript commands; other _test.go files add theirs in init.
var scriptCmds = map[string]func(ts *testscript.TestScript, neg bool, args []string){
	"deliver": cmdDeliver,
	"owner":   cmdOwner,
	"chopnl":  cmdChopNL,
	"chownv":  cmdChownv,
	"cmpnew":  cmdCmpNew,
	"cmpmbox": cmdCmpMbox,
	"mode":    cmdMode,
	"nfiles":  cmdNFiles,
}

func TestScripts(t *testing.T) {
	t.Parallel()
	testscript.Run(t, testscript.Params{
		Dir:                 filepath.Join(repoRoot, "testdata", "script"),
		RequireExplicitExec: true,
		RequireUniqueNames:  true,
		UpdateScripts:       os.Getenv("VDELIVER_UPDATE_SCRIPTS") != "",
		Setup: func(env *testscript.Env) error {
			uid, gid := deliveryUID()
			env.Setenv("VUID", strconv.Itoa(uid))
			env.Setenv("VGID", strconv.Itoa(gid))
			env.Setenv("TZ", "UTC")
			// A syslog daemon of the script's own, which reads and drops: vdeliver check
			// finds a working log destination, as on a host with syslog. Scripts about
			// --log-file point VDELIVER_SYSLOG_SOCKET elsewhere.
			sock := filepath.Join(env.WorkDir, ".syslog")
			conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
			if err != nil {
				return err
			}
			go func() {
				buf := make([]byte, 65536)
				for {
					if _, err := conn.Read(buf); err != nil {
						return
					}
				}
			}()
			env.Defer(func() { conn.Close() })
			env.Setenv("VDELIVER_SYSLOG_SOCKET", sock)
			if os.Geteuid() == 0 {
				// The delivery runs as VUID: let it reach the work directory.
				for _, d := range []string{env.WorkDir, filepath.Dir(env.WorkDir)} {
					if err := os.Chmod(d, 0o755); err != nil {
						return err
					}
				}
			}
			return nil
		},
		Cmds:      scriptCmds,
		Condition: scriptCondition,
	})
}

// scriptCondition adds [root] (the script needs root: owners, device nodes, mounts),
// [openat2] (the kernel confines opens beneath the base, rather than os.Root) and
// [tool:prog] (a program the script drives is installed). Under CI=true a missing tool is
// a broken CI, so the condition fails the script instead of letting it skip.
func scriptCondition(cond string) (bool, error) {
	switch cond {
	case "root":
		return os.Geteuid() == 0, nil
	case "openat2":
		r, err := beneath.Open(os.TempDir())
		if err != nil {
			return false, err
		}
		defer r.Close()
		return r.Kernel(), nil
	}
	if prog, ok := strings.CutPrefix(cond, "tool:"); ok {
		if _, err := exec.LookPath(prog); err != nil {
			if os.Getenv("CI") == "true" {
				return false, fmt.Errorf("%s is missing (CI=true: make deps installs it)", prog)
			}
			return false, nil
		}
		return true, nil
	}
	return false, fmt.Errorf("unknown condition %q", cond)
}

// chownv path... gives the paths (recursively) to the delivery uid when running as root.
func cmdChownv(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) == 0 {
		ts.Fatalf("usage: chownv path...")
	}
	if os.Geteuid() != 0 {
		return
	}
	uid, gid := deliveryUID()
	for _, a := range args {
		err := filepath.WalkDir(ts.MkAbs(a), func(p string, _ fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			return os.Lchown(p, uid, gid)
		})
		ts.Check(err)
	}
}

// cmpnew maildir golden: the maildir holds exactly one message, in new/, named as
// virtual(8) names it, mode 0600, with exactly the golden bytes, and tmp/ is empty.
func cmdCmpNew(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 || len(args) > 3 {
		ts.Fatalf("usage: cmpnew maildir golden [name-suffix]")
	}
	// The suffix (",S=...,W=..." with vdeliver_maildir_size_in_names) ends the name
	// exactly; without it the name is virtual(8)'s and ends in the host.
	suffix := ""
	if len(args) == 3 {
		suffix = args[2]
	}
	dir := ts.MkAbs(args[0])
	news, err := os.ReadDir(filepath.Join(dir, "new"))
	ts.Check(err)
	if len(news) != 1 {
		ts.Fatalf("%s/new holds %d files, want 1", args[0], len(news))
	}
	tmps, err := os.ReadDir(filepath.Join(dir, "tmp"))
	ts.Check(err)
	if len(tmps) != 0 {
		ts.Fatalf("%s/tmp holds %d files, want 0", args[0], len(tmps))
	}
	name := news[0].Name()
	host, _ := os.Hostname()
	if suffix != "" {
		host = strings.ReplaceAll(host, ",", `\054`)
	}
	re := regexp.MustCompile(`^[0-9]+\.V[0-9a-f]+I[0-9a-f]+M[0-9]+\.` + regexp.QuoteMeta(host+suffix) + `$`)
	if !re.MatchString(name) {
		ts.Fatalf("maildir file name %q does not match %s", name, re)
	}
	p := filepath.Join(dir, "new", name)
	fi, err := os.Stat(p)
	ts.Check(err)
	if fi.Mode().Perm() != 0o600 {
		ts.Fatalf("%s: mode %v, want 0600", name, fi.Mode().Perm())
	}
	got, err := os.ReadFile(p)
	ts.Check(err)
	want := []byte(ts.ReadFile(args[1]))
	if !bytes.Equal(got, want) {
		ts.Fatalf("%s differs from %s:\n--- got\n%s--- want\n%s", name, args[1], got, want)
	}
}

var fromDate = regexp.MustCompile(`(?m)^(From [^\n]*  )[A-Z][a-z]{2} [A-Z][a-z]{2} [ 1-3][0-9] [0-9]{2}:[0-9]{2}:[0-9]{2} [0-9]{4}$`)

// cmpmbox file golden: exact bytes, except that every From_ line's asctime date is
// replaced by DATE before comparing (the layout itself is still checked by the pattern).
func cmdCmpMbox(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: cmpmbox file golden")
	}
	got, err := os.ReadFile(ts.MkAbs(args[0]))
	ts.Check(err)
	got = fromDate.ReplaceAll(got, []byte("${1}DATE"))
	want := []byte(ts.ReadFile(args[1]))
	if !bytes.Equal(got, want) {
		ts.Fatalf("%s differs from %s:\n--- got\n%s--- want\n%s", args[0], args[1], got, want)
	}
}

// mode path 0600: the permission bits (and, as root, owner = delivery uid).
func cmdMode(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: mode path perm")
	}
	want, err := strconv.ParseUint(args[1], 8, 32)
	ts.Check(err)
	fi, err := os.Lstat(ts.MkAbs(args[0]))
	ts.Check(err)
	if got := fi.Mode().Perm(); uint64(got) != want {
		ts.Fatalf("%s: mode %#o, want %#o", args[0], got, want)
	}
}

// nfiles dir n: dir holds exactly n entries (a missing dir holds 0).
func cmdNFiles(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: nfiles dir n")
	}
	ents, err := os.ReadDir(ts.MkAbs(args[0]))
	if err != nil && !os.IsNotExist(err) {
		ts.Fatalf("%v", err)
	}
	if fmt.Sprint(len(ents)) != args[1] {
		ts.Fatalf("%s holds %d entries, want %s", args[0], len(ents), args[1])
	}
}

// runVdeliver runs vdeliver with args[1:] and returns the exit code args[0] asks for and
// the one it gave.
func runVdeliver(ts *testscript.TestScript, args []string) (want, got int) {
	want, err := strconv.Atoi(args[0])
	ts.Check(err)
	err = ts.Exec("vdeliver", args[1:]...)
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		got = ee.ExitCode()
	} else if err != nil {
		ts.Fatalf("running vdeliver: %v", err)
	}
	return want, got
}

// deliver EXIT args...: runs the vdeliver binary (a real subprocess, so the privilege drop
// is real) with the script's stdin, and fails unless it exits with exactly EXIT. Its output
// is then checked with stdout/stderr as after exec.
func cmdDeliver(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 1 {
		ts.Fatalf("usage: deliver exit args...")
	}
	want, got := runVdeliver(ts, args)
	if got != want {
		ts.Fatalf("vdeliver exited %d, want %d", got, want)
	}
}

// owner path: as root, the file belongs to the delivery uid and gid (nothing written as
// root); as anyone else, to ourselves.
func cmdOwner(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: owner path")
	}
	fi, err := os.Lstat(ts.MkAbs(args[0]))
	ts.Check(err)
	st := fi.Sys().(*syscall.Stat_t)
	uid, gid := deliveryUID()
	if ok := int(st.Uid) == uid && int(st.Gid) == gid; ok == neg {
		ts.Fatalf("%s: owner %d:%d, delivery identity %d:%d (negated: %v)", args[0], st.Uid, st.Gid, uid, gid, neg)
	}
}

// chopnl file: removes the file's final newline (txtar cannot hold a file without one),
// to test messages whose last line is unterminated.
func cmdChopNL(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: chopnl file")
	}
	p := ts.MkAbs(args[0])
	b, err := os.ReadFile(p)
	ts.Check(err)
	ts.Check(os.WriteFile(p, bytes.TrimSuffix(b, []byte("\n")), 0o644))
}

type panicReader struct{}

func (panicReader) Read([]byte) (int, error) { panic("boom") }

// docs/behaviour.md §14.45: a panic defers (exit 75, 4.3.0), never Go's exit 2, which
// pipe(8) bounces; the status line is still the only output.
func TestPanicDefers(t *testing.T) {
	var out, errOut bytes.Buffer
	code := run(t.Context(), []string{"vdeliver", "-c", t.TempDir(), "--", "a@example.com"}, panicReader{}, &out, &errOut, func(string) string { return "" })
	if code != 75 || out.String() != "4.3.0 internal error\n" || errOut.Len() != 0 {
		t.Fatalf("run = %d, stdout %q, stderr %q; want 75, \"4.3.0 internal error\\n\", nothing", code, out.String(), errOut.String())
	}
}

// Control characters in an address would inject header lines (Delivered-To, X-Original-To,
// Return-Path): the run bounces before anything is opened, with one printable line. The
// refusal happens before the identity switch, so it is safe to run in-process.
func TestControlCharactersBounce(t *testing.T) {
	dir := t.TempDir()
	cf := "virtual_mailbox_domains = example.com\nvirtual_mailbox_base = " + dir + "/vmail\n" +
		"virtual_mailbox_maps = static:alice/\nvirtual_uid_maps = static:5000\nvirtual_gid_maps = static:5000\n"
	if err := os.WriteFile(filepath.Join(dir, "main.cf"), []byte(cf), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		out  string
		code int
	}{
		{[]string{"--", "alice@example.com\nX-Injected: yes"}, "5.1.3 bad recipient address syntax\n", 65},
		{[]string{"-a", "alice@example.com\r\nX-Injected: yes", "--", "alice@example.com"}, "5.1.3 bad original recipient address syntax\n", 65},
		{[]string{"-f", "a@x\nX-Injected: yes", "--", "alice@example.com"}, "5.1.7 bad sender address syntax\n", 65},
	} {
		var out, errOut bytes.Buffer
		args := append([]string{"vdeliver", "-c", dir}, tc.args...)
		code := run(t.Context(), args, strings.NewReader("Subject: x\n\ny\n"), &out, &errOut, func(string) string { return "" })
		if code != tc.code || out.String() != tc.out || errOut.Len() != 0 {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want %d, %q", tc.args, code, out.String(), errOut.String(), tc.code, tc.out)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "vmail")); !os.IsNotExist(err) {
		t.Fatalf("something was written: %v", err)
	}
}
