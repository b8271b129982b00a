package quota

import (
	"bytes"
	"math"
	"strconv"
	"strings"
)

// maxFileSize is the size from which maildirsize is recalculated instead of read: the
// Maildir++ specification reads it into a 5120-byte buffer and recalculates when that
// fills, which bounds both the read and the number of lines that can drift.
const maxFileSize = 5120

// fileContents is what a maildirsize says.
type fileContents struct {
	limit   Limit // the first line, read as Dovecot reads it (see parseHeader)
	limitOK bool  // the first line held only valid items
	usage   Usage // the sum of the other lines
	lines   int   // how many lines follow the first
}

// parseFile reads a maildirsize of fewer than maxFileSize bytes. ok is false when the
// counts cannot be trusted and the file must be recalculated: no complete line, a NUL
// byte, a line after the first that is not two decimal integers, or a negative or
// overflowing total. The limit is still reported then, as far as the first line gives
// it. A last line without its newline is left out, as Dovecot does: it is an append
// that is not finished (or never will be), and the next recalculation counts its
// message anyway.
func parseFile(data []byte) (c fileContents, ok bool) {
	end := bytes.LastIndexByte(data, '\n')
	if end < 0 {
		return c, false
	}
	data = data[:end]
	header, rest, _ := bytes.Cut(data, []byte{'\n'})
	if bytes.IndexByte(header, 0) >= 0 {
		return c, false
	}
	c.limit, c.limitOK = parseHeader(string(header))
	if bytes.IndexByte(rest, 0) >= 0 {
		return c, false
	}
	if len(header) == len(data) {
		// The first line alone: no counts at all.
		return c, false
	}
	for line := range bytes.SplitSeq(rest, []byte{'\n'}) {
		c.lines++
		b, n, good := parseDelta(string(line))
		if !good {
			return c, false
		}
		if (b > 0 && c.usage.Bytes > math.MaxInt64-b) || (b < 0 && c.usage.Bytes < math.MinInt64-b) ||
			(n > 0 && c.usage.Count > math.MaxInt64-n) || (n < 0 && c.usage.Count < math.MinInt64-n) {
			return c, false
		}
		c.usage.Bytes += b
		c.usage.Count += n
	}
	if c.usage.Bytes < 0 || c.usage.Count < 0 {
		return c, false
	}
	return c, true
}

// parseHeader reads the first line of maildirsize item by item, as Dovecot does: an item
// that does not parse is skipped (ok is then false), a later item of the same letter
// replaces an earlier one. The first line is written by whoever last recalculated, not by
// the administrator, so it is read leniently; Parse is the strict reader for definitions
// from the tables.
func parseHeader(s string) (l Limit, ok bool) {
	ok = true
	for item := range strings.SplitSeq(s, ",") {
		n, unit, err := parseItem(item)
		if err != nil {
			ok = false
			continue
		}
		if unit == 'S' {
			l.Bytes = n
		} else {
			l.Count = n
		}
	}
	return l, ok
}

// parseDelta reads one "<bytes> <count>" line: two decimal integers, each with an optional
// sign, separated and surrounded by blanks (Courier pads each to 12 columns).
func parseDelta(s string) (b, n int64, ok bool) {
	f := strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == '\t' || r == '\r' })
	if len(f) != 2 {
		return 0, 0, false
	}
	b, err1 := strconv.ParseInt(f[0], 10, 64)
	n, err2 := strconv.ParseInt(f[1], 10, 64)
	return b, n, err1 == nil && err2 == nil
}

// formatFile is a recalculated maildirsize: the limit and one line of totals.
func formatFile(l Limit, u Usage) []byte {
	b := make([]byte, 0, 64)
	b = append(b, l.String()...)
	b = append(b, '\n')
	return appendDelta(b, u.Bytes, u.Count)
}

// appendDelta appends one "<bytes> <count>\n" line, unpadded as Dovecot writes it.
func appendDelta(b []byte, bytes, count int64) []byte {
	b = strconv.AppendInt(b, bytes, 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, count, 10)
	return append(b, '\n')
}
