//go:build faultinject

package mbox

// This file exists only in binaries built with -tags faultinject, which the
// faults/ suite builds for itself; a normal build compiles killpoint.go instead.
//
// VDELIVER_KILL_AT=name or name#n makes the n-th (default first) call of
// killpoint(name) SIGKILL the process. Besides the killpoint calls in
// mbox.go, the name "mbox:half-write" kills in the middle of the record's
// write: half of it reaches the file, as when a fatal signal interrupts a
// large write(2), then the process dies. "mbox:intent-half" does the same to
// the writes of the intent record (#1 its header, #2 the copy of the record).
//
// VDELIVER_FAULT is a comma-separated list of faults armed through the
// package's seams, for errors a real file system will not produce on demand:
//
//	mbox:write-eio     the write fails with EIO before writing anything
//	mbox:half-eio      half the record is written, then the write fails with EIO
//	mbox:fsync-eio     fsync fails with EIO (the whole record is written)
//	mbox:intent-eio    writing the intent record fails with EIO: the delivery
//	                   goes on without one, as virtual(8) would

import (
	"os"
	"syscall"

	"vdeliver/internal/faultinject"
)

var (
	armed = faultinject.Armed
	die   = faultinject.Die
	fault = faultinject.Fault
)

func killpoint(name string) { faultinject.Kill(name) }

func init() {
	realWrite, realSync := writeFile, syncFile
	writeFile = func(f *os.File, b []byte) (int, error) {
		switch {
		case fault("mbox:write-eio"):
			return 0, syscall.EIO
		case fault("mbox:half-eio"):
			n, _ := realWrite(f, b[:len(b)/2])
			return n, syscall.EIO
		case armed("mbox:half-write"):
			realWrite(f, b[:len(b)/2])
			die()
		}
		return realWrite(f, b)
	}
	syncFile = func(f *os.File) error {
		if fault("mbox:fsync-eio") {
			return syscall.EIO
		}
		return realSync(f)
	}
	realIntent := writeIntentFile
	writeIntentFile = func(f *os.File, b []byte) (int, error) {
		switch {
		case fault("mbox:intent-eio"):
			return 0, syscall.EIO
		case armed("mbox:intent-half"):
			realIntent(f, b[:len(b)/2])
			die()
		}
		return realIntent(f, b)
	}
}
