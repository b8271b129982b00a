package lookup

import (
	"io/fs"
	"os"
	"syscall"
)

// openRead opens path for reading as a plain blocking descriptor, with os.Open's errors.
//
// os.Open offers every descriptor to the runtime's network poller: for a regular file
// four fcntl calls and an epoll_ctl that fails, and the poller's own creation the first
// time. A delivery process opens its tables once, at start-up (bench/mda/README.md,
// "Where the time goes").
func openRead(path string) (*os.File, error) {
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
