package maildir

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"vdeliver/internal/beneath"
)

// TestCreateFolder: a folder (and the maildir above it) is made with cur/ new/ tmp/ 0700
// and an empty maildirfolder 0600; a second call, or one that meets a folder already
// made by someone else, completes it and changes nothing that exists.
func TestCreateFolder(t *testing.T) {
	t.Parallel()
	root, base := newRoot(t)
	if err := CreateFolder(root, "d/u/", ".lists"); err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(base, "d/u/.lists")
	for _, d := range []string{"d", "d/u", "d/u/.lists", "d/u/.lists/cur", "d/u/.lists/new", "d/u/.lists/tmp"} {
		assertMode(t, filepath.Join(base, d), os.ModeDir|0o700)
	}
	assertMode(t, filepath.Join(f, FolderMarker), 0o600)
	if st, err := os.Stat(filepath.Join(f, FolderMarker)); err != nil || st.Size() != 0 {
		t.Fatalf("marker: %v, %v", st, err)
	}
	if got := entries(t, f); len(got) != 4 {
		t.Errorf("folder holds %q, want cur, maildirfolder, new, tmp", got)
	}
	// Again: nothing changes. A marker someone else wrote is left as it is.
	if err := os.WriteFile(filepath.Join(f, FolderMarker), []byte("theirs"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(f, FolderMarker), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(f, "tmp"))
	if err := CreateFolder(root, "d/u", ".lists"); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(f, FolderMarker)); string(b) != "theirs" {
		t.Errorf("existing marker rewritten: %q", b)
	}
	assertMode(t, filepath.Join(f, FolderMarker), 0o644)
	assertMode(t, filepath.Join(f, "tmp"), os.ModeDir|0o700)

	ok, err := FolderExists(root, "d/u/", ".lists")
	if !ok || err != nil {
		t.Errorf("FolderExists(.lists) = %v, %v; want true", ok, err)
	}
	ok, err = FolderExists(root, "d/u/", ".other")
	if ok || err != nil {
		t.Errorf("FolderExists(.other) = %v, %v; want false, nil", ok, err)
	}
	if err := os.WriteFile(filepath.Join(base, "d/u/.file"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if ok, err = FolderExists(root, "d/u/", ".file"); ok || !errors.Is(err, syscall.ENOTDIR) {
		t.Errorf("FolderExists(.file) = %v, %v; want ENOTDIR", ok, err)
	}
}

// TestCreateFolderRefused: a name that is not one Maildir++ folder element is refused
// before anything is made, and a folder that is a symbolic link out of the base is
// refused by the confinement: nothing is created outside.
func TestCreateFolderRefused(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"lists", ".", "..", "./x", ".a/../../x", ".a\x00b", ""} {
		root, base := newRoot(t)
		err := CreateFolder(root, "u/", name)
		var me *Error
		if !errors.As(err, &me) || me.Op != "create" {
			t.Errorf("CreateFolder(%q) = %v, want a create *Error", name, err)
		}
		if got := entries(t, base); len(got) != 0 {
			t.Errorf("CreateFolder(%q) made %q", name, got)
		}
	}

	top := t.TempDir()
	base, outside := filepath.Join(top, "base"), filepath.Join(top, "outside")
	mkdir(t, filepath.Join(base, "u"), 0o755)
	mkdir(t, outside, 0o755)
	symlink(t, outside, filepath.Join(base, "u/.lists"))
	root, err := beneath.Open(base)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	if err := CreateFolder(root, "u", ".lists"); err == nil {
		t.Error("CreateFolder through a symbolic link out of the base succeeded")
	}
	if _, err := FolderExists(root, "u", ".lists"); err == nil {
		t.Error("FolderExists through a symbolic link out of the base succeeded")
	}
	if got := entries(t, outside); len(got) != 0 {
		t.Errorf("created outside the base: %q", got)
	}
}

// TestCreateFolderSyncFails: an fsync that fails (EIO, which cannot be made on demand)
// while the marker or a directory is made fails CreateFolder with a create *Error that
// keeps the errno: the caller must not take an unsynced folder for a made one. Not
// parallel: it replaces the package's seams.
func TestCreateFolderSyncFails(t *testing.T) {
	eio := func(*os.File) error { return syscall.EIO }
	seams := map[string]*func(*os.File) error{"file": &syncFile, "directory": &syncDir}
	for name, seam := range seams {
		t.Run(name, func(t *testing.T) {
			root, _ := newRoot(t)
			stub(t, seam, eio)
			err := CreateFolder(root, "u/", ".lists")
			var me *Error
			if !errors.As(err, &me) || me.Op != "create" || !errors.Is(err, syscall.EIO) {
				t.Errorf("CreateFolder with a failing %s fsync = %v, want a create *Error with EIO", name, err)
			}
		})
	}
}
