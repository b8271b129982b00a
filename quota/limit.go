package quota

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Limit is a Maildir++ quota: at most Bytes bytes and at most Count messages. 0 on a
// dimension means no limit on it; the zero Limit is no quota at all.
type Limit struct{ Bytes, Count int64 }

// Usage is what a Maildir holds: the bytes and the number of its messages.
type Usage struct{ Bytes, Count int64 }

// Unlimited reports whether l limits nothing.
func (l Limit) Unlimited() bool { return l.Bytes == 0 && l.Count == 0 }

// Allows reports whether a message of size bytes fits beside u: the usage with the
// message added may reach the limit but not pass it, on both dimensions.
func (l Limit) Allows(u Usage, size int64) bool {
	if l.Bytes > 0 && (size > l.Bytes || u.Bytes > l.Bytes-size) {
		return false
	}
	if l.Count > 0 && u.Count >= l.Count {
		return false
	}
	return true
}

// Full reports whether u leaves no room for any message: the bytes or the count have
// reached the limit. It is Dovecot's "over quota" and what explain reports.
func (l Limit) Full(u Usage) bool { return !l.Allows(u, 1) }

// String returns the canonical Maildir++ definition, as Dovecot writes it as the first
// line of maildirsize: "<bytes>S", "<count>C" or "<bytes>S,<count>C", and "0S" for no
// limit at all. Parse reads it back to the same Limit.
func (l Limit) String() string {
	var b []byte
	if l.Bytes != 0 || l.Count == 0 {
		b = strconv.AppendInt(b, l.Bytes, 10)
		b = append(b, 'S')
	}
	if l.Count != 0 {
		if len(b) > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, l.Count, 10)
		b = append(b, 'C')
	}
	return string(b)
}

// ErrSyntax is wrapped by every error of Parse.
var ErrSyntax = errors.New("bad quota definition")

// Parse reads a Maildir++ quota definition as Postfixadmin stores it and as the first
// line of maildirsize holds it: comma-separated items, each a decimal number followed by
// S (bytes) or C (messages), each letter at most once, e.g. "1000000S", "1000000S,1000C"
// or "1000C". A number of 0 means no limit on that dimension. Nothing else is accepted:
// no spaces, no signs, no other letters (Courier defines none), no empty items.
func Parse(def string) (Limit, error) {
	var l Limit
	if def == "" {
		return l, fmt.Errorf("%w: empty", ErrSyntax)
	}
	var seenS, seenC bool
	for item := range strings.SplitSeq(def, ",") {
		n, unit, err := parseItem(item)
		if err != nil {
			return Limit{}, fmt.Errorf("%w %q: %v", ErrSyntax, def, err)
		}
		switch unit {
		case 'S':
			if seenS {
				return Limit{}, fmt.Errorf("%w %q: more than one S item", ErrSyntax, def)
			}
			seenS, l.Bytes = true, n
		case 'C':
			if seenC {
				return Limit{}, fmt.Errorf("%w %q: more than one C item", ErrSyntax, def)
			}
			seenC, l.Count = true, n
		}
	}
	return l, nil
}

// parseItem reads one "<digits>S" or "<digits>C".
func parseItem(item string) (int64, byte, error) {
	if item == "" {
		return 0, 0, errors.New("empty item")
	}
	unit := item[len(item)-1]
	digits := item[:len(item)-1]
	if unit != 'S' && unit != 'C' {
		return 0, 0, fmt.Errorf("item %q does not end in S (bytes) or C (messages)", item)
	}
	if digits == "" {
		return 0, 0, fmt.Errorf("item %q has no number", item)
	}
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return 0, 0, fmt.Errorf("item %q: %q is not a decimal number", item, digits)
		}
	}
	n, err := strconv.ParseInt(digits, 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("item %q: number too large", item)
	}
	return n, unit, nil
}
