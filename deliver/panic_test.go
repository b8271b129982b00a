package deliver

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"vdeliver/maincf"
	"vdeliver/quota"
)

// A panic in the middle of a Maildir write is recovered into 4.3.0; the quota's lock must
// go with it, or the next delivery into that Maildir by the same process (an LMTP server
// lives for many) would wait for it and defer. As root the test runs itself again as uid
// 5000, since a delivery started as root switches identity for good.
func TestPanicReleasesQuotaLock(t *testing.T) {
	if os.Geteuid() == 0 {
		runAsVmail(t, "TestPanicReleasesQuotaLock")
		return
	}
	old := quota.LockWait
	quota.LockWait = 2 * time.Second
	t.Cleanup(func() { quota.LockWait = old })
	dir := t.TempDir()
	base := filepath.Join(dir, "vmail")
	for _, s := range []string{"cur", "new", "tmp"} {
		if err := os.MkdirAll(filepath.Join(base, "alice", s), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(filepath.Join(base, "alice"), 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "quota"), "alice@example.com 1000000S\n")
	cf := fmt.Sprintf("virtual_mailbox_domains = example.com\nvirtual_mailbox_base = %s\nvirtual_mailbox_maps = static:alice/\n"+
		"virtual_uid_maps = static:%d\nvirtual_gid_maps = static:%d\nvdeliver_quota_maps = texthash:%s/quota\n",
		base, os.Geteuid(), os.Getegid(), dir)
	c, err := maincf.Parse(strings.NewReader(cf), "main.cf")
	if err != nil {
		t.Fatal(err)
	}
	s, st := Load(c, nil)
	if st != nil {
		t.Fatal(st.Line(), st.Err)
	}
	defer s.Close()
	env := Envelope{Sender: "a@example.org"}
	msg := []byte("Subject: x\n\nbody\n")
	// The clock panics when maildir.Deliver reads it: after the reservation.
	panicky := func() time.Time {
		pc := make([]uintptr, 16)
		frames := runtime.CallersFrames(pc[:runtime.Callers(2, pc)])
		for {
			f, more := frames.Next()
			if strings.HasPrefix(f.Function, "vdeliver/maildir.Deliver") {
				panic("a panic inside the Maildir write")
			}
			if !more {
				return time.Now()
			}
		}
	}
	if st := s.Run(context.Background(), env, []string{"alice@example.com"}, msg, Options{Now: panicky})[0]; st.Line() != "4.3.0 internal error" {
		t.Fatalf("the panicking delivery: %s", st.Line())
	}
	start := time.Now()
	if st := s.Run(context.Background(), env, []string{"alice@example.com"}, msg, Options{})[0]; !st.OK() {
		t.Errorf("the next delivery: %s (%v) after %v", st.Line(), st.Err, time.Since(start))
	}
}

// runAsVmail runs the test name in a copy of this test binary as uid and gid 5000 and
// fails when it fails. The copy is needed because the build directory is root's.
func runAsVmail(t *testing.T, name string) {
	t.Helper()
	// Not t.TempDir: its parent is root's, mode 0700.
	tmp, err := os.MkdirTemp("", "deliver-vmail-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(tmp) })
	if err := os.Chown(tmp, 5000, 5000); err != nil {
		t.Fatal(err)
	}
	bin, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(tmp, "deliver.test")
	if err := os.WriteFile(exe, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^"+name+"$", "-test.count=1", "-test.v")
	cmd.Dir = tmp
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 5000, Gid: 5000, Groups: []uint32{}}}
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: "+name) {
		t.Fatalf("as uid 5000: %v\n%s", err, out)
	}
}
