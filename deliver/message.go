package deliver

import (
	"bytes"
	"strings"
)

// Normalize makes the message what Postfix's queue would hold and mail_copy() would write:
// every line ends in LF (a CRLF pair, as pipe(8) sends with eol=\r\n, becomes LF) and the
// last line is terminated. A lone CR inside a line is data and is kept.
func Normalize(msg []byte) []byte {
	if bytes.Contains(msg, []byte("\r\n")) {
		msg = bytes.ReplaceAll(msg, []byte("\r\n"), []byte("\n"))
	}
	if len(msg) > 0 && msg[len(msg)-1] != '\n' {
		msg = append(msg, '\n')
	}
	return msg
}

// Envelope is what the MTA tells us besides the message.
type Envelope struct {
	Sender    string // "" is the null sender
	OrigRcpt  string // -a; "" when unknown
	QueueID   string
	Recipient string
}

// prependedHeaders are the lines virtual(8) writes before the message, in mail_copy()'s
// order: Return-Path, X-Original-To (when enabled and known), Delivered-To. Addresses are
// quoted as quote_822_local() does; Delivered-To keeps the recipient's original case.
func prependedHeaders(env Envelope, origRcpt bool) []byte {
	var b bytes.Buffer
	b.WriteString("Return-Path: <")
	if env.Sender != "" {
		b.WriteString(Quote822Local(env.Sender))
	}
	b.WriteString(">\n")
	if origRcpt && env.OrigRcpt != "" {
		b.WriteString("X-Original-To: ")
		b.WriteString(Quote822Local(env.OrigRcpt))
		b.WriteByte('\n')
	}
	b.WriteString("Delivered-To: ")
	b.WriteString(Quote822Local(env.Recipient))
	b.WriteByte('\n')
	return b.Bytes()
}

// mboxSender is the From_ line's sender: quoted, and MAILER-DAEMON for the null sender.
func mboxSender(sender string) string {
	if sender == "" {
		return "MAILER-DAEMON"
	}
	return Quote822Local(sender)
}

// deliveredTo collects the Delivered-To values of the primary header block, folded, as
// delivered_hdr.c does: the block ends at the first line that is neither a header nor a
// continuation; at most 1000 distinct values are kept. Only the white space after the
// colon is skipped (ISSPACE, as Postfix): trailing blanks stay part of the value, so
// "Delivered-To: a@x " is not a@x and Postfix's local(8) and pipe(8) deliver it too.
func deliveredTo(msg []byte) map[string]bool {
	seen := map[string]bool{}
	for len(msg) > 0 && len(seen) < 1000 {
		line := msg
		if i := bytes.IndexByte(msg, '\n'); i >= 0 {
			line, msg = msg[:i], msg[i+1:]
		} else {
			msg = nil
		}
		if len(line) > 0 && (line[0] == ' ' || line[0] == '\t') {
			continue // continuation: not part of a Delivered-To value
		}
		name, value, ok := headerName(line)
		if !ok {
			break
		}
		if strings.EqualFold(name, "Delivered-To") {
			seen[fold(strings.TrimLeft(value, " \t\n\v\f\r"))] = true
		}
	}
	return seen
}

// headerName splits "Name: value" where the name is printable ASCII without ':' and may
// be followed by spaces before the colon (is_header()).
func headerName(line []byte) (name, value string, ok bool) {
	i := 0
	for i < len(line) && line[i] > ' ' && line[i] < 0x7f && line[i] != ':' {
		i++
	}
	if i == 0 {
		return "", "", false
	}
	j := i
	for j < len(line) && (line[j] == ' ' || line[j] == '\t') {
		j++
	}
	if j >= len(line) || line[j] != ':' {
		return "", "", false
	}
	return string(line[:i]), string(line[j+1:]), true
}

// isLoop reports whether the message already carries Delivered-To: <recipient>.
func isLoop(seen map[string]bool, rcpt string) bool {
	return seen[fold(Quote822Local(rcpt))]
}
