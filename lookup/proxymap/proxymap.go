// Package proxymap is a client of Postfix's proxymap(8) read-only lookup service.
//
// # Protocol
//
// proxymap(8) listens on the UNIX stream socket $queue_directory/private/proxymap and
// speaks Postfix's attribute protocol in its NUL-separated form (attr_print0 and
// attr_scan0): every attribute is its name, NUL, its value, NUL; a list of attributes
// ends with an empty name (one more NUL). Numbers are unsigned decimal text.
//
//	server, once per connection:  protocol=proxymap_protocol
//
// Postfix 3.11 changed the requests. Up to 3.10:
//
//	open request:    request=open table=TYPE:NAME flags=N
//	open reply:      status=N flags=N
//	lookup request:  request=lookup table=TYPE:NAME flags=N key=KEY
//	lookup reply:    status=N value=VALUE
//
// where flags are the client's dictionary flags, and the server keeps the table's own.
// From 3.11 on:
//
//	open request:    request=open table=TYPE:NAME instance_flags=N
//	open reply:      status=N flags=N
//	lookup request:  request=lookup table=TYPE:NAME instance_flags=N flags=N key=KEY
//	lookup reply:    status=N flags=N value=VALUE
//
// where instance_flags are the client's flags (the server keeps one instance per name
// and flags) and flags are the table's flags as the server last reported them, which
// carry what the table's own code needs (fixed or pattern keys, whether keys end in a
// NUL). The server announces no version: Open sends the old form first and, when the
// server calls it invalid (status 3, because it reads attributes strictly and so stops
// in the middle of the request), connects again and sends the new one; the form that
// worked is kept for the connection. The table is named without "proxy:". The open
// reply's flags tell fixed-key from pattern tables in both versions.
//
// Replies are read strictly, as Postfix's client does (ATTR_FLAG_STRICT): exactly the
// expected attributes, in order, then the end of the list.
//
// Status codes: 0 found (for open: the table is served), 1 not found, 2 try again later,
// 3 bad request, 4 the table is not approved (not listed in the server's
// proxy_read_maps), 5 configuration error of the table.
//
// # Failures
//
// Every wait is bounded by the context's deadline (DefaultTimeout without one), every
// read by MaxValue: a server that stalls, sends a name or value without end, or closes
// in the middle of a reply gives an error, never a hang or an unbounded allocation. After
// an error the connection is unusable and every later request fails with that error:
// the client never reconnects, because a process that has given up its privileges could
// not.
package proxymap

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Status codes of the proxymap protocol (Postfix dict_proxy.h PROXY_STAT_*).
const (
	StatusOK     = 0 // found; for open: the table is served
	StatusNoKey  = 1 // not found
	StatusRetry  = 2 // temporary error: try again later
	StatusBad    = 3 // invalid request
	StatusDeny   = 4 // table not approved for proxy access
	StatusConfig = 5 // configuration error of the table
)

// Dictionary flags (Postfix dict.h DICT_FLAG_*) that a client sends or reads.
const (
	FlagFixed       = 1 << 4  // fixed-key table
	FlagPattern     = 1 << 5  // keys are patterns
	FlagLock        = 1 << 6  // lock the table around each access
	FlagNoRegsub    = 1 << 11 // no $n substitution in regexp/pcre results
	FlagNoProxy     = 1 << 12 // no proxy: inside
	FlagNoUnauth    = 1 << 13 // no table types with unauthenticated data
	FlagUTF8Request = 1 << 19 // UTF-8 checks when smtputf8_enable = yes
	// FlagParanoid is DICT_FLAG_PARANOID, the flags virtual(8) opens its tables with
	// for mailbox paths and ids.
	FlagParanoid = FlagNoRegsub | FlagNoProxy | FlagNoUnauth
)

const (
	// MaxValue bounds one attribute value of a reply: a lookup result larger than this
	// is an error. Postfix's SQL tables join every matching row, so a value can be long,
	// but never this long for a mailbox path, an id or a domain.
	MaxValue = 1 << 20
	// maxName bounds an attribute name; the longest the protocol uses is 14 bytes.
	maxName = 64
	// DefaultTimeout bounds a request whose context has no deadline.
	DefaultTimeout = 60 * time.Second
)

// ErrProtocol reports a reply that breaks the protocol: an unexpected or missing
// attribute, a malformed number, an over-long name or value, the end of the stream
// inside a reply.
var ErrProtocol = errors.New("proxymap protocol error")

// Conn is one connection to proxymap(8), used for every request of a process, one
// request at a time.
type Conn struct {
	mu      sync.Mutex
	f       *os.File
	r       *bufio.Reader
	path    string
	err     error // sticky: the connection failed
	greeted bool  // the server's announcement has been read
	v311    bool  // the server speaks Postfix 3.11's request form
	known   bool  // an open succeeded: the form is settled
}

