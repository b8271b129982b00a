package cli

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"testing/iotest"
	"time"

	"vdeliver/internal/maillog"
	"vdeliver/internal/rawfile"
)

// The syslog connection is made with plain system calls instead of the net
// package (whose start-up every delivery paid). These tests pin what net.Dial gave:
// a stream socket is used when that is what syslogd listens on, and a syslogd that does
// not read delays a delivery by the one-second send timeout, never longer.

// A stream syslog socket (rsyslog's imuxsock can be one) gets each record with a
// trailing newline; the datagram attempt's EPROTOTYPE leads there.
func TestSyslogStreamSocket(t *testing.T) {
	t.Parallel()
	dir := logSetup(t, "")
	p := filepath.Join(dir, "log")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: p, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	got := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- "accept: " + err.Error()
			return
		}
		defer c.Close()
		var b strings.Builder
		buf := make([]byte, 4096)
		for {
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			n, err := c.Read(buf)
			b.Write(buf[:n])
			if err != nil {
				got <- b.String()
				return
			}
		}
	}()
	code, out, pid := runLogged(t, p, logMsg, "-c", dir, "-f", "a@example.org", "-i", "S1", "--", "alice@example.com")
	if code != 0 || out != "2.0.0 delivered to maildir\n" {
		t.Fatalf("exit %d, stdout %q", code, out)
	}
	var stream string
	select {
	case stream = <-got:
	case <-time.After(15 * time.Second):
		t.Fatal("no connection on the stream syslog socket")
	}
	want := regexp.MustCompile(`\A` + syslogHeader(pid)[1:] + regexp.QuoteMeta("S1: to=<alice@example.com>, relay=vdeliver, ") + anyDelay +
		regexp.QuoteMeta(", size=") + `[0-9]+, dsn=2\.0\.0, status=sent \(delivered to maildir [^\n]*\)\n\z`)
	if !want.MatchString(stream) {
		t.Fatalf("stream syslog got\n%q\nwant match for\n%s", stream, want)
	}
}

