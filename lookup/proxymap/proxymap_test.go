package proxymap

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io/fs"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const hello = "protocol\x00proxymap_protocol\x00\x00"

// server listens on a UNIX socket in a temporary directory and runs serve for the first
// connection: a stand-in for proxymap(8) where a test needs a fault a real server does
// not make (tests against the real one are in the lookup package and internal/cli).
func server(t *testing.T, serve func(c net.Conn)) string {
	t.Helper()
	return servers(t, func(c net.Conn, _ int) bool { serve(c); return false })
}

// servers is server for several connections in turn, until serve returns false.
func servers(t *testing.T, serve func(c net.Conn, n int) bool) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "proxymap")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { l.Close(); <-done })
	go func() {
		defer close(done)
		for n := 0; ; n++ {
			c, err := l.Accept()
			if err != nil {
				return
			}
			more := serve(c, n)
			c.Close()
			if !more {
				return
			}
		}
	}()
	return path
}

// readRequest reads one request from the client as attribute pairs.
func readRequest(r *bufio.Reader) []string {
	var out []string
	for {
		s, err := r.ReadString(0)
		if err != nil {
			return out
		}
		s = strings.TrimSuffix(s, "\x00")
		if s == "" && len(out)%2 == 0 {
			return out
		}
		out = append(out, s)
	}
}

// TestDialLookup: the request forms up to Postfix 3.10, and the switch to 3.11's when the
// server calls the old open request invalid.
func TestDialLookup(t *testing.T) {
	for _, v311 := range []bool{false, true} {
		var got [][]string
		path := servers(t, func(c net.Conn, n int) bool {
			c.Write([]byte(hello))
			r := bufio.NewReader(c)
			got = append(got, readRequest(r))
			if v311 && n == 0 {
				c.Write([]byte("status\x003\x00flags\x000\x00\x00"))
				return true
			}
			c.Write([]byte("status\x000\x00flags\x0080\x00\x00"))
			got = append(got, readRequest(r))
			if v311 {
				c.Write([]byte("status\x000\x00flags\x0081\x00value\x00example.com/alice/\x00\x00"))
			} else {
				c.Write([]byte("status\x000\x00value\x00example.com/alice/\x00\x00"))
			}
			got = append(got, readRequest(r))
			if v311 {
				c.Write([]byte("status\x001\x00flags\x0081\x00value\x00\x00\x00"))
			} else {
				c.Write([]byte("status\x001\x00value\x00\x00\x00"))
			}
			readRequest(r)
			return false
		})
		ctx := context.Background()
		c, err := Dial(path)
		if err != nil {
			t.Fatal(err)
		}
		st, fl, err := c.Open(ctx, "sqlite:/x.cf", FlagLock|FlagParanoid)
		if err != nil || st != StatusOK || fl != 80 {
			t.Fatalf("v311=%v: Open = %d, %d, %v", v311, st, fl, err)
		}
		st, fl, v, err := c.Lookup(ctx, "sqlite:/x.cf", FlagLock, fl, "alice@example.com")
		wantFl := uint32(80)
		if v311 {
			wantFl = 81
		}
		if err != nil || st != StatusOK || fl != wantFl || v != "example.com/alice/" {
			t.Fatalf("v311=%v: Lookup = %d, %d, %q, %v", v311, st, fl, v, err)
		}
		st, _, _, err = c.Lookup(ctx, "sqlite:/x.cf", FlagLock, fl, "bob@example.com")
		if err != nil || st != StatusNoKey {
			t.Fatalf("v311=%v: Lookup miss = %d, %v", v311, st, err)
		}
		c.Close()
		want := []string{
			"request\x00open\x00table\x00sqlite:/x.cf\x00flags\x0014400",
			"request\x00lookup\x00table\x00sqlite:/x.cf\x00flags\x0064\x00key\x00alice@example.com",
			"request\x00lookup\x00table\x00sqlite:/x.cf\x00flags\x0064\x00key\x00bob@example.com",
		}
		if v311 {
			want = []string{
				"request\x00open\x00table\x00sqlite:/x.cf\x00flags\x0014400",
				"request\x00open\x00table\x00sqlite:/x.cf\x00instance_flags\x0014400",
				"request\x00lookup\x00table\x00sqlite:/x.cf\x00instance_flags\x0064\x00flags\x0080\x00key\x00alice@example.com",
				"request\x00lookup\x00table\x00sqlite:/x.cf\x00instance_flags\x0064\x00flags\x0081\x00key\x00bob@example.com",
			}
		}
		for i := range want {
			if i >= len(got) || strings.Join(got[i], "\x00") != want[i] {
				t.Errorf("v311=%v: request %d: got %q, want %q", v311, i, got, want[i])
			}
		}
	}
}

