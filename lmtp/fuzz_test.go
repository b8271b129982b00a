package lmtp

import (
	"bytes"
	"regexp"
	"strings"
	"testing"

	"vdeliver/deliver"
)

// The message an LMTP session delivers is, byte for byte, what the pipe mode makes of
// the same queue file: records sent by Postfix's lmtp client (dot-stuffed, CRLF) against
// the same records as pipe(8) sends them (LF) and deliver.Normalize.
func FuzzDataMatchesPipe(f *testing.F) {
	for _, s := range []string{"Subject: x\n\nbody", "a\r\n.b\r\r\n\r", ".\n..\n...", "", "\r\r\r", "From x\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var records [][]byte
		if len(body) > 0 {
			records = bytes.Split(body, []byte("\n"))
		}
		var wire, pipe bytes.Buffer
		for _, r := range records {
			if len(r) > 0 && r[0] == '.' {
				wire.WriteByte('.')
			}
			wire.Write(r)
			wire.WriteString("\r\n")
			pipe.Write(r)
			pipe.WriteByte('\n')
		}
		h := &recorder{}
		runSession(t, h, Config{MemMax: 1024}, "LHLO x\r\nMAIL FROM:<>\r\nRCPT TO:<a@b>\r\nDATA\r\n"+wire.String()+".\r\nQUIT\r\n")
		want := deliver.Normalize(pipe.Bytes())
		if got := h.txs[0].msg; !bytes.Equal(got, want) {
			t.Fatalf("records %q: LMTP gives %q, the pipe mode %q", records, got, want)
		}
	})
}

var replyLine = regexp.MustCompile(`^[2-5][0-9][0-9]([ -]|$)`)

// Whatever a client sends, every reply is one well-formed line, the session ends, and a
// delivered message has only LF-terminated lines and never the end-of-data line.
func FuzzSession(f *testing.F) {
	for _, s := range []string{
		"LHLO x\r\nMAIL FROM:<a@b> SIZE=10\r\nRCPT TO:<c@d> ORCPT=rfc822;c+40d\r\nDATA\r\nx\r\n.\r\nQUIT\r\n",
		"LHLO x\r\nXFORWARD IDENT=ABC\r\nMAIL FROM:<\"a b\"@c>\r\nRCPT TO:<@r:x@y>\r\nRSET\r\nVRFY x\r\n",
		"garbage\r\n\r\n\x00\xff\r\nMAIL\r\nRCPT TO:<\r\nDATA\r\n.\r\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		h := &recorder{rcpt: map[string]Reply{"x@y": {"5.1.1", "unknown user: \"x@y\""}}}
		out := runSession(t, h, Config{MaxSize: 1000, MaxRecipients: 3, MaxLine: 100}, in)
		for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
			if !replyLine.MatchString(l) {
				t.Fatalf("bad reply line %q", l)
			}
		}
		for _, tx := range h.txs {
			if !tx.ended {
				t.Fatal("a transaction was not ended")
			}
			if tx.rcpts == nil {
				continue
			}
			if len(tx.rcpts) > 3 || int64(len(tx.msg)) > 1000 {
				t.Fatalf("limits passed: %d recipients, %d bytes", len(tx.rcpts), len(tx.msg))
			}
			if len(tx.msg) > 0 && tx.msg[len(tx.msg)-1] != '\n' {
				t.Fatalf("message %q does not end in LF", tx.msg)
			}
		}
	})
}

// ORCPT and XFORWARD values: decoding undoes encoding, and a decoded value encodes to
// an xtext that decodes to it again.
func FuzzXtext(f *testing.F) {
	for _, s := range []string{"", "a+2Bb", "+3D", "+zz", "x y", "+4", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, err := decodeXtext(encodeXtext(s)); err != nil || got != s {
			t.Fatalf("decode(encode(%q)) = %q, %v", s, got, err)
		}
		d, err := decodeXtext(s)
		if err != nil {
			return
		}
		if again, err := decodeXtext(encodeXtext(d)); err != nil || again != d {
			t.Fatalf("%q: decoded %q does not survive encoding", s, d)
		}
		if strings.ContainsAny(s, " \t\r\n\x00") {
			t.Fatalf("%q with a space or control character was accepted", s)
		}
	})
}

// A path as Postfix's lmtp client writes it (the localpart quoted as quote_822_local()
// does) parses back to the address pipe(8) would pass; anything parses without panic.
func FuzzParsePath(f *testing.F) {
	for _, s := range []string{"a@b", "a b@c", `a"b@c`, `a\b@c`, "@x@y", "", "a.@b", "<>@c"} {
		f.Add(s, "FROM:<x@y> SIZE=1")
	}
	f.Fuzz(func(t *testing.T, addr, raw string) {
		parsePath(raw, "FROM:")
		parsePath(raw, "TO:")
		parseCommand(raw)
		parseORCPT(raw)
		_, domain, _ := strings.Cut(addr, "@")
		if !strings.Contains(addr, "@") || strings.ContainsAny(domain, `<>" `) || strings.ContainsAny(addr, "\r\n\x00") || strings.HasPrefix(addr, "@") {
			return
		}
		p, err := parsePath("TO:<"+deliver.Quote822Local(addr)+"> NOTIFY=NEVER", "TO:")
		if err != nil || p.addr != addr || len(p.params) != 1 {
			t.Fatalf("%q quoted as %q: parsed %q %v, %v", addr, deliver.Quote822Local(addr), p.addr, p.params, err)
		}
	})
}
