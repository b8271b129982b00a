package mbox

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"vdeliver/internal/beneath"
)

// TestMain pins the local time zone, so From_ dates are exact bytes and
// prove that Deliver converts to local time. It is set before any test
// runs, so parallel tests read it without a race. In a helper process
// (MBOX_HELPER, see helper) it runs that job instead of the tests.
func TestMain(m *testing.M) {
	time.Local = time.FixedZone("EST", -5*3600)
	if job := os.Getenv("MBOX_HELPER"); job != "" {
		os.Exit(helperMain(job))
	}
	os.Exit(m.Run())
}

// epoch is Tue Mar  5 04:07:02 2024 in the pinned zone: a one-digit day,
// so the space padding of asctime shows.
var epoch = time.Date(2024, 3, 5, 9, 7, 2, 0, time.UTC)

const epochDate = "Tue Mar  5 04:07:02 2024"

const (
	testSender  = "sender@example.org"
	testHeaders = "Return-Path: <sender@example.org>\nX-Original-To: Alice@Example.org\nDelivered-To: Alice@Example.org\n"
)

func fixedNow() time.Time { return epoch }

// newRoot returns a fresh directory and an *beneath.Root on it.
func newRoot(t testing.TB) (*beneath.Root, string) {
	t.Helper()
	dir := t.TempDir()
	root, err := beneath.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	return root, dir
}

// opts returns the options most tests use: Debian's default locks, a tiny
// delay and a fixed clock.
func opts() Options {
	return Options{
		Locks:    []string{"fcntl", "dotlock"},
		Attempts: 3,
		Delay:    time.Millisecond,
		StaleAge: time.Hour,
		Now:      fixedNow,
	}
}

func deliver(t testing.TB, root *beneath.Root, path string, msg string, opt Options) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return Deliver(ctx, root, path, testSender, []byte(testHeaders), []byte(msg), opt)
}

// want is the exact record Deliver writes for the test sender, headers and
// an already quoted, newline-terminated message.
func want(quotedMsg string) string {
	return "From " + testSender + "  " + epochDate + "\n" + testHeaders + quotedMsg + "\n"
}

func putFile(t testing.TB, name, content string, perm os.FileMode) {
	t.Helper()
	if err := os.WriteFile(name, []byte(content), perm); err != nil {
		t.Fatal(err)
	}
}

func readFile(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func assertContent(t testing.TB, name, want string) {
	t.Helper()
	if got := readFile(t, name); got != want {
		t.Errorf("%s content:\n got %q\nwant %q", name, got, want)
	}
}

func assertMissing(t testing.TB, name string) {
	t.Helper()
	if _, err := os.Lstat(name); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s: want it absent, Lstat says %v", name, err)
	}
}

// checkErr asserts the exact reason text, Op and Path of a Deliver error
// and that errors.Is finds each of targets.
func checkErr(t testing.TB, err error, op, path, text string, targets ...error) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not an *Error", err, err)
	}
	if e.Op != op || e.Path != path || e.Error() != text {
		t.Errorf("error = {Op:%q Path:%q} %q\nwant   {Op:%q Path:%q} %q", e.Op, e.Path, e.Error(), op, path, text)
	}
	// The sender's text is the log's without the mailbox or lock file path and the
	// space before it, and names no path at all.
	bare := strings.ReplaceAll(strings.ReplaceAll(text, " "+path+".lock", ""), " "+path, "")
	if e.Reason() != bare || strings.Contains(e.Reason(), path) {
		t.Errorf("Reason() = %q, want %q", e.Reason(), bare)
	}
	for _, target := range targets {
		if !errors.Is(err, target) {
			t.Errorf("errors.Is(%v, %v) = false", err, target)
		}
	}
}

func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (chown, mknod, mount or root-owned symlinks)")
	}
}

// requireTool finds a real peer program. Missing is a skip on a developer
// machine but a failure in CI, where .ci/run installs it.
func requireTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s not installed, but CI=%s requires it", name, os.Getenv("CI"))
		}
		t.Skipf("%s not installed (set CI=true to make this a failure)", name)
	}
	return p
}

// splitRecords splits an mbox into records at lines starting with "From ",
// the only rule every mbox reader agrees on.
func splitRecords(b []byte) [][]byte {
	var recs [][]byte
	start := 0
	for i := 0; i < len(b); {
		if bytes.HasPrefix(b[i:], fromSpace) && i > start {
			recs = append(recs, b[start:i])
			start = i
		}
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			break
		}
		i += j + 1
	}
	if start < len(b) {
		recs = append(recs, b[start:])
	}
	return recs
}

func mkdirAll(t testing.TB, dir string, perm os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(dir, perm); err != nil {
		t.Fatal(err)
	}
}

func statT(t testing.TB, name string) *syscall.Stat_t {
	t.Helper()
	fi, err := os.Lstat(name)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t)
}

func join(elem ...string) string { return filepath.Join(elem...) }
