package quota

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"vdeliver/internal/beneath"
)

// maildirAt makes a Maildir (cur/ new/ tmp/) at base/dir and returns its path.
func maildirAt(t *testing.T, base, dir string) string {
	t.Helper()
	p := filepath.Join(base, dir)
	for _, s := range []string{"cur", "new", "tmp"} {
		if err := os.MkdirAll(filepath.Join(p, s), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

func openRoot(t *testing.T, base string) *beneath.Root {
	t.Helper()
	r, err := openRootErr(base)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func openRootErr(base string) (*beneath.Root, error) { return beneath.Open(base) }

// putMessage writes a message of size bytes as md/sub/name.
func putMessage(t *testing.T, md, sub, name string, size int) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(md, sub), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(md, sub, name), []byte(strings.Repeat("x", size)), 0o600); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func lim(def string) *Limit {
	l, err := Parse(def)
	if err != nil {
		panic(err)
	}
	return &l
}

// TestReserveFlow: a missing maildirsize is recalculated from the Maildir (names with
// ,S= and without), the delta is appended, Cancel gives it back, and a message that does
// not fit is refused with the numbers.
func TestReserveFlow(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	md := maildirAt(t, base, "d/u")
	putMessage(t, md, "cur", "1.V1I1M1.h,S=100:2,S", 7) // the name's size wins
	putMessage(t, md, "new", "2.V1I2M2.h", 50)
	putMessage(t, md, ".lists/cur", "3.h,S=30,W=31:2,", 1)
	putMessage(t, md, ".Trash/new", "4.h", 20)
	root := openRoot(t, base)
	now := time.Now()

	r, err := Reserve(root, "d/u/", lim("1000S,10C"), 300, now)
	if err != nil {
		t.Fatal(err)
	}
	if r.Limit != (Limit{1000, 10}) || r.Usage != (Usage{200, 4}) {
		t.Errorf("reservation %+v %+v, want limit 1000S,10C usage 200 4", r.Limit, r.Usage)
	}
	if err := r.Cancel(); err != nil {
		t.Fatal(err)
	}
	if got, want := readFile(t, filepath.Join(md, FileName)), "1000S,10C\n200 4\n300 1\n-300 -1\n"; got != want {
		t.Errorf("maildirsize %q, want %q", got, want)
	}
	st, err := os.Stat(filepath.Join(md, FileName))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("maildirsize mode %v, %v; want 0600", st.Mode(), err)
	}
	if ents, _ := os.ReadDir(filepath.Join(md, "tmp")); len(ents) != 0 {
		t.Errorf("tmp/ holds %v after a recalculation", ents)
	}

	r, err = Reserve(root, "d/u", lim("1000S,10C"), 801, now)
	var oq *OverQuotaError
	if !errors.As(err, &oq) || !errors.Is(err, ErrOverQuota) {
		t.Fatalf("Reserve(801) = %v, %v; want over quota", r, err)
	}
	if want := "mailbox over quota: 200 bytes in 4 messages, limit 1000S,10C, message 801 bytes"; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
	r, err = Reserve(root, "d/u", nil, 801, now)
	if !errors.Is(err, ErrOverQuota) {
		t.Fatalf("Reserve(801) with the file's limit = %v, %v; want over quota", r, err)
	}
	r, err = Reserve(root, "d/u", nil, 800, now)
	if err != nil {
		t.Fatal(err)
	}
	putMessage(t, md, "new", "5.V1I5M5.h,S=800", 0) // the delivery
	if err := r.Done(); err != nil {
		t.Fatal(err)
	}
	// The file had more than one line and said "over quota": it was recalculated
	// (the Maildir still holds 200 bytes), then the 800 were recorded.
	if got, want := readFile(t, filepath.Join(md, FileName)), "1000S,10C\n200 4\n800 1\n"; got != want {
		t.Errorf("maildirsize %q, want %q", got, want)
	}
	l, u, over, err := Inspect(root, "d/u", nil, 1)
	if err != nil || l != (Limit{1000, 10}) || u != (Usage{1000, 5}) || !over {
		t.Errorf("Inspect = %v %+v %v %v; want 1000S,10C {1000 5} true", l, u, over, err)
	}
}
