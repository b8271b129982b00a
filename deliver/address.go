package deliver

import (
	"strings"
)

// splitAt cuts an address at its right-most '@', as Postfix does everywhere: a quoted
// localpart may itself contain '@'. Without '@' the whole string is the localpart.
func splitAt(addr string) (local, domain string, hasAt bool) {
	i := strings.LastIndexByte(addr, '@')
	if i < 0 {
		return addr, "", false
	}
	return addr[:i], addr[i+1:], true
}

// fold is Postfix's casefold() for lookup keys. XXX: Postfix with SMTPUTF8 applies full
// Unicode case folding; strings.ToLower agrees for ASCII and for most of the rest.
func fold(addr string) string { return strings.ToLower(addr) }

// Extension is the result of cutting a localpart at the recipient_delimiter.
type Extension struct {
	User  string // localpart before the delimiter
	Delim string // the delimiter character found ("" when not split)
	Ext   string // text after the delimiter
}

// splitExtension implements split_addr(): the localpart is cut at the first character that
// belongs to the delimiter set, unless the cut would leave an empty user or the localpart is
// one of the names Postfix protects (postmaster, MAILER-DAEMON, the double-bounce sender, and
// owner-/-request lists when '-' is a delimiter and owner_request_special is on).
func splitExtension(local, delims, doubleBounce string, ownerRequestSpecial bool) (Extension, bool) {
	none := Extension{User: local}
	if delims == "" || local == "" {
		return none, false
	}
	if strings.EqualFold(local, "postmaster") || strings.EqualFold(local, "MAILER-DAEMON") ||
		strings.EqualFold(local, doubleBounce) {
		return none, false
	}
	if ownerRequestSpecial && strings.ContainsRune(delims, '-') {
		l := strings.ToLower(local)
		if strings.HasPrefix(l, "owner-") || strings.HasSuffix(l, "-request") {
			return none, false
		}
	}
	// recipient_delimiter is a set of bytes, as in Postfix; IndexAny would compare runes
	// and take any invalid UTF-8 byte for any other.
	i := -1
	for j := 0; j < len(local); j++ {
		if strings.IndexByte(delims, local[j]) >= 0 {
			i = j
			break
		}
	}
	if i <= 0 {
		return none, false
	}
	return Extension{User: local[:i], Delim: local[i : i+1], Ext: local[i+1:]}, true
}

// Quote822Local renders an address in RFC 822 external form as quote_822_local() does: the
// localpart (left of the last '@', after any "@route:" prefix) is left alone when it is a
// non-empty dot-atom, and otherwise wrapped in double quotes with '"', '\' and CR escaped.
// The domain is never touched.
func Quote822Local(addr string) string {
	local, domain, hasAt := splitAt(addr)
	prefix := ""
	if strings.HasPrefix(local, "@") {
		if i := strings.IndexByte(local, ':'); i > 0 {
			prefix, local = local[:i+1], local[i+1:]
		}
	}
	if !isDotAtom(local) {
		var b strings.Builder
		b.WriteByte('"')
		for i := 0; i < len(local); i++ {
			c := local[i]
			if c == '"' || c == '\\' || c == '\r' {
				b.WriteByte('\\')
			}
			b.WriteByte(c)
		}
		b.WriteByte('"')
		local = b.String()
	}
	if !hasAt {
		return prefix + local
	}
	return prefix + local + "@" + domain
}

func isDotAtom(s string) bool {
	if s == "" || s[0] == '.' || s[len(s)-1] == '.' || strings.Contains(s, "..") {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c == 0x7f || strings.IndexByte(`()<>@,;:\"[]`, c) >= 0 {
			return false
		}
	}
	return true
}

// hasControl reports bytes that must never reach a header or a lookup key: a newline in an
// address would let the caller inject header lines into Delivered-To or Return-Path.
func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] == 0x7f {
			return true
		}
	}
	return false
}
