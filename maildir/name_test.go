package maildir

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"testing"
)

// parsedName holds the fields of either name; Pid is -1 for a final name and
// Dev, Ino, Usec are zero for a tmp name.
type parsedName struct {
	Sec      int64
	Pid      int
	Dev, Ino uint64
	Usec     int64
	Host     string
}

// parseName is the inverse of tmpName and newName: the maildir spec puts no
// '.' in the leading fields, so the host is everything after the second
// dot.
func parseName(name string) (parsedName, error) {
	var p parsedName
	secStr, rest, ok := strings.Cut(name, ".")
	if !ok {
		return p, fmt.Errorf("no '.' in %q", name)
	}
	mid, host, ok := strings.Cut(rest, ".")
	if !ok {
		return p, fmt.Errorf("no second '.' in %q", name)
	}
	var err error
	if p.Sec, err = strconv.ParseInt(secStr, 10, 64); err != nil {
		return p, err
	}
	p.Host = host
	switch {
	case strings.HasPrefix(mid, "P"):
		p.Pid, err = strconv.Atoi(mid[1:])
		return p, err
	case strings.HasPrefix(mid, "V"):
		p.Pid = -1
		dev, rest, ok1 := strings.Cut(mid[1:], "I")
		ino, usec, ok2 := strings.Cut(rest, "M")
		if !ok1 || !ok2 {
			return p, fmt.Errorf("bad unique part %q", mid)
		}
		for _, h := range []string{dev, ino} {
			if h != strconv.FormatUint(mustHex(h), 16) {
				return p, fmt.Errorf("hex %q not lower-case unpadded", h)
			}
		}
		p.Dev, p.Ino = mustHex(dev), mustHex(ino)
		p.Usec, err = strconv.ParseInt(usec, 10, 64)
		return p, err
	}
	return p, fmt.Errorf("bad unique part %q", mid)
}

func mustHex(s string) uint64 {
	v, err := strconv.ParseUint(s, 16, 64)
	if err != nil {
		return 1<<64 - 1
	}
	return v
}

// FuzzName: for any host and field values, both names are one path element
// without an info part (no '/' and no ':'), parse back into the same fields,
// and the escaping changes nothing but '/' and ':'.
func FuzzName(f *testing.F) {
	f.Add(int64(1700000000), 4242, uint64(0x803), uint64(0x1a2b), int64(123456), "mx.example")
	f.Add(int64(0), 1, uint64(0), uint64(0), int64(0), "")
	f.Add(int64(-1), 0, uint64(1<<64-1), uint64(1<<63), int64(999999), "a/b:c")
	f.Add(int64(1<<62), 1<<22, uint64(16), uint64(255), int64(7), `\057:/\072`)
	f.Add(int64(5), 7, uint64(1), uint64(2), int64(3), "host.with.dots:2,S")
	f.Fuzz(func(t *testing.T, sec int64, pid int, dev, ino uint64, usec int64, host string) {
		if pid < 0 || usec < 0 || usec >= 1e6 {
			t.Skip("not a pid or a microsecond count")
		}
		h := escapeHost(host)
		if strings.ContainsAny(h, "/:") {
			t.Fatalf("escapeHost(%q) = %q keeps '/' or ':'", host, h)
		}
		if want := len(host) + 3*(strings.Count(host, "/")+strings.Count(host, ":")); len(h) != want {
			t.Fatalf("escapeHost(%q) = %q: length %d, want %d", host, h, len(h), want)
		}
		unescaped := strings.NewReplacer(`\057`, "/", `\072`, ":").Replace(h)
		if !strings.Contains(host, `\057`) && !strings.Contains(host, `\072`) && unescaped != host {
			t.Fatalf("escapeHost(%q) = %q does not undo to the host", host, h)
		}

		tn := tmpName(sec, pid, 1, h)
		nn := newName(sec, dev, ino, usec, h)
		for _, n := range []string{tn, nn} {
			if strings.ContainsAny(n, "/:") {
				t.Fatalf("name %q contains '/' or ':'", n)
			}
		}
		if got, err := parseName(tn); err != nil || got != (parsedName{Sec: sec, Pid: pid, Host: h}) {
			t.Fatalf("parseName(%q) = %+v, %v", tn, got, err)
		}
		want := parsedName{Sec: sec, Pid: -1, Dev: dev, Ino: ino, Usec: usec, Host: h}
		if got, err := parseName(nn); err != nil || got != want {
			t.Fatalf("parseName(%q) = %+v, %v; want %+v", nn, got, err, want)
		}
	})
}

// BenchmarkDeliver is one 4 KiB message into an existing maildir, fsyncs
// included: the per-message cost on this disk and the allocations.
func BenchmarkDeliver(b *testing.B) {
	root, _ := newRoot(b)
	msg := [][]byte{[]byte("Return-Path: <a@example.org>\nDelivered-To: b@example.com\n"),
		bytes.Repeat([]byte("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\n"), 64)}
	o := Options{Hostname: host}
	if _, err := Deliver(root, "d/u/", msg, o); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(msg[0]) + len(msg[1])))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Deliver(root, "d/u/", msg, o); err != nil {
			b.Fatal(err)
		}
	}
}

// dovecotSize reads a size field the way Dovecot's maildir_filename_get_size does: the
// first ",<typ>=" of the name, digits up to ':', ',' or the end.
func dovecotSize(name string, typ byte) (int64, bool) {
	i := strings.Index(name, ","+string(typ)+"=")
	if i < 0 {
		return 0, false
	}
	rest := name[i+3:]
	j := 0
	for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
		j++
	}
	if j < len(rest) && rest[j] != ':' && rest[j] != ',' {
		return 0, false
	}
	n, err := strconv.ParseInt(rest[:j], 10, 64)
	return n, err == nil
}

// FuzzSizeFields: for any message split anywhere into two parts and any host, the name
// a size-carrying delivery would get gives a reader that parses as Dovecot does the
// number of bytes written and that number with every bare LF counted as CRLF, whatever
// the host holds.
func FuzzSizeFields(f *testing.F) {
	f.Add([]byte("Subject: x\n\nbody\n"), 3, "mx.example")
	f.Add([]byte("a\r\nb\rc\n\n"), 2, "h,S=1,W=2")
	f.Add([]byte(""), 0, ",")
	f.Add([]byte("\r"), 1, `a\054b`)
	f.Fuzz(func(t *testing.T, msg []byte, cut int, hostName string) {
		if cut < 0 || cut > len(msg) {
			cut = len(msg) / 2
		}
		parts := [][]byte{msg[:cut], msg[cut:]}
		h := strings.ReplaceAll(escapeHost(hostName), ",", `\054`)
		name := newName(1, 2, 3, 4, h) + sizeFields(parts)
		if strings.ContainsAny(name, "/:") {
			t.Fatalf("name %q has '/' or ':'", name)
		}
		// Every LF without a CR before it gains one.
		wantW := int64(len(msg) + bytes.Count(msg, []byte("\n")) - bytes.Count(msg, []byte("\r\n")))
		if s, ok := dovecotSize(name, 'S'); !ok || s != int64(len(msg)) {
			t.Fatalf("%q: S = %d, %v; want %d", name, s, ok, len(msg))
		}
		if w, ok := dovecotSize(name, 'W'); !ok || w != wantW {
			t.Fatalf("%q: W = %d, %v; want %d", name, w, ok, wantW)
		}
		if strings.Count(name, ",") != 2 {
			t.Fatalf("%q: commas besides the two fields", name)
		}
	})
}
