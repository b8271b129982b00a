package rawfile

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"testing/iotest"
)

// The limit holds for a pipe-like reader whatever the first buffer, and for a regular
// file before a byte is read: exactly limit bytes pass, one more is ErrTooLarge.
func TestReadAllLimit(t *testing.T) {
	dir := t.TempDir()
	for _, limit := range []int64{0, 1, 511, 512, 513, 4096, 100000} {
		for _, n := range []int64{limit, limit + 1} {
			data := bytes.Repeat([]byte{'x'}, int(n))
			wantErr := n > limit
			for _, first := range []int{0, 1, 512, 64 << 10} {
				got, err := ReadAll(iotest.HalfReader(bytes.NewReader(data)), first, limit)
				if errors.Is(err, ErrTooLarge) != wantErr || (!wantErr && !bytes.Equal(got, data)) {
					t.Fatalf("reader: limit %d, %d bytes, first %d: %d bytes, %v", limit, n, first, len(got), err)
				}
			}
			p := filepath.Join(dir, "f")
			if err := os.WriteFile(p, data, 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := ReadFile(p, limit)
			if errors.Is(err, ErrTooLarge) != wantErr || (!wantErr && !bytes.Equal(got, data)) {
				t.Fatalf("file: limit %d, %d bytes: %d bytes, %v", limit, n, len(got), err)
			}
		}
	}
}

// A sparse file of a terabyte is refused by its size, without a read.
func TestReadFileSparse(t *testing.T) {
	p := filepath.Join(t.TempDir(), "huge")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(1 << 40); err != nil {
		t.Skipf("no sparse file of 1 TB here: %v", err)
	}
	f.Close()
	if _, err := ReadFile(p, 16<<20); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("1 TB file: %v, want ErrTooLarge", err)
	}
}
