//go:build faultinject

package maildir

// This file exists only in binaries built with -tags faultinject, which the
// faults/ suite builds for itself; a normal build compiles killpoint.go instead.
//
// VDELIVER_KILL_AT=name or name#n makes the n-th (default first) call of
// killpoint(name) SIGKILL the process. Besides the killpoint calls in
// maildir.go, the name "maildir:half-write" kills in the middle of a write:
// half the buffer reaches the file, as when a fatal signal interrupts a large
// write(2), then the process dies.
//
// VDELIVER_FAULT is a comma-separated list of faults armed through the
// package's seams, for errors a real file system will not produce on demand:
//
//	maildir:write-eio      every write fails with EIO
//	maildir:fsync-eio      fsync of the message fails with EIO
//	maildir:close-eio      close of the message fails with EIO (after closing)
//	maildir:dirsync-eio    every directory fsync fails with EIO
//	maildir:link-eperm     link(2) refuses (no hard links on this file system)
//	maildir:link-taken     as link-eperm, after another file took the new/ name
//	maildir:rename-einval  the rename fallback has no RENAME_NOREPLACE either
//	maildir:link-lie       link(2) links, then reports EIO (NFS retransmission)

import (
	"os"
	"syscall"

	"golang.org/x/sys/unix"

	"vdeliver/internal/faultinject"
)

var (
	armed = faultinject.Armed
	die   = faultinject.Die
	fault = faultinject.Fault
)

func killpoint(name string) { faultinject.Kill(name) }

func init() {
	realWrite, realSync, realClose, realSyncDir, realLink, realRename := writeFile, syncFile, closeFile, syncDir, linkFile, renameNoReplace
	writeFile = func(f *os.File, b []byte) (int, error) {
		if fault("maildir:write-eio") {
			return 0, syscall.EIO
		}
		if armed("maildir:half-write") {
			realWrite(f, b[:len(b)/2])
			die()
		}
		return realWrite(f, b)
	}
	syncFile = func(f *os.File) error {
		if fault("maildir:fsync-eio") {
			return syscall.EIO
		}
		return realSync(f)
	}
	closeFile = func(f *os.File) error {
		if fault("maildir:close-eio") {
			realClose(f)
			return syscall.EIO
		}
		return realClose(f)
	}
	syncDir = func(f *os.File) error {
		if fault("maildir:dirsync-eio") {
			return syscall.EIO
		}
		return realSyncDir(f)
	}
	linkFile = func(od *os.File, oldname string, nd *os.File, newname string) error {
		switch {
		case fault("maildir:link-taken"):
			// Another process got the name first; its file must survive.
			if fd, err := unix.Openat(int(nd.Fd()), newname, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o600); err == nil {
				unix.Write(fd, []byte("occupied\n"))
				unix.Close(fd)
			}
			return syscall.EPERM
		case fault("maildir:link-eperm"), fault("maildir:rename-einval"):
			return syscall.EPERM
		case fault("maildir:link-lie"):
			if err := realLink(od, oldname, nd, newname); err != nil {
				return err
			}
			return syscall.EIO
		}
		return realLink(od, oldname, nd, newname)
	}
	renameNoReplace = func(od *os.File, on string, nd *os.File, nn string) error {
		if fault("maildir:rename-einval") {
			return syscall.EINVAL
		}
		return realRename(od, on, nd, nn)
	}
}
