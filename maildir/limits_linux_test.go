package maildir

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"vdeliver/internal/beneath"
)

// TestENOSPC fills a real 64 KiB tmpfs: the failure is reported as a write
// error with ENOSPC (deliver/ defers it), the partial file is gone, and the
// space it held is free again for the next message.
func TestENOSPC(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	mnt := t.TempDir()
	if err := syscall.Mount("tmpfs", mnt, "tmpfs", 0, "size=64k,mode=0755"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("cannot mount a tmpfs as root under CI: %v", err)
		}
		t.Skipf("cannot mount a tmpfs here: %v", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(mnt, 0); err != nil {
			t.Errorf("unmount %s: %v", mnt, err)
		}
	})
	root, err := beneath.Open(mnt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })

	big := bytes.Repeat([]byte("0123456789abcde\n"), 16*1024) // 256 KiB
	_, err = Deliver(root, "d/u/", [][]byte{[]byte("Return-Path: <>\n"), big}, opts())
	var e *Error
	if !errors.As(err, &e) || e.Op != "write" || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("err = %v, want *Error{Op: write} wrapping ENOSPC", err)
	}
	if want := "error writing message: no space left on device"; err.Error() != want {
		t.Errorf("Error() = %q, want %q", err.Error(), want)
	}
	assertNothingLeft(t, filepath.Join(mnt, "d/u"))

	small := bytes.Repeat([]byte("x"), 48*1024)
	got, err := Deliver(root, "d/u/", [][]byte{small}, opts())
	if err != nil {
		t.Fatalf("after the failure the space should be free again: %v", err)
	}
	checkDelivered(t, mnt, "d/u/", got, small)
}

const fsizeChildEnv = "VDELIVER_MAILDIR_FSIZE_CHILD"

// TestFsizeLimit: under RLIMIT_FSIZE (what a pipe(8) command would inherit
// if master(8) set one) the write fails with EFBIG rather than the process
// dying of SIGXFSZ, and nothing is left. The limit is per process, so the
// delivery runs in a child copy of the test binary.
func TestFsizeLimit(t *testing.T) {
	if dir := os.Getenv(fsizeChildEnv); dir != "" {
		fsizeChild(t, dir)
		return
	}
	t.Parallel()
	base := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestFsizeLimit$", "-test.count=1")
	cmd.Env = append(os.Environ(), fsizeChildEnv+"="+base)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	if !bytes.Contains(out, []byte("PASS")) {
		t.Fatalf("child did not run the delivery:\n%s", out)
	}
	assertNothingLeft(t, filepath.Join(base, "d/u"))
	if got := entries(t, filepath.Join(base, "d/u/cur")); len(got) != 0 {
		t.Errorf("cur/ = %q", got)
	}
}

func fsizeChild(t *testing.T, base string) {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_FSIZE, &lim); err != nil {
		t.Fatal(err)
	}
	lim.Cur = 4096
	if err := unix.Setrlimit(unix.RLIMIT_FSIZE, &lim); err != nil {
		t.Fatal(err)
	}
	root, err := beneath.Open(base)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	_, err = Deliver(root, "d/u/", [][]byte{bytes.Repeat([]byte("y"), 3000), bytes.Repeat([]byte("z"), 3000)}, opts())
	var e *Error
	if !errors.As(err, &e) || e.Op != "write" || !errors.Is(err, syscall.EFBIG) {
		t.Fatalf("err = %v, want *Error{Op: write} wrapping EFBIG", err)
	}
	if want := "error writing message: file too large"; err.Error() != want {
		t.Errorf("Error() = %q, want %q", err.Error(), want)
	}
}