// Each broken server gives an error wrapping ErrProtocol or the context's error, and the
// connection stays unusable afterwards.
func TestBrokenServer(t *testing.T) {
	for _, tc := range []struct {
		name  string
		reply string // after the handshake and one request
		stall bool   // keep the connection open after the reply
		want  error
	}{
		{"closed mid-reply", "status\x000\x00val", false, ErrProtocol},
		{"closed before reply", "", false, ErrProtocol},
		{"stalls", "status\x000\x00", true, context.DeadlineExceeded},
		{"extra attribute", "status\x000\x00value\x00x\x00more\x00y\x00\x00", true, ErrProtocol},
		{"missing attribute", "status\x000\x00\x00", true, ErrProtocol},
		{"wrong order", "value\x00x\x00status\x000\x00\x00", true, ErrProtocol},
		{"bad number", "status\x00-1\x00value\x00x\x00\x00", true, ErrProtocol},
		{"number too large", "status\x004294967296\x00value\x00x\x00\x00", true, ErrProtocol},
		{"endless name", strings.Repeat("s", 10000), true, ErrProtocol},
		{"value too long", "status\x000\x00value\x00" + strings.Repeat("v", MaxValue+10000), true, ErrProtocol},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hold := make(chan struct{})
			path := server(t, func(c net.Conn) {
				c.Write([]byte(hello))
				readRequest(bufio.NewReader(c))
				c.Write([]byte(tc.reply))
				if tc.stall {
					<-hold
				}
			})
			defer close(hold)
			c, err := Dial(path)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			wait := 300 * time.Millisecond
			if !tc.stall || tc.want == ErrProtocol {
				// Time enough to stream a megabyte on a loaded machine with -race: the
				// error must come from the size limit, not from the deadline.
				wait = 5 * time.Second
			}
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			_, _, _, err = c.Lookup(ctx, "hash:/x", 0, 0, "k")
			if !errors.Is(err, tc.want) {
				t.Fatalf("Lookup error = %v, want %v", err, tc.want)
			}
			if _, _, _, err2 := c.Lookup(context.Background(), "hash:/x", 0, 0, "k"); err2 == nil {
				t.Fatal("a second request on a failed connection succeeded")
			}
		})
	}
}

func TestDialFailures(t *testing.T) {
	ctx := context.Background()
	if _, err := Dial(filepath.Join(t.TempDir(), "none")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing socket: %v, want ErrNotExist", err)
	}
	// The announcement is read with the first reply.
	path := server(t, func(c net.Conn) {
		c.Write([]byte("protocol\x00other_protocol\x00\x00"))
		readRequest(bufio.NewReader(c))
		c.Write([]byte("status\x000\x00flags\x000\x00\x00"))
	})
	c, err := Dial(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Open(ctx, "hash:/x", 0); !errors.Is(err, ErrProtocol) {
		t.Errorf("other protocol: %v, want ErrProtocol", err)
	}
	c.Close()
	hold := make(chan struct{})
	defer close(hold)
	path = server(t, func(c net.Conn) { <-hold })
	c, err = Dial(path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if _, _, err := c.Open(tctx, "hash:/x", 0); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("silent server: %v, want DeadlineExceeded", err)
	}
}

func TestRequestNUL(t *testing.T) {
	path := server(t, func(c net.Conn) { c.Write([]byte(hello)); readRequest(bufio.NewReader(c)) })
	c, err := Dial(path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, _, _, err := c.Lookup(context.Background(), "hash:/x", 0, 0, "a\x00b"); err == nil {
		t.Fatal("a key with a NUL was sent")
	}
}

// FuzzReadAttrs: any bytes give either an error or exactly three values, each within
// MaxValue, whose encoding is the input's prefix that was consumed.
func FuzzReadAttrs(f *testing.F) {
	f.Add([]byte("status\x000\x00flags\x0080\x00value\x00example.com/alice/\x00\x00"))
	f.Add([]byte("status\x001\x00flags\x0081\x00value\x00\x00\x00"))
	f.Add([]byte("status\x000\x00flags\x000\x00value\x00x\x00more\x00y\x00\x00"))
	f.Add([]byte("status\x000\x00flags"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bufio.NewReaderSize(bytes.NewReader(b), 16)
		v, err := readAttrs(r, "status", "flags", "value")
		if err != nil {
			if v != nil {
				t.Fatalf("error %v with values %q", err, v)
			}
			return
		}
		enc := "status\x00" + v[0] + "\x00flags\x00" + v[1] + "\x00value\x00" + v[2] + "\x00\x00"
		if !bytes.HasPrefix(b, []byte(enc)) {
			t.Fatalf("values %q are not what the input %q says", v, b)
		}
		if r.Buffered() != 0 && len(b)-len(enc) < r.Buffered() {
			t.Fatalf("read past the reply")
		}
		if _, _, err := statusFlags(v); err == nil {
			for _, s := range v[:2] {
				if s == "" || strings.Trim(s, "0123456789") != "" {
					t.Fatalf("number %q accepted", s)
				}
			}
		}
	})
}
