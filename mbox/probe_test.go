package mbox

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// Probe gives, for each situation, the error Deliver then gives (same Op and sentinel or
// errno), and writes nothing.
func TestProbeAgreesWithDeliver(t *testing.T) {
	msg := []byte("Subject: x\n\nhello\n")
	for _, tc := range []struct {
		name  string
		setup func(dir string)
		opt   Options
		want  error // nil: both succeed
	}{
		{"new file", func(string) {}, Options{Locks: []string{"fcntl", "dotlock"}}, nil},
		{"missing directory", func(string) {}, Options{Locks: []string{"fcntl"}}, syscall.ENOENT},
		{"missing directory, dotlock", func(string) {}, Options{Locks: []string{"dotlock"}}, syscall.ENOENT},
		{"fifo", func(d string) { syscall.Mkfifo(filepath.Join(d, "mb"), 0o600) }, Options{Locks: []string{"fcntl"}}, syscall.ENXIO},
		{"hard links", func(d string) {
			os.WriteFile(filepath.Join(d, "mb"), nil, 0o600)
			os.Link(filepath.Join(d, "mb"), filepath.Join(d, "other"))
		}, Options{Locks: []string{"fcntl"}}, ErrLinked},
		{"symlink", func(d string) {
			os.WriteFile(filepath.Join(d, "real"), nil, 0o600)
			os.Symlink("real", filepath.Join(d, "mb"))
			os.Lchown(filepath.Join(d, "mb"), 1, 1)
		}, Options{Locks: []string{"fcntl"}}, ErrSymlink},
		{"over the limit", func(d string) { os.WriteFile(filepath.Join(d, "mb"), make([]byte, 90), 0o600) },
			Options{Locks: []string{"fcntl"}, Limit: 100}, ErrTooLarge},
		{"dotlock held", func(d string) { os.WriteFile(filepath.Join(d, "mb.lock"), nil, 0o600) },
			Options{Locks: []string{"dotlock"}, Attempts: 1}, ErrLockBusy},
		{"unknown lock", func(string) {}, Options{Locks: []string{"lockf"}}, syscall.EINVAL},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root, dir := newRoot(t)
			name := "mb"
			if tc.name == "missing directory" || tc.name == "missing directory, dotlock" {
				name = "no/mb"
			}
			tc.setup(dir)
			before, _ := os.ReadDir(dir)
			perr := Probe(root, name, "s@example.net", nil, msg, tc.opt)
			after, _ := os.ReadDir(dir)
			if len(after) != len(before) {
				t.Fatalf("Probe created files: %v -> %v", before, after)
			}
			derr := Deliver(context.Background(), root, name, "s@example.net", nil, msg, tc.opt)
			if tc.want == nil {
				if perr != nil || derr != nil {
					t.Fatalf("Probe: %v, Deliver: %v; want both nil", perr, derr)
				}
				return
			}
			var pe, de *Error
			if !errors.As(perr, &pe) || !errors.As(derr, &de) || pe.Op != de.Op || !errors.Is(perr, tc.want) || !errors.Is(derr, tc.want) {
				t.Fatalf("Probe: %v, Deliver: %v; want the same Op and %v", perr, derr, tc.want)
			}
		})
	}
}
