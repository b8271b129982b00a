package quota

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The test binary doubles as a delivering process: with QUOTA_HELPER set it runs one
// delivery (Reserve, write the message into new/, Done; or Reserve and Cancel) and
// prints its outcome on one line. Tests start several at once, as Postfix starts several
// vdelivers, and under another uid, as the delivering user.
func TestMain(m *testing.M) {
	if os.Getenv("QUOTA_HELPER") != "" {
		os.Exit(helper(os.Args[len(os.Args)-5:]))
	}
	os.Exit(m.Run())
}

// helper: base dir limit|- size deliver|cancel. It prints "ok <bytes> <count>" (the usage
// before), "over <bytes> <count>" or "error <text>".
func helper(args []string) int {
	base, dir, def, sizeArg, action := args[0], args[1], args[2], args[3], args[4]
	size, _ := strconv.ParseInt(sizeArg, 10, 64)
	var limit *Limit
	if def != "-" {
		l, err := Parse(def)
		if err != nil {
			fmt.Println("error", err)
			return 1
		}
		limit = &l
	}
	root, err := openRootErr(base)
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	r, err := Reserve(root, dir, limit, size, time.Now())
	var oq *OverQuotaError
	if errors.As(err, &oq) {
		fmt.Println("over", oq.Usage.Bytes, oq.Usage.Count)
		return 0
	}
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	// A delivery takes a while: let the others pile up behind the lock.
	if d, err := time.ParseDuration(os.Getenv("QUOTA_HELPER_HOLD")); err == nil {
		time.Sleep(d)
	}
	switch action {
	case "deliver":
		name := fmt.Sprintf("%d.P%dQ%d.test,S=%d", time.Now().Unix(), os.Getpid(), time.Now().UnixNano()%1000000, size)
		p := filepath.Join(base, dir, "new", name)
		// The first delivery makes the Maildir, as maildir.Deliver does.
		for _, sub := range []string{"tmp", "new", "cur"} {
			os.MkdirAll(filepath.Join(base, dir, sub), 0o700)
		}
		if err := os.WriteFile(p, message(size), 0o600); err != nil {
			r.Cancel()
			fmt.Println("error", err)
			return 1
		}
		err = r.Done()
	case "cancel":
		err = r.Cancel()
	}
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	fmt.Println("ok", r.Usage.Bytes, r.Usage.Count)
	return 0
}

// copyBinary copies the test binary into dir, mode 0755, for a helper of another uid:
// the build directory is not open to it.
func copyBinary(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "helper.test")
	if err := os.WriteFile(p, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// message is a parseable message of exactly size bytes (size >= 16).
func message(size int64) []byte {
	head := "Subject: q\n\n"
	body := strings.Repeat("x", int(size)-len(head)-1) + "\n"
	return []byte(head + body)
}

// startHelper starts one delivering process, the test binary bin ("" for os.Args[0]);
// cred nil runs it as the test's own user.
func startHelper(t *testing.T, bin string, cred *syscall.Credential, hold time.Duration, args ...string) (*exec.Cmd, *strings.Builder) {
	t.Helper()
	if bin == "" {
		bin = os.Args[0]
	}
	cmd := exec.Command(bin, append([]string{"-test.run=^$"}, args...)...)
	cmd.Env = append(os.Environ(), "QUOTA_HELPER=1", "QUOTA_HELPER_HOLD="+hold.String())
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, &out
}

// runHelper runs one delivery to its end and returns its line.
func runHelper(t *testing.T, bin string, cred *syscall.Credential, args ...string) string {
	t.Helper()
	cmd, out := startHelper(t, bin, cred, 0, args...)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("helper %q: %v: %s", args, err, out)
	}
	return strings.TrimSpace(out.String())
}
