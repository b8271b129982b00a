package deliver

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"vdeliver/maincf"
)

// BenchmarkDeliverMaildir is one whole delivery of a 4 kB message into a Maildir: header
// building, resolution against the seed configuration's tables, the O_EXCL tmp file,
// fsync, link, fsync of new/. As root it runs itself again as uid 5000 (the identity switch
// cannot be undone, and vdeliver never writes as root) and relays the child's result.
func BenchmarkDeliverMaildir(b *testing.B) {
	if os.Geteuid() == 0 {
		relayAsUser(b, "BenchmarkDeliverMaildir")
		return
	}
	dir := b.TempDir()
	base := filepath.Join(dir, "vmail")
	if err := os.Mkdir(base, 0o700); err != nil {
		b.Fatal(err)
	}
	writeFile(b, filepath.Join(dir, "vmailbox"), "alice@example.com example.com/alice/\nbob@example.com example.com/bob\n")
	cf := fmt.Sprintf("virtual_mailbox_domains = example.com, example.net\nvirtual_mailbox_base = %s\n"+
		"virtual_mailbox_maps = texthash:%s/vmailbox\nvirtual_uid_maps = static:%d\nvirtual_gid_maps = static:%d\n",
		base, dir, os.Geteuid(), os.Getegid())
	c, err := maincf.Parse(strings.NewReader(cf), "main.cf")
	if err != nil {
		b.Fatal(err)
	}
	s, st := Load(c, nil)
	if st != nil {
		b.Fatal(st, st.Err)
	}
	defer s.Close()
	msg := []byte("From: a@example.org\nSubject: bench\n\n" + strings.Repeat("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\n", 64))
	env := Envelope{Sender: "a@example.org", OrigRcpt: "alice@example.com"}
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if st := s.Run(context.Background(), env, []string{"alice@example.com"}, msg, Options{})[0]; !st.OK() {
			b.Fatal(st, st.Err)
		}
	}
}

// BenchmarkResolve100k is the per-process cost of resolving one recipient against a
// 100,000-entry texthash: source: loading main.cf and the tables, then one resolution.
func BenchmarkResolve100k(b *testing.B) {
	dir := b.TempDir()
	f, err := os.Create(filepath.Join(dir, "vmailbox"))
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriter(f)
	for i := 0; i < 100000; i++ {
		fmt.Fprintf(w, "user%d@example.com example.com/user%d/\n", i, i)
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	f.Close()
	cf := "virtual_mailbox_domains = example.com\nvirtual_mailbox_base = /vmail\n" +
		"virtual_mailbox_maps = texthash:" + dir + "/vmailbox\nvirtual_uid_maps = static:5000\nvirtual_gid_maps = static:5000\n"
	b.ReportAllocs()
	for b.Loop() {
		c, err := maincf.Parse(strings.NewReader(cf), "main.cf")
		if err != nil {
			b.Fatal(err)
		}
		s, st := Load(c, nil)
		if st != nil {
			b.Fatal(st, st.Err)
		}
		t, st := s.Resolve(context.Background(), "User99999@Example.com")
		if st != nil || t.Mailbox != "example.com/user99999/" {
			b.Fatal(st, t.Mailbox)
		}
		s.Close()
	}
}

func writeFile(tb testing.TB, p, s string) {
	tb.Helper()
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		tb.Fatal(err)
	}
}

// relayAsUser runs one benchmark in a child test binary as uid/gid 5000 and prints its
// result lines, so `go test -bench` as root still measures a real, unprivileged delivery.
func relayAsUser(b *testing.B, name string) {
	tmp, err := os.MkdirTemp("", "vdeliver-bench")
	if err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	if err := os.Chmod(tmp, 0o755); err != nil {
		b.Fatal(err)
	}
	if err := os.Chown(tmp, 5000, 5000); err != nil {
		b.Fatal(err)
	}
	// The test binary lives in a root-only build directory: give the child its own copy.
	exe := filepath.Join(tmp, "deliver.test")
	bin, err := os.ReadFile(os.Args[0])
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(exe, bin, 0o755); err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$", "-test.bench=^"+name+"$", "-test.benchmem",
		"-test.benchtime="+benchtime())
	cmd.Dir = tmp
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 5000, Gid: 5000}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		b.Fatalf("child as uid 5000: %v\n%s", err, out)
	}
	// The child's result line is printed unchanged, so benchstat reads it.
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, name) {
			fmt.Println(l)
		}
	}
	b.Skip("measured in a child running as uid 5000 (its result line is printed above)")
}

func benchtime() string {
	for _, a := range os.Args {
		if v, ok := strings.CutPrefix(a, "-test.benchtime="); ok {
			return v
		}
	}
	return "1s"
}
