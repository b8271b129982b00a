// Command lmtpfloor is the floor under any LMTP delivery agent behind Postfix's spawn(8):
// it speaks just enough LMTP (RFC 2033) on standard input and output for Postfix's lmtp
// client, accepts every recipient, and writes each message once into one Maildir, durably
// (the file in tmp/ is fsynced, renamed into new/, and new/ is fsynced). It looks nothing
// up, checks nothing and adds no header, so a real agent's throughput through Postfix is
// measured as a fraction of this one's.
//
//	lmtpfloor-lmtp unix - n n - - spawn user=vmail argv=/path/lmtpfloor /maildir/
//
// The Maildir (with tmp/ and new/) must exist and be writable by the user spawn(8) runs it
// as. A failed write answers 451 for each recipient, so Postfix keeps the message.
package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: lmtpfloor MAILDIR")
		os.Exit(64)
	}
	dir := os.Args[1]
	newDir, err := os.Open(filepath.Join(dir, "new"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "lmtpfloor:", err)
		os.Exit(75)
	}
	s := &session{
		r:      bufio.NewReaderSize(os.Stdin, 64<<10),
		w:      bufio.NewWriterSize(os.Stdout, 4<<10),
		dir:    dir,
		newDir: newDir,
		prefix: strconv.FormatInt(time.Now().UnixNano(), 10) + "." + strconv.Itoa(os.Getpid()) + ".",
	}
	s.serve()
}

type session struct {
	r      *bufio.Reader
	w      *bufio.Writer
	dir    string
	newDir *os.File
	prefix string
	seq    int
	rcpts  int
	msg    []byte
}

func (s *session) reply(line string) {
	s.w.WriteString(line)
	s.w.WriteString("\r\n")
}

// serve answers commands until QUIT or end of input. Replies are flushed only when no
// pipelined command is waiting, as Postfix's own servers do.
func (s *session) serve() {
	s.reply("220 lmtpfloor LMTP")
	for {
		if s.r.Buffered() == 0 {
			if s.w.Flush() != nil {
				return
			}
		}
		line, err := s.r.ReadSlice('\n')
		if err != nil {
			return
		}
		verb := bytes.ToUpper(bytes.TrimRight(line, "\r\n"))
		if i := bytes.IndexAny(verb, " :"); i >= 0 {
			verb = verb[:i]
		}
		switch string(verb) {
		case "LHLO":
			s.reply("250-lmtpfloor\r\n250-PIPELINING\r\n250-ENHANCEDSTATUSCODES\r\n250 8BITMIME")
		case "MAIL":
			s.rcpts = 0
			s.reply("250 2.1.0 Ok")
		case "RCPT":
			s.rcpts++
			s.reply("250 2.1.5 Ok")
		case "DATA":
			if s.rcpts == 0 {
				s.reply("503 5.5.1 Error: need RCPT command")
				continue
			}
			s.reply("354 End data with <CR><LF>.<CR><LF>")
			// The client waits for the replies up to this one before
			// it sends the message.
			if s.w.Flush() != nil {
				return
			}
			if err := s.readData(); err != nil {
				return
			}
			status := "250 2.0.0 Ok"
			if err := s.store(); err != nil {
				status = "451 4.3.0 " + err.Error()
			}
			for range s.rcpts {
				s.reply(status)
			}
			s.rcpts = 0
		case "RSET":
			s.rcpts = 0
			s.reply("250 2.0.0 Ok")
		case "NOOP":
			s.reply("250 2.0.0 Ok")
		case "QUIT":
			s.reply("221 2.0.0 Bye")
			s.w.Flush()
			return
		default:
			s.reply("500 5.5.2 Error: command not recognized")
		}
	}
}

// readData reads the message up to the lone dot, undoes the dot-stuffing and ends lines
// with LF, as a Maildir file has them.
func (s *session) readData() error {
	s.msg = s.msg[:0]
	mid := false // the last read ended inside a line longer than the buffer
	for {
		line, err := s.r.ReadSlice('\n')
		full := err == bufio.ErrBufferFull
		if err != nil && !full {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
		if !mid {
			if bytes.Equal(line, []byte(".\r\n")) {
				return nil
			}
			line = bytes.TrimPrefix(line, []byte("."))
		}
		if n := len(line); !full && n >= 2 && line[n-2] == '\r' {
			line = append(line[:n-2], '\n')
		}
		s.msg = append(s.msg, line...)
		mid = full
	}
}

// store writes the message as tmp/NAME, syncs it, renames it to new/NAME and syncs new/.
func (s *session) store() error {
	s.seq++
	name := s.prefix + strconv.Itoa(s.seq) + ".lmtpfloor"
	tmp := filepath.Join(s.dir, "tmp", name)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(s.msg)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(s.dir, "new", name))
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return s.newDir.Sync()
}
