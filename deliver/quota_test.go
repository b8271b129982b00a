package deliver

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"vdeliver/internal/beneath"
)

// TestParseOverquotaStatus: bounce and defer in any case and with blanks around them;
// anything else is an error naming the value.
func TestParseOverquotaStatus(t *testing.T) {
	for _, tc := range []struct {
		in       string
		deferred bool
		ok       bool
	}{
		{"bounce", false, true},
		{"defer", true, true},
		{"DEFER", true, true},
		{" Bounce ", false, true},
		{"", false, false},
		{"later", false, false},
		{"defer,bounce", false, false},
		{"4.2.2", false, false},
	} {
		got, err := ParseOverquotaStatus(tc.in)
		if (err == nil) != tc.ok || got != tc.deferred {
			t.Errorf("ParseOverquotaStatus(%q) = %v, %v; want %v, ok %v", tc.in, got, err, tc.deferred, tc.ok)
		}
		if err != nil && !strings.Contains(err.Error(), `"`+tc.in+`"`) {
			t.Errorf("ParseOverquotaStatus(%q): error %q does not name the value", tc.in, err)
		}
	}
}

// TestOverQuotaStatus: 5.2.2 and exit 73 by default, 4.2.2 and exit 75 with defer; the
// text is the same and names nothing.
func TestOverQuotaStatus(t *testing.T) {
	s := &Settings{}
	if st := s.overQuota(nil); st.Line() != "5.2.2 mailbox full" || st.Exit != ExCantCreat {
		t.Errorf("bounce: %q exit %d", st.Line(), st.Exit)
	}
	s.OverquotaDefer = true
	if st := s.overQuota(nil); st.Line() != "4.2.2 mailbox full" || st.Exit != ExTempFail {
		t.Errorf("defer: %q exit %d", st.Line(), st.Exit)
	}
}

// FuzzParseOverquotaStatus: a value is accepted exactly when, without case and the
// blanks around it, it is bounce or defer, and only defer defers.
func FuzzParseOverquotaStatus(f *testing.F) {
	for _, s := range []string{"bounce", "defer", "DEFER ", "", "deferr", "b\x00ounce"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		deferred, err := ParseOverquotaStatus(s)
		word := strings.ToLower(strings.TrimSpace(s))
		if (err == nil) != (word == "bounce" || word == "defer") {
			t.Fatalf("ParseOverquotaStatus(%q): err %v", s, err)
		}
		if deferred != (err == nil && word == "defer") {
			t.Fatalf("ParseOverquotaStatus(%q) = %v", s, deferred)
		}
	})
}

// BenchmarkReserveNoQuota is what the quota step adds to a Maildir delivery when there is
// no quota (no table result, no maildirsize): one look for maildirsize beneath the base,
// no lock. Compare with BenchmarkDeliverMaildir, which has it.
func BenchmarkReserveNoQuota(b *testing.B) {
	dir := b.TempDir()
	for _, sub := range []string{"cur", "new", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, "alice", sub), 0o700); err != nil {
			b.Fatal(err)
		}
	}
	root, err := beneath.Open(dir)
	if err != nil {
		b.Fatal(err)
	}
	defer root.Close()
	r := &run{s: &Settings{Base: dir}, root: root, opt: Options{Now: time.Now}}
	t := &Target{Path: "alice/"}
	for b.Loop() {
		res, st, unused := r.reserve(t, 4096)
		if st != nil || unused != nil {
			b.Fatal(st, unused)
		}
		r.done(Envelope{}, t, res, nil)
	}
}