// A syslog daemon that has stopped reading: its datagram queue is full. The delivery
// still happens and answers after about the one-second send timeout per log line.
func TestSyslogStuckDaemon(t *testing.T) {
	t.Parallel()
	dir := logSetup(t, "")
	sd := newSyslogd(t, dir)
	// Fill the receive queue from a non-blocking sender until the kernel refuses more.
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_DGRAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	if err := syscall.Connect(fd, &syscall.SockaddrUnix{Name: sd.path}); err != nil {
		t.Fatal(err)
	}
	full := false
	for i := 0; i < 100000; i++ {
		if err := syscall.Sendto(fd, []byte("filler"), 0, nil); err == syscall.EAGAIN {
			full = true
			break
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if !full {
		t.Fatal("the datagram queue never filled")
	}
	start := time.Now()
	code, out, _ := runLogged(t, sd.path, logMsg, "-c", dir, "-f", "a@example.org", "-i", "S2", "--", "alice@example.com")
	took := time.Since(start)
	if code != 0 || out != "2.0.0 delivered to maildir\n" {
		t.Fatalf("exit %d, stdout %q", code, out)
	}
	if took < maillog.SyslogTimeout*9/10 || took > 4*maillog.SyslogTimeout {
		t.Fatalf("delivery with a stuck syslogd took %v, want about the %v send timeout", took, maillog.SyslogTimeout)
	}
}

// A stream syslogd that no longer accepts: its listen backlog is full. Connecting must not
// wait for it (a blocking connect would wait for ever, until pipe(8)'s time limit): the
// delivery happens, unlogged, and answers.
func TestSyslogStreamBacklogFull(t *testing.T) {
	t.Parallel()
	dir := logSetup(t, "")
	p := filepath.Join(dir, "stream.sock")
	l, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(l)
	if err := syscall.Bind(l, &syscall.SockaddrUnix{Name: p}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(l, 0); err != nil {
		t.Fatal(err)
	}
	os.Chmod(p, 0o777) // the delivery may run as VUID
	full := false
	for i := 0; i < 16 && !full; i++ {
		c, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer syscall.Close(c)
		full = syscall.Connect(c, &syscall.SockaddrUnix{Name: p}) == syscall.EAGAIN
	}
	if !full {
		t.Fatal("the listen backlog never filled")
	}
	bin, err := exec.LookPath("vdeliver")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-c", dir, "-f", "a@example.org", "-i", "S3", "--", "alice@example.com")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "TZ=UTC", "VDELIVER_SYSLOG_SOCKET=" + p}
	cmd.Stdin = strings.NewReader(logMsg)
	out, err := cmd.Output()
	if ctx.Err() != nil {
		t.Fatal("the delivery hangs on a stream syslog socket whose backlog is full")
	}
	if err != nil || string(out) != "2.0.0 delivered to maildir\n" {
		t.Fatalf("delivery: %v, stdout %q", err, out)
	}
}

// readMessage replaces io.ReadAll for the message (fewer buffers and reads); it must
// return the same bytes from a pipe, a regular file (at any offset) and any reader.
func TestReadMessage(t *testing.T) {
	t.Parallel()
	for _, size := range []int{0, 1, 4000, firstRead - 1, firstRead, firstRead + 1, 3*firstRead + 5, 1<<20 + 3} {
		data := make([]byte, size)
		for i := range data {
			data[i] = byte(i*7 + i>>9)
		}
		// A pipe, as pipe(8) gives the message.
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			w.Write(data)
			w.Close()
		}()
		got, err := readMessage(r)
		r.Close()
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("pipe, %d bytes: got %d bytes, equal %v, err %v", size, len(got), bytes.Equal(got, data), err)
		}
		// A regular file, read from offset 0 and from the middle.
		p := filepath.Join(t.TempDir(), "msg")
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		for _, off := range []int64{0, int64(size / 2)} {
			f, err := os.Open(p)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.Seek(off, io.SeekStart); err != nil {
				t.Fatal(err)
			}
			got, err := readMessage(f)
			f.Close()
			if err != nil || !bytes.Equal(got, data[off:]) {
				t.Fatalf("file, %d bytes from %d: got %d bytes, err %v", size, off, len(got), err)
			}
		}
		// A reader that hands out odd pieces, sometimes none.
		got, err = readMessage(&trickle{data: data})
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("trickle, %d bytes: got %d bytes, err %v", size, len(got), err)
		}
	}
	// A regular file that grew after it was measured: the size is only a hint.
	data := bytes.Repeat([]byte("0123456789"), firstRead/3)
	for _, hint := range []int{1, 5, len(data) - 1, len(data), len(data) + 1} {
		got, err := rawfile.ReadAll(bytes.NewReader(data), hint, 1<<30)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("size hint %d for %d bytes: got %d bytes, err %v", hint, len(data), len(got), err)
		}
	}
	// A read error after some data: the error comes back.
	boom := errors.New("boom")
	if _, err := readMessage(io.MultiReader(strings.NewReader("abc"), iotest.ErrReader(boom))); err != boom {
		t.Fatalf("read error: got %v, want %v", err, boom)
	}
}

// trickle returns its data 1 to 4097 bytes at a time, with a 0-byte read now and then.
type trickle struct {
	data []byte
	n    int
}

func (t *trickle) Read(p []byte) (int, error) {
	t.n++
	if len(t.data) == 0 {
		return 0, io.EOF
	}
	if t.n%5 == 0 {
		return 0, nil
	}
	k := min(len(p), len(t.data), 1+t.n*131%4097)
	copy(p, t.data[:k])
	t.data = t.data[k:]
	return k, nil
}

// ReadAll must end for any first size it is given, zero included.
func TestReadAllZero(t *testing.T) {
	b, err := rawfile.ReadAll(strings.NewReader("abc"), 0, 3)
	if err != nil || string(b) != "abc" {
		t.Fatalf("rawfile.ReadAll(abc, 0) = %q, %v", b, err)
	}
}
