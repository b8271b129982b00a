package lmtp

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// Message is the message of one transaction as the delivery agent writes it: the DATA
// lines dot-unstuffed, each ending in LF. A message up to the server's memory threshold
// is held in memory; a larger one is spooled to an unlinked temporary file of the
// process's own, so memory stays bounded whatever the size.
type Message struct {
	mem  []byte
	f    *os.File
	size int64
}

// Size is the length of the message in bytes.
func (m *Message) Size() int64 { return m.size }

// Bytes is the whole message when it is held in memory, else nil.
func (m *Message) Bytes() []byte {
	if m.f != nil {
		return nil
	}
	return m.mem
}

// File is the spool file holding the message (read it with ReadAt or a SectionReader),
// nil when the message is held in memory.
func (m *Message) File() *os.File { return m.f }

// Reader reads the message from its start; each call returns a new reader.
func (m *Message) Reader() io.Reader {
	if m.f != nil {
		return io.NewSectionReader(m.f, 0, m.size)
	}
	return bytes.NewReader(m.mem)
}

func (m *Message) close() {
	if m.f != nil {
		m.f.Close()
		m.f = nil
	}
	m.mem = nil
}

var errTooLarge = errors.New("message too large")

// spool collects the message. It keeps up to memMax bytes in memory, then moves to a
// temporary file in dir, created with O_TMPFILE so that it has no name and vanishes
// with the process whatever happens to it.
type spool struct {
	dir    string
	memMax int
	limit  int64 // 0: none
	msg    Message
	w      *bufio.Writer
	err    error // the first write error; the data is still read to its end
	over   bool  // the message passed limit: the rest is discarded
}

func (s *spool) write(b []byte) {
	if s.err != nil || s.over {
		return
	}
	if s.limit > 0 && s.msg.size+int64(len(b)) > s.limit {
		s.over = true
		return
	}
	s.msg.size += int64(len(b))
	if s.msg.f == nil && len(s.msg.mem)+len(b) <= s.memMax {
		s.msg.mem = append(s.msg.mem, b...)
		return
	}
	if s.msg.f == nil {
		f, err := tempFile(s.dir)
		if err != nil {
			s.err = err
			return
		}
		s.msg.f = f
		s.w = bufio.NewWriterSize(f, 64<<10)
		if _, err := s.w.Write(s.msg.mem); err != nil {
			s.err = err
			return
		}
		s.msg.mem = nil
	}
	if _, err := s.w.Write(b); err != nil {
		s.err = err
	}
}

// finish flushes the spool and returns the message, or the reason there is none.
func (s *spool) finish() (*Message, error) {
	if s.w != nil && s.err == nil {
		s.err = s.w.Flush()
	}
	s.w = nil
	if s.err == nil && s.over {
		s.err = errTooLarge
	}
	if s.err != nil {
		s.msg.close()
		return nil, s.err
	}
	m := s.msg
	s.msg = Message{}
	return &m, nil
}

func (s *spool) discard() {
	s.w = nil
	s.msg.close()
}

// tempFile creates an unnamed file in dir (O_TMPFILE), readable and writable by this
// process only; where the file system lacks O_TMPFILE, a named file removed at once.
func tempFile(dir string) (*os.File, error) {
	if dir == "" {
		dir = os.TempDir()
	}
	fd, err := unix.Open(dir, unix.O_TMPFILE|unix.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err == nil {
		return os.NewFile(uintptr(fd), dir+"/(spool)"), nil
	}
	if err != unix.EOPNOTSUPP && err != unix.EISDIR && err != unix.EINVAL {
		return nil, &os.PathError{Op: "open O_TMPFILE", Path: dir, Err: err}
	}
	f, err := os.CreateTemp(dir, "vdeliver-lmtp-*")
	if err != nil {
		return nil, err
	}
	if err := os.Remove(f.Name()); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}
