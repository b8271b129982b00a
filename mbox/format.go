package mbox

import (
	"bytes"
	"strings"
	"time"
)

var (
	fromSpace   = []byte("From ")
	nlFromSpace = []byte("\nFrom ")
)

// record builds the bytes appended for one delivery (see the package doc)
// in a single allocation of exactly the right size.
func record(sender string, now time.Time, headers, msg []byte) []byte {
	if sender == "" {
		sender = "MAILER-DAEMON"
	}
	// A CR or LF in the envelope sender would end the From_ line early and
	// let the rest pose as a record boundary.
	sender = strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' {
			return ' '
		}
		return r
	}, sender)
	date := now.Local().Format(time.ANSIC)

	n := len("From ") + len(sender) + len("  ") + len(date) + len("\n") +
		quotedLen(headers) + quotedLen(msg) + len("\n")
	b := make([]byte, 0, n)
	b = append(b, "From "...)
	b = append(b, sender...)
	b = append(b, "  "...)
	b = append(b, date...)
	b = append(b, '\n')
	b = appendQuoted(b, headers)
	b = appendQuoted(b, msg)
	b = append(b, '\n')
	return b
}

// quotedLen is len(appendQuoted(nil, b)).
func quotedLen(b []byte) int {
	if len(b) == 0 {
		return 0
	}
	n := len(b) + bytes.Count(b, nlFromSpace)
	if bytes.HasPrefix(b, fromSpace) {
		n++
	}
	if b[len(b)-1] != '\n' {
		n++
	}
	return n
}

// appendQuoted appends b with ">" before every line that starts with
// "From " (mboxo, as Postfix's mail_copy) and a final newline if b has
// content but does not end in one.
func appendQuoted(dst, b []byte) []byte {
	if len(b) == 0 {
		return dst
	}
	if bytes.HasPrefix(b, fromSpace) {
		dst = append(dst, '>')
	}
	for {
		i := bytes.Index(b, nlFromSpace)
		if i < 0 {
			break
		}
		dst = append(dst, b[:i+1]...)
		dst = append(dst, '>')
		b = b[i+1:]
	}
	dst = append(dst, b...)
	if dst[len(dst)-1] != '\n' {
		dst = append(dst, '\n')
	}
	return dst
}

// largeRecord is the message size from which the record is not built in one buffer but
// written piece by piece from the caller's message (recordParts): a copy of a 10 MB
// message would double the memory a long-lived delivery process needs. Below it, one
// buffer means one write(2).
var largeRecord = 1 << 20 // a variable for the tests

// recordParts is record as a list of pieces whose concatenation is record's result:
// the From_ line, the quoted headers, the message in slices of msg itself (a ">"
// between two wherever a line starts with "From "), and the final newline.
func recordParts(sender string, now time.Time, headers, msg []byte) [][]byte {
	if len(msg) < largeRecord {
		return [][]byte{record(sender, now, headers, msg)}
	}
	head := record(sender, now, headers, nil) // From_ line, headers, "\n"
	parts := [][]byte{head[:len(head)-1]}
	gt := []byte(">")
	if bytes.HasPrefix(msg, fromSpace) {
		parts = append(parts, gt)
	}
	b := msg
	for {
		i := bytes.Index(b, nlFromSpace)
		if i < 0 {
			break
		}
		parts = append(parts, b[:i+1], gt)
		b = b[i+1:]
	}
	parts = append(parts, b)
	if msg[len(msg)-1] != '\n' {
		parts = append(parts, []byte("\n"))
	}
	return append(parts, []byte("\n"))
}

// partsLen is the length of the concatenation of parts.
func partsLen(parts [][]byte) int64 {
	var n int64
	for _, p := range parts {
		n += int64(len(p))
	}
	return n
}
