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
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// ErrTooLarge is what ReadAll returns for input longer than its limit: a size that comes
// from disk or from a sender must never decide how much memory is asked for (the runtime
// cannot survive an allocation it is refused: it exits with status 2).
var ErrTooLarge = errors.New("larger than the limit")

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

// ReadAll reads all of r, at most limit bytes: more is an error wrapping ErrTooLarge, and
// the rest of r is left unread. A regular file is read into one buffer of its size (one
// over the limit is refused before anything is read); anything else (a pipe, as pipe(8)
// gives the message) into a first buffer of first bytes and, when that fills, into
// buffers that double, joined once at the end.
func ReadAll(r io.Reader, first int, limit int64) ([]byte, error) {
	size := first
	if f, ok := r.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
			if fi.Size() > limit {
				return nil, fmt.Errorf("%d bytes: %w (%d)", fi.Size(), ErrTooLarge, limit)
			}
			// One byte more, so that the read that sees EOF needs no new buffer. The
			// offset may be past 0: the size is a hint, not a limit.
			size = int(fi.Size()) + 1
		}
	}
	return readSized(r, size, limit)
}

// ReadFile reads the whole file at path, at most limit bytes (see ReadAll), with
// os.Open's errors for opening it and "read FILE: ..." for reading it.
func ReadFile(path string, limit int64) ([]byte, error) {
	f, err := Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := ReadAll(f, 512, limit)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return data, nil
}

func readSized(r io.Reader, size int, limit int64) ([]byte, error) {
	size = max(size, 512) // a zero-sized buffer would never see EOF
	size = int(min(int64(size), limit+1))
	var chunks [][]byte
	total := 0
	b := make([]byte, 0, size)
	for {
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if int64(total+len(b)) > limit {
			return nil, fmt.Errorf("more than %d bytes: %w", limit, ErrTooLarge)
		}
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
			// Never more than one byte past the limit, which is enough to tell.
			b = make([]byte, 0, min(int64(2*cap(b)), limit+1-int64(total)))
		}
	}
}