// Dial connects to the proxymap socket at path, without waiting: a UNIX socket connects
// at once or fails (a full listen queue too). The connection is made now, with the
// process's current privileges, and kept: later requests need no access to the socket.
// The server's protocol announcement is checked with the first reply: a server that
// announces another protocol, or nothing, fails the first request (ErrProtocol, or the
// context's deadline).
//
// It returns the connect error as is (wrapping fs.ErrNotExist, fs.ErrPermission,
// syscall.ECONNREFUSED...): a socket the caller cannot use, as opposed to a server that
// misbehaves.
func Dial(path string) (*Conn, error) {
	// A plain descriptor, not the net package: its initialisation costs every delivery
	// process start-up time, and a non-blocking descriptor under os.File already gets
	// deadlines from the runtime poller.
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC|syscall.SOCK_NONBLOCK, 0)
	if err != nil {
		return nil, &os.PathError{Op: "socket", Path: path, Err: err}
	}
	for {
		err = syscall.Connect(fd, &syscall.SockaddrUnix{Name: path})
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		// EAGAIN: the listen queue is full; like any other connect failure, the caller
		// decides (lookup falls back to postmap) rather than wait.
		syscall.Close(fd)
		return nil, &os.PathError{Op: "connect", Path: path, Err: err}
	}
	c := &Conn{f: os.NewFile(uintptr(fd), path), path: path}
	c.r = bufio.NewReaderSize(c.f, 4096)
	return c, nil
}

// greet reads the server's protocol announcement, which it sends as it accepts the
// connection. The first request is written without waiting for it: one round trip less
// per process, and the server reads requests only after announcing.
func (c *Conn) greet() error {
	v, err := readAttrs(c.r, "protocol")
	if err == nil && v[0] != "proxymap_protocol" {
		err = fmt.Errorf("%w: server announces protocol %q, not proxymap_protocol", ErrProtocol, v[0])
	}
	c.greeted = err == nil
	return err
}

// Path is the socket the connection was made to.
func (c *Conn) Path() string { return c.path }

// Open asks the server to open table (TYPE:NAME, without proxy:) with the dictionary
// flags inst, and returns the reply's status and the table's flags, to be sent with each
// lookup. A status other than StatusOK is not an error here: the caller decides. Open
// may connect again (see the package documentation), with the process's current
// privileges: call it before giving them up.
func (c *Conn) Open(ctx context.Context, table string, inst uint32) (status int, flags uint32, err error) {
	for {
		c.mu.Lock()
		v311, known := c.v311, c.known
		c.mu.Unlock()
		attr := "flags"
		if v311 {
			attr = "instance_flags"
		}
		req, err := request("open", "table", table, attr, u32(inst))
		if err != nil {
			return 0, 0, err
		}
		err = c.do(ctx, req, func() error {
			v, err := readAttrs(c.r, "status", "flags")
			if err == nil {
				status, flags, err = statusFlags(v)
			}
			return err
		})
		if err != nil || status != StatusBad || known || v311 {
			if err == nil && status == StatusOK {
				c.mu.Lock()
				c.known = true
				c.mu.Unlock()
			}
			return status, flags, err
		}
		// An older request form than the server speaks: the rest of the request is
		// still unread on its side, so only a new connection is in step.
		if err := c.redial(); err != nil {
			return 0, 0, err
		}
	}
}

// Lookup asks for key in table, opened with inst; flags are the table's flags as Open or
// the last Lookup returned them. It returns the reply's status, the table's flags as the
// server now reports them, and the value (meaningful for StatusOK only).
func (c *Conn) Lookup(ctx context.Context, table string, inst, flags uint32, key string) (status int, newFlags uint32, value string, err error) {
	c.mu.Lock()
	v311 := c.v311
	c.mu.Unlock()
	var req []byte
	if v311 {
		req, err = request("lookup", "table", table, "instance_flags", u32(inst), "flags", u32(flags), "key", key)
	} else {
		req, err = request("lookup", "table", table, "flags", u32(inst), "key", key)
	}
	if err != nil {
		return 0, 0, "", err
	}
	newFlags = flags
	err = c.do(ctx, req, func() error {
		if !v311 {
			v, err := readAttrs(c.r, "status", "value")
			if err == nil {
				var st uint32
				st, err = number("status", v[0])
				status, value = int(st), v[1]
			}
			return err
		}
		v, err := readAttrs(c.r, "status", "flags", "value")
		if err == nil {
			status, newFlags, err = statusFlags(v)
			value = v[2]
		}
		return err
	})
	return status, newFlags, value, err
}

