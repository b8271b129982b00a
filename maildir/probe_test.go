package maildir

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"vdeliver/internal/beneath"
)

// Probe gives, for each situation, the error Deliver then gives (same Op, same errno),
// and creates nothing.
func TestProbeAgreesWithDeliver(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(base string)
		size  int64
		limit int64
		errno error // nil: both succeed
	}{
		{"fresh", func(string) {}, 10, 0, nil},
		{"existing", func(b string) {
			for _, d := range []string{"tmp", "new", "cur"} {
				os.MkdirAll(filepath.Join(b, "d", d), 0o700)
			}
		}, 10, 0, nil},
		{"over the limit", func(string) {}, 100, 50, syscall.EFBIG},
		{"tmp is a file", func(b string) {
			os.MkdirAll(filepath.Join(b, "d"), 0o700)
			os.WriteFile(filepath.Join(b, "d", "tmp"), nil, 0o600)
		}, 10, 0, syscall.ENOTDIR},
		{"a file on the way", func(b string) {
			os.WriteFile(filepath.Join(b, "x"), nil, 0o600)
		}, 10, 0, syscall.ENOTDIR},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			tc.setup(base)
			root, err := beneath.Open(base)
			if err != nil {
				t.Fatal(err)
			}
			defer root.Close()
			dir := "d/"
			if tc.name == "a file on the way" {
				dir = "x/d/"
			}
			before, _ := filepath.Glob(filepath.Join(base, "*", "*"))
			perr := Probe(root, dir, tc.size, tc.limit)
			after, _ := filepath.Glob(filepath.Join(base, "*", "*"))
			if len(after) != len(before) {
				t.Fatalf("Probe created files: %v -> %v", before, after)
			}
			_, derr := Deliver(root, dir, [][]byte{make([]byte, tc.size)}, Options{Hostname: "h", Limit: tc.limit})
			if tc.errno == nil {
				if perr != nil || derr != nil {
					t.Fatalf("Probe: %v, Deliver: %v; want both nil", perr, derr)
				}
				return
			}
			var pe, de *Error
			if !errors.As(perr, &pe) || !errors.As(derr, &de) || pe.Op != de.Op || !errors.Is(perr, tc.errno) || !errors.Is(derr, tc.errno) {
				t.Fatalf("Probe: %v, Deliver: %v; want the same Op and %v", perr, derr, tc.errno)
			}
		})
	}
}
