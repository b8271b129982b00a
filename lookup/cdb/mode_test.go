package cdb

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// A mode set before Commit is the mode of the table at its final path, and the
// temporary file never had a wider one when it was renamed.
func TestChmod(t *testing.T) {
	t.Parallel()
	for _, mode := range []os.FileMode{0o600, 0o640, 0o444} {
		path := filepath.Join(t.TempDir(), "t.cdb")
		w, err := Create(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Add([]byte("k"), []byte("v")); err != nil {
			t.Fatal(err)
		}
		if err := w.Chmod(mode); err != nil {
			t.Fatal(err)
		}
		if fi, err := os.Stat(w.tmp); err != nil || fi.Mode().Perm() != mode {
			t.Fatalf("temporary file before Commit: %v, %v; want mode %v", fi.Mode(), err, mode)
		}
		if err := w.Commit(); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != mode {
			t.Errorf("mode %v, want %v", fi.Mode().Perm(), mode)
		}
		if err := w.Chmod(0o600); !errors.Is(err, os.ErrClosed) {
			t.Errorf("Chmod after Commit: %v, want os.ErrClosed", err)
		}
	}
}
