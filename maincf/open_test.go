package maincf

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// readFile replaces os.Open + io.ReadAll for main.cf; it must give the same bytes and
// the same errors, whatever fstat says about the size.
func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	for _, size := range []int{0, 1, 511, 512, 513, 4096, 100000} {
		p := filepath.Join(dir, "f")
		want := []byte(strings.Repeat("a = b\n", size/6+1)[:size])
		if err := os.WriteFile(p, want, 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := readFile(p)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%d bytes: got %d bytes, err %v", size, len(got), err)
		}
	}
	// A file whose size fstat reports as 0 but that has content (procfs): the size is
	// a hint only.
	want, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil || len(want) == 0 {
		t.Fatalf("no /proc/self/mountinfo to read: %v", err)
	}
	got, err := readFile("/proc/self/mountinfo")
	if err != nil || len(got) < len(want)/2 || !bytes.HasPrefix(got, want[:len(want)/2]) {
		t.Fatalf("procfs file: got %d bytes (err %v), want about %d", len(got), err, len(want))
	}
	if _, err := readFile(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) || err.Error() != "open "+filepath.Join(dir, "missing")+": no such file or directory" {
		t.Fatalf("missing file: %v", err)
	}
	if _, err := readFile(dir); err == nil || err.Error() != "read "+dir+": read "+dir+": is a directory" {
		t.Fatalf("directory: %v", err)
	}
}
