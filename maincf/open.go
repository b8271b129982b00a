package maincf

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// readFile reads the whole file at path, with os.Open's errors for opening it and "read
// FILE: ..." for reading it.
//
// It opens a plain blocking descriptor instead of calling os.Open, which offers every
// descriptor to the runtime's network poller (four fcntl calls and an epoll_ctl that a
// regular file refuses, after creating the poller the first time), and reads into one
// buffer of the file's size instead of io.ReadAll's eight growing ones for a 4 kB file.
// A delivery process reads main.cf once: this is its start-up (bench/mda/README.md,
// "Where the time goes").
func readFile(path string) ([]byte, error) {
	var fd int
	var err error
	for {
		fd, err = syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	size := 512
	if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() && fi.Size() < 1<<30 {
		size = int(fi.Size()) + 1 // +1: the read that sees EOF needs no larger buffer
	}
	data := make([]byte, 0, size)
	for {
		if len(data) == cap(data) {
			data = append(data, 0)[:len(data)]
		}
		n, err := f.Read(data[len(data):cap(data)])
		data = data[:len(data)+n]
		if err == io.EOF {
			return data, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
	}
}
