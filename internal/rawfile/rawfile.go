// Package rawfile opens and reads whole files the way a process that lives a few
// milliseconds should (bench/mda/README.md, "Where the time goes"): main.cf, the tables
// and the message are each read once, at start-up.
//
// os.Open offers every descriptor to the runtime's network poller (four fcntl calls and
// an epoll_ctl that a regular file refuses, after creating the poller the first time),
// and io.ReadAll starts at 512 bytes and grows in steps of one and a half: a 4 kB file
// took eight reads and buffers of eight size classes, each a fresh span and fresh pages.
package rawfile

import (
	"io"
	"io/fs"
	"os"
	"syscall"
)

// Open opens path for reading as a plain blocking descriptor, with os.Open's errors.
func Open(path string) (*os.File, error) {
	for {
		fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return nil, &fs.PathError{Op: "open", Path: path, Err: err}
		}
		return os.NewFile(uintptr(fd), path), nil
	}
}

// ReadAll reads all of r. A regular file is read into one buffer of its size; anything
// else (a pipe, as pipe(8) gives the message) into a first buffer of first bytes and,
// when that fills, into buffers that double, joined once at the end.
func ReadAll(r io.Reader, first int) ([]byte, error) {
	size := first
	if f, ok := r.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() && fi.Size() < 1<<30 {
			// One byte more, so that the read that sees EOF needs no new buffer. The
			// offset may be past 0: the size is a hint, not a limit.
			size = int(fi.Size()) + 1
		}
	}
	return readSized(r, size)
}

func readSized(r io.Reader, size int) ([]byte, error) {
	size = max(size, 512) // a zero-sized buffer would never see EOF
	var chunks [][]byte
	total := 0
	b := make([]byte, 0, size)
	for {
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err != nil {
			if err == io.EOF {
				err = nil
			}
			if len(chunks) == 0 {
				return b, err
			}
			all := make([]byte, 0, total+len(b))
			for _, c := range chunks {
				all = append(all, c...)
			}
			return append(all, b...), err
		}
		if len(b) == cap(b) {
			chunks = append(chunks, b)
			total += len(b)
			b = make([]byte, 0, 2*cap(b))
		}
	}
}
