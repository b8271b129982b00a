package setuid

// The rules as functions. The attacks on a real setuid-root binary are in
// internal/cli/attack_test.go, whose test binary stands in for vdeliver.

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"vdeliver/maincf"
)

func writeFile(t testing.TB, path, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestSafeTZ(t *testing.T) {
	for tz, want := range map[string]bool{
		"": true, "UTC": true, "Europe/Paris": true, ":Europe/Paris": true, "CET-1CEST": true,
		"/usr/share/zoneinfo/Europe/Paris": true, "/etc/localtime": true, ":/etc/localtime": true,
		"/etc/shadow": false, ":/dev/tty": false, "../../../../etc/shadow": false,
		"/usr/share/zoneinfo/../../../etc/shadow": false, "Europe/Paris\n": false,
		strings.Repeat("A", 300): false,
	} {
		if got := safeTZ(tz); got != want {
			t.Errorf("safeTZ(%q) = %v, want %v", tz, got, want)
		}
	}
}

func TestSetuidPolicyInactive(t *testing.T) {
	r := Request{ConfigDir: "/x", LogFile: "/y"}
	if st := (State{}).Policy([]string{"vdeliver", "--log-file", "/y"}, &r, nil); st != nil || r.ConfigDir != "/x" || r.LogFile != "/y" || r.Config != nil {
		t.Fatalf("not setuid: policy changed the delivery: %v %+v", st, r)
	}
}

func TestRootOnlyFile(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("not root: the files must be owned by root to pass (CI runs as root)")
	}
	dir := t.TempDir()
	for _, d := range []string{dir, filepath.Dir(dir)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cf := filepath.Join(dir, "etc", "main.cf")
	writeFile(t, cf, "x = y\n")
	if err := rootOnlyConfig(filepath.Dir(cf)); err != nil {
		t.Fatalf("root-owned 0644 under root-owned 0755 and sticky /tmp: %v", err)
	}
	step := func(name string, change func() error, undo func() error, want string) {
		t.Helper()
		if err := change(); err != nil {
			t.Fatal(err)
		}
		err := rootOnlyConfig(filepath.Dir(cf))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want one containing %q", name, err, want)
		}
		if err := undo(); err != nil {
			t.Fatal(err)
		}
	}
	step("main.cf group-writable", func() error { return os.Chmod(cf, 0o664) }, func() error { return os.Chmod(cf, 0o644) }, "main.cf: "+cf+" is writable by group or others (mode 0664)")
	step("main.cf owned by 5000", func() error { return os.Chown(cf, 5000, 0) }, func() error { return os.Chown(cf, 0, 0) }, cf+" is owned by uid 5000, not root")
	step("config dir world-writable and sticky", func() error { return os.Chmod(filepath.Dir(cf), 0o1777) }, func() error { return os.Chmod(filepath.Dir(cf), 0o755) }, "configuration directory: "+filepath.Dir(cf)+" is writable")
	step("a directory above owned by 5000", func() error { return os.Chown(dir, 5000, 5000) }, func() error { return os.Chown(dir, 0, 0) }, dir+" is owned by uid 5000")
	step("a directory above world-writable", func() error { return os.Chmod(dir, 0o777) }, func() error { return os.Chmod(dir, 0o755) }, dir+" is writable by group or others (mode 0777)")
	// A root-owned symlink whose target lies in a directory the attacker owns.
	evil := filepath.Join(dir, "evil")
	writeFile(t, filepath.Join(evil, "main.cf"), "x = y\n")
	if err := os.Chown(evil, 5000, 5000); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "linked")
	if err := os.Symlink(evil, link); err != nil {
		t.Fatal(err)
	}
	if err := rootOnlyConfig(link); err == nil || !strings.Contains(err.Error(), "is owned by uid 5000") {
		t.Errorf("config dir symlinked to a user's directory: %v", err)
	}
	// main.cf a root-owned symlink to a root-owned file in a directory the attacker owns
	// (who can replace that file): the directories above the configuration directory are
	// not the ones above main.cf.
	cfLink := filepath.Join(dir, "cflink")
	if err := os.Mkdir(cfLink, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(evil, "main.cf"), filepath.Join(cfLink, "main.cf")); err != nil {
		t.Fatal(err)
	}
	if err := rootOnlyConfig(cfLink); err == nil || !strings.Contains(err.Error(), "main.cf: "+evil+" is owned by uid 5000") {
		t.Errorf("main.cf symlinked into a user's directory: %v", err)
	}
}

func TestTrustedUID(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		value   string
		uid     int
		want    bool
		wantErr bool
	}{
		{"", 5000, false, false},
		{"5000", 5000, true, false},
		{"100, 5000 7", 7, true, false},
		{"100, 5000 7", 70, false, false},
		{"vmail", 5000, false, true},
		{"-1", 5000, false, true},
	} {
		writeFile(t, filepath.Join(dir, "main.cf"), trustedUIDsParam+" = "+tc.value+"\n")
		cf, err := maincf.Load(dir)
		if err != nil {
			t.Fatal(err)
		}
		got, err := trustedUID(cf, tc.uid)
		if got != tc.want || (err != nil) != tc.wantErr {
			t.Errorf("%s = %q, uid %d: %v, %v; want %v, error %v", trustedUIDsParam, tc.value, tc.uid, got, err, tc.want, tc.wantErr)
		}
	}
}
