package quota

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestConcurrentNearLimit: processes delivering into one Maildir at the same moment, each
// holding its reservation while it "writes" its message, admit exactly as many messages
// as fit, and afterwards maildirsize adds up to what a real count of the Maildir finds.
func TestConcurrentNearLimit(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		def     string
		preload []int64 // messages already in new/
		size    int64
		procs   int
		admit   int
		file    string // maildirsize before, "" for none
		missing bool   // no Maildir yet: the first delivery makes it
		over    int    // how many more than admit may be admitted
	}{
		// 650 + 3×100 = 950; a fourth would make 1050.
		{"bytes", "1000S,100C", []int64{300, 350}, 100, 10, 3, "", false, 0},
		// Exactly to the limit: 600 + 4×100 = 1000 fits.
		{"bytes to the limit", "1000S", []int64{600}, 100, 8, 4, "1000S\n600 1\n", false, 0},
		// 3 + 2 = 5 messages.
		{"count", "5C", []int64{20, 20, 20}, 50, 8, 2, "5C\n60 3\n", false, 0},
		// The Maildir does not exist yet: 3×300 fit in 1000, but nothing is locked
		// until it exists, so first deliveries are admitted without seeing each other
		// (as with Dovecot and Courier, which never lock), and a recalculation
		// meanwhile may miss their messages (the next one counts them).
		{"no maildir yet", "1000S", nil, 300, 10, 3, "", true, 7},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			base := t.TempDir()
			md := filepath.Join(base, "d/u")
			if !c.missing {
				maildirAt(t, base, "d/u")
			}
			var pre Usage
			for i, s := range c.preload {
				putMessage(t, md, "new", "pre"+string(rune('a'+i))+",S="+itoa(s), int(s))
				pre.Bytes += s
				pre.Count++
			}
			if c.file != "" {
				if err := os.WriteFile(filepath.Join(md, FileName), []byte(c.file), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			type proc struct {
				wait func() error
				out  *strings.Builder
			}
			var ps []proc
			for range c.procs {
				cmd, out := startHelper(t, "", nil, 30*time.Millisecond, base, "d/u", c.def, itoa(c.size), "deliver")
				ps = append(ps, proc{cmd.Wait, out})
			}
			admitted, refused := 0, 0
			for _, p := range ps {
				if err := p.wait(); err != nil {
					t.Fatalf("helper: %v: %s", err, p.out)
				}
				switch line := p.out.String(); {
				case strings.HasPrefix(line, "ok "):
					admitted++
				case strings.HasPrefix(line, "over "):
					refused++
				default:
					t.Fatalf("helper said %q", line)
				}
			}
			if admitted < c.admit || admitted > c.admit+c.over || admitted+refused != c.procs {
				t.Errorf("%d admitted, %d refused; want %d (up to %d more) and the rest", admitted, refused, c.admit, c.over)
			}
			real := recount(t, md)
			want := Usage{pre.Bytes + int64(admitted)*c.size, pre.Count + int64(admitted)}
			if real != want {
				t.Errorf("Maildir holds %+v, want %+v", real, want)
			}
			l, _ := Parse(c.def)
			if c.over == 0 && ((l.Bytes > 0 && real.Bytes > l.Bytes) || (l.Count > 0 && real.Count > l.Count)) {
				t.Errorf("Maildir holds %+v, over the quota %v", real, l)
			}
			if c.missing {
				return
			}
			fc, ok := parseFile([]byte(readFile(t, filepath.Join(md, FileName))))
			if !ok || fc.usage != real || fc.limit != l {
				t.Errorf("maildirsize says %+v (ok %v), the Maildir holds %+v", fc, ok, real)
			}
		})
	}
}

// recount counts the Maildir at md as a recalculation does.
func recount(t *testing.T, md string) Usage {
	t.Helper()
	d, err := os.Open(md)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	u, _, err := count(d, md)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
