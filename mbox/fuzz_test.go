package mbox

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
)

var fuzzSeeds = []string{
	"",
	"x",
	"From ",
	"From x\n",
	"From:",
	"from x\n",
	">From x\n",
	"From\n",
	"Subject: x\n\nFrom me\n>From you\n\nFrom",
	"\n\n\n",
	"\nFrom \nFrom \n",
	"a\r\nFrom b\r\n",
	"Subject: x\n\nno newline",
}

// FuzzQuote: quoting only ever inserts one ">" before lines that start with
// "From ", adds a final newline when missing, and leaves no line starting
// with "From ".
func FuzzQuote(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		out := appendQuoted(nil, in)
		if len(out) != quotedLen(in) {
			t.Fatalf("len %d, quotedLen says %d", len(out), quotedLen(in))
		}
		if len(in) == 0 {
			if len(out) != 0 {
				t.Fatalf("empty input gave %q", out)
			}
			return
		}
		if out[len(out)-1] != '\n' {
			t.Fatalf("output %q does not end in a newline", out)
		}
		inLines := strings.Split(strings.TrimSuffix(string(in), "\n"), "\n")
		outLines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
		if len(inLines) != len(outLines) {
			t.Fatalf("%d lines became %d", len(inLines), len(outLines))
		}
		for i, l := range inLines {
			o := outLines[i]
			if strings.HasPrefix(o, "From ") {
				t.Fatalf("line %d %q starts with From ", i, o)
			}
			if strings.HasPrefix(l, "From ") {
				if o != ">"+l {
					t.Fatalf("line %d %q quoted as %q", i, l, o)
				}
			} else if o != l {
				t.Fatalf("line %d %q changed to %q", i, l, o)
			}
		}
	})
}

// FuzzMboxRoundTrip writes a fuzzed message and a fixed one into a real
// mbox: a splitter finds exactly two records, the first line of each is
// the only one starting with "From ", and un-quoting gives back the
// message (mboxo is lossy only for lines that already began ">From ").
func FuzzMboxRoundTrip(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add("sender@example.org", []byte(s))
	}
	f.Add("", []byte("x\n"))
	f.Add("a\nFrom b", []byte("x\n"))
	root, dir := newRoot(f)
	n := 0
	f.Fuzz(func(t *testing.T, sender string, msg []byte) {
		n++
		name := "mbox" + strings.Repeat("x", n%3) // keep a few files, each reused
		os.Remove(join(dir, name))
		opt := opts()
		opt.Locks = []string{"flock"}
		ctx := context.Background()
		if err := Deliver(ctx, root, name, sender, []byte(testHeaders), msg, opt); err != nil {
			t.Fatal(err)
		}
		if err := Deliver(ctx, root, name, "second@x", nil, []byte("Subject: 2\n\nFrom 2\n"), opt); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		recs := splitRecords(b)
		if len(recs) != 2 {
			t.Fatalf("%d records in %q", len(recs), b)
		}
		if want := "From second@x  " + epochDate + "\nSubject: 2\n\n>From 2\n\n"; string(recs[1]) != want {
			t.Fatalf("second record %q, want %q", recs[1], want)
		}
		rec := recs[0]
		nl := bytes.IndexByte(rec, '\n')
		from, rest := rec[:nl+1], rec[nl+1:]
		if bytes.ContainsAny(from[:len(from)-1], "\r\n") || !bytes.HasSuffix(from, []byte("  "+epochDate+"\n")) {
			t.Fatalf("bad From_ line %q", from)
		}
		if !bytes.HasPrefix(rest, []byte(testHeaders)) || !bytes.HasSuffix(rest, []byte("\n")) {
			t.Fatalf("record %q lacks headers or final blank line", rec)
		}
		body := rest[len(testHeaders) : len(rest)-1]
		want := msg
		if len(want) > 0 && want[len(want)-1] != '\n' {
			want = append(want[:len(want):len(want)], '\n')
		}
		if got, w := unquote(body), unquote(want); !bytes.Equal(got, w) {
			t.Fatalf("round trip:\n got %q\nwant %q", got, w)
		}
	})
}

// unquote is what an mboxo reader does: remove one ">" from lines starting
// ">From ".
func unquote(b []byte) []byte {
	lines := bytes.SplitAfter(b, []byte("\n"))
	for i, l := range lines {
		if bytes.HasPrefix(l, []byte(">From ")) {
			lines[i] = l[1:]
		}
	}
	return bytes.Join(lines, nil)
}

// BenchmarkAppend100MB appends one 4 kB message to a 100 MB mbox with
// Debian's default locks: the cost must not depend on the mailbox size,
// since the existing file is never read.
func BenchmarkAppend100MB(b *testing.B) {
	root, dir := newRoot(b)
	f, err := os.Create(join(dir, "mbox"))
	if err != nil {
		b.Fatal(err)
	}
	if _, err := f.Write(bytes.Repeat([]byte("From x  "+epochDate+"\nS: x\n\nbody\n\n"), (100<<20)/48)); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	msg := []byte("Subject: bench\n\n" + strings.Repeat("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\n", 64))
	opt := opts()
	ctx := context.Background()
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := Deliver(ctx, root, "mbox", testSender, []byte(testHeaders), msg, opt); err != nil {
			b.Fatal(err)
		}
	}
}
