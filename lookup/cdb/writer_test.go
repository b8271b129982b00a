package cdb

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
)

// dirNames lists dir, to prove no temporary file is left behind.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func TestCommitReplaces(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "t.cdb")
	// An existing table with other contents and a private mode.
	if err := os.WriteFile(path, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	w, err := Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Add([]byte("k"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	// Nothing at path changes before Commit.
	if b, _ := os.ReadFile(path); string(b) != "old" {
		t.Fatalf("path changed before Commit: %q", b)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode() != 0o644 {
		t.Errorf("mode = %v, want -rw-r--r-- as postmap", fi.Mode())
	}
	mustGet(t, open(t, path), "k", "v", true)
	if got := dirNames(t, dir); !slices.Equal(got, []string{"t.cdb"}) {
		t.Errorf("directory holds %q, want only t.cdb", got)
	}
	// Done: more calls are refused, Abort is a harmless deferred no-op.
	if err := w.Add([]byte("x"), nil); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Add after Commit = %v, want os.ErrClosed", err)
	}
	if err := w.Commit(); !errors.Is(err, os.ErrClosed) {
		t.Errorf("second Commit = %v, want os.ErrClosed", err)
	}
	if err := w.Abort(); err != nil {
		t.Errorf("Abort after Commit = %v, want nil", err)
	}
	mustGet(t, open(t, path), "k", "v", true)
}

func TestAbort(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "t.cdb")
	if err := os.WriteFile(path, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	w, err := Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Add([]byte("k"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	if got := dirNames(t, dir); len(got) != 2 {
		t.Fatalf("while writing, directory holds %q, want t.cdb and one temporary file", got)
	}
	if err := w.Abort(); err != nil {
		t.Fatal(err)
	}
	if err := w.Abort(); err != nil {
		t.Errorf("second Abort = %v, want nil", err)
	}
	if err := w.Commit(); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Commit after Abort = %v, want os.ErrClosed", err)
	}
	if got := dirNames(t, dir); !slices.Equal(got, []string{"t.cdb"}) {
		t.Errorf("directory holds %q, want only t.cdb", got)
	}
	if b, _ := os.ReadFile(path); string(b) != "old" {
		t.Errorf("path changed by an aborted Writer: %q", b)
	}
}

func TestCreateErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if _, err := Create(filepath.Join(dir, "missing", "t.cdb")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Create in a missing directory = %v, want ErrNotExist", err)
	}
	if os.Geteuid() == 0 {
		t.Log("skipping the read-only directory case: root writes anyway")
		return
	}
	ro := filepath.Join(dir, "ro")
	if err := os.Mkdir(ro, 0o555); err != nil {
		t.Fatal(err)
	}
	if _, err := Create(filepath.Join(ro, "t.cdb")); !errors.Is(err, os.ErrPermission) {
		t.Errorf("Create in a read-only directory = %v, want ErrPermission", err)
	}
}

// Every way Commit can fail before the rename leaves the directory as it
// was: the old table in place, no temporary file.
func TestCommitFailures(t *testing.T) {
	// Not parallel: the fsync seam is package state.
	eio := func(int) func(*os.File) error {
		return func(*os.File) error { return syscall.EIO }
	}
	tests := []struct {
		name string
		// setup makes the commit fail; it runs after Create and one Add.
		setup   func(t *testing.T, w *Writer)
		fsyncs  func(n int) func(*os.File) error // nil: real fsync
		want    error
		renamed bool // the new file reached path
	}{
		{
			name: "rename onto a non-empty directory",
			setup: func(t *testing.T, w *Writer) {
				if err := os.Remove(w.path); err != nil {
					t.Fatal(err)
				}
				if err := os.MkdirAll(filepath.Join(w.path, "sub"), 0o755); err != nil {
					t.Fatal(err)
				}
			},
			want: syscall.EEXIST, // os.Rename refuses a directory target itself,
		},
		{
			name: "write error",
			setup: func(t *testing.T, w *Writer) {
				// Close the file under the Writer: the next flush fails
				// for real, and the error must stick.
				w.f.Close()
				if err := w.Add(make([]byte, 128<<10), nil); !errors.Is(err, os.ErrClosed) {
					t.Fatalf("Add on a closed file = %v, want os.ErrClosed", err)
				}
				if err := w.Add([]byte("again"), nil); !errors.Is(err, os.ErrClosed) {
					t.Fatalf("Add after a write error = %v, want the same error", err)
				}
			},
			want: os.ErrClosed,
		},
		{name: "file fsync EIO", fsyncs: eio, want: syscall.EIO},
		{
			name: "directory fsync EIO",
			fsyncs: func(n int) func(*os.File) error {
				return func(f *os.File) error {
					if n == 0 { // the file
						n++
						return f.Sync()
					}
					return syscall.EIO
				}
			},
			want:    syscall.EIO,
			renamed: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.fsyncs != nil {
				fsync = tc.fsyncs(0)
				t.Cleanup(func() { fsync = (*os.File).Sync })
			}
			dir := t.TempDir()
			path := filepath.Join(dir, "t.cdb")
			if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
				t.Fatal(err)
			}
			w, err := Create(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := w.Add([]byte("k"), []byte("v")); err != nil {
				t.Fatal(err)
			}
			if tc.setup != nil {
				tc.setup(t, w)
			}
			if err := w.Commit(); !errors.Is(err, tc.want) {
				t.Fatalf("Commit = %v, want %v", err, tc.want)
			}
			if err := w.Abort(); err != nil {
				t.Errorf("Abort after a failed Commit = %v, want nil", err)
			}
			if got := dirNames(t, dir); !slices.Equal(got, []string{"t.cdb"}) {
				t.Errorf("directory holds %q, want only t.cdb", got)
			}
			if tc.renamed {
				mustGet(t, open(t, path), "k", "v", true)
			} else if b, err := os.ReadFile(path); err == nil && string(b) != "old" {
				t.Errorf("old table changed: %q", b)
			}
		})
	}
}

// The size limit is checked before writing: the Writer stays usable.
func TestAddTooLarge(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "t.cdb")
	w, err := Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	if err := w.Add([]byte("a"), []byte("1")); err != nil {
		t.Fatal(err)
	}
	// Pretend 4 GiB of records were written; only the arithmetic matters.
	// Record "b" takes 8+1+1 bytes plus, with "a", 2×16 bytes of tables.
	saved := w.pos
	w.pos = maxFileSize - 42 + 1
	if err := w.Add([]byte("b"), []byte("2")); err == nil {
		t.Fatal("Add past 4 GiB succeeded")
	}
	if len(w.recs) != 1 {
		t.Fatalf("refused record was kept: %d records", len(w.recs))
	}
	w.pos = maxFileSize - 42
	if err := w.Add([]byte("b"), []byte("2")); err != nil {
		t.Fatalf("Add of a record that just fits = %v", err)
	}
	w.pos = saved
	w.recs = w.recs[:1]
}