// redial replaces the connection by a new one that speaks the 3.11 request form.
func (c *Conn) redial() error {
	n, err := Dial(c.path)
	if err != nil {
		c.mu.Lock()
		c.err = err
		c.mu.Unlock()
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.f != nil {
		c.f.Close()
	}
	c.f, c.r, c.v311, c.greeted = n.f, n.r, true, false
	return nil
}

// Close closes the connection.
func (c *Conn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil {
		c.err = errors.New("connection closed")
	}
	if c.f == nil {
		return nil
	}
	err := c.f.Close()
	c.f = nil
	return err
}

// do writes req and runs read for the reply, both before the deadline; a cancelled
// context ends the wait at once. Any failure makes the connection unusable.
func (c *Conn) do(ctx context.Context, req []byte, read func() error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return fmt.Errorf("proxymap %s: %w", c.path, c.err)
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(DefaultTimeout)
	}
	f := c.f // the callback below may run after Close has cleared c.f
	err := f.SetDeadline(deadline)
	if err == nil {
		stop := context.AfterFunc(ctx, func() { f.SetDeadline(time.Unix(1, 0)) })
		if len(req) > 0 {
			_, err = c.f.Write(req)
		}
		if err == nil && !c.greeted {
			err = c.greet()
		}
		if err == nil {
			err = read()
		}
		stop()
	}
	if err != nil {
		if cerr := ctx.Err(); cerr != nil && !errors.Is(err, ErrProtocol) {
			err = fmt.Errorf("%w (%v)", cerr, err)
		} else if errors.Is(err, os.ErrDeadlineExceeded) {
			// Our deadline may fire a moment before the context says so.
			err = fmt.Errorf("%w (%v)", context.DeadlineExceeded, err)
		} else if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			err = fmt.Errorf("%w: connection closed by the server in a reply", ErrProtocol)
		}
		c.err = err
		return fmt.Errorf("proxymap %s: %w", c.path, err)
	}
	return nil
}

// request encodes one request: request=name, then the name/value pairs, then the end of
// the list. A NUL inside a value cannot be sent and is an error.
func request(name string, kv ...string) ([]byte, error) {
	var b []byte
	b = append(b, "request\x00"...)
	b = append(b, name...)
	b = append(b, 0)
	for i, s := range kv {
		if strings.IndexByte(s, 0) >= 0 {
			return nil, fmt.Errorf("proxymap: %s %q contains a NUL byte", kv[i-i%2], s)
		}
		b = append(b, s...)
		b = append(b, 0)
	}
	return append(b, 0), nil
}

func u32(n uint32) string { return strconv.FormatUint(uint64(n), 10) }

// statusFlags reads the status and flags values of a reply.
func statusFlags(v []string) (int, uint32, error) {
	st, err := number("status", v[0])
	if err != nil {
		return 0, 0, err
	}
	fl, err := number("flags", v[1])
	return int(st), fl, err
}

// number reads an unsigned decimal that fits 32 bits, as attr_scan0 does, but strictly:
// digits only.
func number(name, s string) (uint32, error) {
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || s == "" || s[0] < '0' || s[0] > '9' {
		return 0, fmt.Errorf("%w: %s %q is not a number", ErrProtocol, name, s)
	}
	return uint32(n), nil
}

// readAttrs reads one attribute list that holds exactly the attributes names, in that
// order, and returns their values.
func readAttrs(r *bufio.Reader, names ...string) ([]string, error) {
	vals := make([]string, len(names))
	for i, want := range names {
		name, err := readString(r, maxName)
		if err != nil {
			return nil, err
		}
		if name == "" {
			return nil, fmt.Errorf("%w: missing attribute %s", ErrProtocol, want)
		}
		if name != want {
			return nil, fmt.Errorf("%w: unexpected attribute %.64q (expecting %s)", ErrProtocol, name, want)
		}
		if vals[i], err = readString(r, MaxValue); err != nil {
			return nil, err
		}
	}
	end, err := readString(r, maxName)
	if err != nil {
		return nil, err
	}
	if end != "" {
		return nil, fmt.Errorf("%w: unexpected attribute %.64q (expecting the end of the reply)", ErrProtocol, end)
	}
	return vals, nil
}

// readString reads up to the next NUL, which it consumes, and fails when more than limit
// bytes come before it. The end of the stream is io.ErrUnexpectedEOF.
func readString(r *bufio.Reader, limit int) (string, error) {
	var long []byte
	for {
		chunk, err := r.ReadSlice(0)
		// Without its NUL, chunk is all text: limit bytes of it are already too many.
		if n := len(long) + len(chunk); n > limit+1 || err != nil && n > limit {
			return "", fmt.Errorf("%w: attribute longer than %d bytes", ErrProtocol, limit)
		}
		switch err {
		case nil:
			if long == nil {
				return string(chunk[:len(chunk)-1]), nil
			}
			long = append(long, chunk[:len(chunk)-1]...)
			return string(long), nil
		case bufio.ErrBufferFull:
			long = append(long, chunk...)
		case io.EOF:
			return "", io.ErrUnexpectedEOF
		default:
			return "", err
		}
	}
}
