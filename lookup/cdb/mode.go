package cdb

import (
	"fmt"
	"io/fs"
	"os"
)

// Chmod sets the permission bits the file will have at path after Commit, in place of
// the default 0644. Setting them on the temporary file, before the rename, means the
// table is never visible with wider permissions than asked for: postmap(1) gives a
// table the permissions of its source, so a 0600 source must not pass through 0644.
//
// It returns an error wrapping the OS error if the change fails (the Writer stays
// usable), and one wrapping os.ErrClosed after Commit or Abort.
func (w *Writer) Chmod(mode fs.FileMode) error {
	if w.done || w.f == nil {
		return fmt.Errorf("cdb: chmod %s: %w", w.path, os.ErrClosed)
	}
	if err := w.f.Chmod(mode.Perm()); err != nil {
		return fmt.Errorf("cdb: %w", err)
	}
	return nil
}
