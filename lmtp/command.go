package lmtp

import (
	"errors"
	"strconv"
	"strings"
)

// command is one parsed command line: the verb in upper case and the rest as sent.
type command struct {
	verb string
	arg  string
}

// parseCommand splits a command line (terminator already removed) at the first space.
func parseCommand(line string) command {
	verb, arg, _ := strings.Cut(line, " ")
	return command{verb: strings.ToUpper(verb), arg: strings.TrimLeft(arg, " ")}
}

var (
	errSyntax     = errors.New("syntax error")
	errParamValue = errors.New("bad parameter value")
)

// path is a MAIL FROM or RCPT TO argument: the address (internal form: quotes around the
// localpart removed) and the ESMTP parameters after it, names in upper case.
type path struct {
	addr   string
	params []param
}

type param struct {
	name, value string
	hasValue    bool
}

// parsePath parses `FROM:<addr> params` (prefix "FROM:" or "TO:", case-insensitive, one
// optional space after the colon, as Postfix's smtpd tolerates).
func parsePath(arg, prefix string) (path, error) {
	if len(arg) < len(prefix) || !strings.EqualFold(arg[:len(prefix)], prefix) {
		return path{}, errSyntax
	}
	rest := strings.TrimLeft(arg[len(prefix):], " ")
	if !strings.HasPrefix(rest, "<") {
		return path{}, errSyntax
	}
	// Scan to the closing '>', honouring a quoted localpart (which may hold '>') and
	// backslash escapes inside it.
	inQuote := false
	end := -1
	for i := 1; i < len(rest) && end < 0; i++ {
		switch c := rest[i]; {
		case c == '\\' && inQuote:
			i++
		case c == '"':
			inQuote = !inQuote
		case c == '>' && !inQuote:
			end = i
		}
	}
	if end < 0 {
		return path{}, errSyntax
	}
	addr := rest[1:end]
	// A source route (@a,@b:user@domain) is obsolete; the mailbox is what follows it.
	if strings.HasPrefix(addr, "@") {
		i := strings.IndexByte(addr, ':')
		if i < 0 {
			return path{}, errSyntax
		}
		addr = addr[i+1:]
	}
	p := path{addr: unquoteLocal(addr)}
	for _, f := range strings.Fields(rest[end+1:]) {
		name, value, has := strings.Cut(f, "=")
		if name == "" {
			return path{}, errSyntax
		}
		p.params = append(p.params, param{name: strings.ToUpper(name), value: value, hasValue: has})
	}
	if rest[end+1:] != "" && rest[end+1] != ' ' {
		return path{}, errSyntax
	}
	return p, nil
}

// unquoteLocal turns the external form of an address ("a b"@example.com) into Postfix's
// internal form (a b@example.com), as unquote_822_local() does: quotes are removed and a
// backslash inside quotes keeps the next character. The domain is left alone. Postfix's
// lmtp client sends the external form; pipe(8) passes the internal one, so this makes
// the recipient the same in both modes.
func unquoteLocal(addr string) string {
	if !strings.Contains(addr, `"`) {
		return addr
	}
	i := strings.LastIndexByte(addr, '@')
	local, domain := addr, ""
	if i >= 0 {
		local, domain = addr[:i], addr[i:]
	}
	var b strings.Builder
	inQuote := false
	for j := 0; j < len(local); j++ {
		c := local[j]
		switch {
		case c == '"':
			inQuote = !inQuote
		case c == '\\' && inQuote && j+1 < len(local):
			j++
			b.WriteByte(local[j])
		default:
			b.WriteByte(c)
		}
	}
	return b.String() + domain
}

// decodeXtext decodes RFC 3461 xtext: "+XX" (two hex digits) is the byte XX;
// every other character must be printable ASCII other than '+' and '='.
func decodeXtext(s string) (string, error) {
	if !strings.ContainsAny(s, "+=") {
		for i := 0; i < len(s); i++ {
			if s[i] < '!' || s[i] > '~' {
				return "", errParamValue
			}
		}
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '+':
			if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
				return "", errParamValue
			}
			n, _ := strconv.ParseUint(s[i+1:i+3], 16, 8)
			b.WriteByte(byte(n))
			i += 2
		case c < '!' || c > '~' || c == '=':
			return "", errParamValue
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}

// isHex accepts lower-case digits too, which RFC 3461 does not allow but some clients
// send: refusing them would refuse the mail over an X-Original-To header.
func isHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'A' && c <= 'F' || c >= 'a' && c <= 'f' }

// encodeXtext is decodeXtext's inverse, for tests and fuzzing.
func encodeXtext(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '!' || c > '~' || c == '+' || c == '=' {
			b.WriteByte('+')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// parseORCPT decodes an ORCPT value, "addr-type;xtext". Only rfc822 addresses are used:
// the result is the address in internal form, "" for another type (RFC 3461 lets the
// server ignore what it does not understand). A malformed value is an error.
func parseORCPT(v string) (string, error) {
	typ, enc, ok := strings.Cut(v, ";")
	if !ok || typ == "" {
		return "", errParamValue
	}
	addr, err := decodeXtext(enc)
	if err != nil {
		return "", err
	}
	if !strings.EqualFold(typ, "rfc822") {
		return "", nil
	}
	return unquoteLocal(addr), nil
}
