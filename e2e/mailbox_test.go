package e2e

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// box is a mailbox of the seed configuration, named by its path relative to
// virtual_mailbox_base as in e2e/testdata/vmailbox.
type box string

const (
	aliceBox    box = "example.com/alice/"    // Maildir
	bobBox      box = "example.com/bob"       // mbox
	carolBox    box = "example.net/carol/"    // Maildir
	catchallBox box = "example.net/catchall/" // Maildir, @example.net
)

func (b box) isMaildir() bool { return strings.HasSuffix(string(b), "/") }

func (b box) path() string { return filepath.Join(mailBase, string(b)) }

// stored is one message as found in a mailbox.
type stored struct {
	name     string // file name in new/; empty for mbox
	data     []byte // Maildir: the whole file; mbox: From_ line to trailing empty line
	mode     fs.FileMode
	uid, gid uint32 // of the Maildir file, or of the mbox
}

// mark is a position in a mailbox: the Maildir file names already there, or
// the mbox length.
type mark struct {
	names map[string]bool
	size  int
}

// messages returns every message in the mailbox, in Maildir name order or
// mbox order. A mailbox that does not exist yet has none.
func (b box) messages(t *testing.T) []stored {
	t.Helper()
	if b.isMaildir() {
		return readMaildir(t, b.path())
	}
	return readMbox(t, b.path())
}

// mark returns the current position of the mailbox.
func (b box) mark(t *testing.T) mark {
	t.Helper()
	m := mark{names: map[string]bool{}}
	for _, s := range b.messages(t) {
		m.names[s.name] = true
		m.size += len(s.data)
	}
	return m
}

// since returns the messages added after m.
func (b box) since(t *testing.T, m mark) []stored {
	t.Helper()
	var out []stored
	if b.isMaildir() {
		for _, s := range b.messages(t) {
			if !m.names[s.name] {
				out = append(out, s)
			}
		}
		return out
	}
	n := 0
	for _, s := range b.messages(t) {
		if n >= m.size {
			out = append(out, s)
		}
		n += len(s.data)
	}
	if n < m.size {
		t.Fatalf("mbox %s shrank from %d to %d bytes", b.path(), m.size, n)
	}
	return out
}

// find returns the messages in the mailbox that carry this Message-ID
// (a bounce carries the Message-ID of the message it returns).
func (b box) find(t *testing.T, msgID string) []stored {
	t.Helper()
	var out []stored
	for _, s := range b.messages(t) {
		if hasMessageID(s.data, msgID) {
			out = append(out, s)
		}
	}
	return out
}

func hasMessageID(data []byte, msgID string) bool {
	return bytes.Contains(data, []byte("\nMessage-ID: <"+msgID+">\n"))
}

func readMaildir(t *testing.T, dir string) []stored {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(dir, "new"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []stored
	for _, ent := range ents {
		p := filepath.Join(dir, "new", ent.Name())
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		fi, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		out = append(out, stored{name: ent.Name(), data: data, mode: fi.Mode(), uid: st.Uid, gid: st.Gid})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// readMbox splits an mbox at its From_ lines. Every line of a message that
// starts with "From " is quoted on delivery, so a line that starts with
// "From " begins a message; the mbox must start with one.
func readMbox(t *testing.T, path string) []stored {
	t.Helper()
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if len(data) > 0 && !bytes.HasPrefix(data, []byte("From ")) {
		t.Fatalf("mbox %s does not start with a From_ line: %.80q", path, data)
	}
	var out []stored
	for len(data) > 0 {
		end := bytes.Index(data, []byte("\nFrom "))
		if end < 0 {
			end = len(data)
		} else {
			end++
		}
		out = append(out, stored{data: data[:end], mode: fi.Mode(), uid: st.Uid, gid: st.Gid})
		data = data[end:]
	}
	return out
}

// wantMessage is what one delivered copy must look like.
type wantMessage struct {
	// fromLine is the mbox From_ line sender (quoted, MAILER-DAEMON for
	// the null sender); unused for Maildir.
	fromLine    string
	returnPath  string // between the angle brackets, quoted
	origTo      string // X-Original-To
	deliveredTo string
	qid         string // Postfix's queue id, named in the Received header
	msg         []byte // as submitted, LF line ends
}

// checkCopy asserts the exact bytes of a delivered copy: for mbox the From_
// line, then Return-Path, X-Original-To, Delivered-To (virtual(8)'s order),
// Postfix's Received header, the submitted message (mbox: ">From " quoting
// and one empty line after it). Maildir files must be 0600 and belong to
// vmail (5000:5000).
func checkCopy(t *testing.T, b box, got stored, w wantMessage) {
	t.Helper()
	data := got.data
	if !b.isMaildir() {
		line, rest, _ := bytes.Cut(data, []byte("\n"))
		prefix := "From " + w.fromLine + "  "
		date, ok := strings.CutPrefix(string(line), prefix)
		if !ok {
			t.Errorf("%s: From_ line = %q, want prefix %q", b, line, prefix)
		} else if _, err := time.Parse(time.ANSIC, date); err != nil || len(date) != 24 {
			t.Errorf("%s: From_ line date %q is not asctime()'s 24 characters: %v", b, date, err)
		}
		data = rest
	}
	head := "Return-Path: <" + w.returnPath + ">\n" +
		"X-Original-To: " + w.origTo + "\n" +
		"Delivered-To: " + w.deliveredTo + "\n"
	if !bytes.HasPrefix(data, []byte(head)) {
		n := min(len(data), len(head)+40)
		t.Errorf("%s: copy starts\n%s\nwant\n%s", b, data[:n], head)
		return
	}
	data = data[len(head):]
	received, rest := cutHeader(data)
	if !bytes.HasPrefix(received, []byte("Received: ")) {
		t.Errorf("%s: no Received header after Delivered-To: %.80q", b, data)
	} else if !regexp.MustCompile(`\bid ` + w.qid + `\b`).Match(received) {
		t.Errorf("%s: Received header does not name queue id %s:\n%s", b, w.qid, received)
	}
	want := w.msg
	if !b.isMaildir() {
		want = append(quoteFrom(want), '\n')
	}
	if diff := cmp.Diff(string(want), string(rest)); diff != "" {
		t.Errorf("%s: message after the Received header differs (-want +got):\n%s", b, diff)
	}
	if b.isMaildir() {
		if got.mode != 0o600 || got.uid != 5000 || got.gid != 5000 {
			t.Errorf("%s: %s has mode %v owner %d:%d, want -rw------- 5000:5000", b, got.name, got.mode, got.uid, got.gid)
		}
	}
}

// cutHeader splits off the first header field of data (with its
// continuation lines).
func cutHeader(data []byte) (field, rest []byte) {
	i := 0
	for {
		nl := bytes.IndexByte(data[i:], '\n')
		if nl < 0 {
			return data, nil
		}
		i += nl + 1
		if i >= len(data) || (data[i] != ' ' && data[i] != '\t') {
			return data[:i], data[i:]
		}
	}
}

// quoteFrom inserts ">" before every line that starts with "From ", as
// Postfix's mail_copy does for mbox (mboxo: ">From " is left alone).
func quoteFrom(msg []byte) []byte {
	var out []byte
	for _, line := range bytes.SplitAfter(msg, []byte("\n")) {
		if bytes.HasPrefix(line, []byte("From ")) {
			out = append(out, '>')
		}
		out = append(out, line...)
	}
	return out
}

// Parts of a delivered copy that legitimately differ between two deliveries
// of the same message: the queue id and time in Postfix's Received header,
// and the delivery time in the mbox From_ line.
var (
	receivedIDRE   = regexp.MustCompile(`\bid [0-9A-Za-z]+\b`)
	receivedDateRE = regexp.MustCompile(`(?s); [^;]*$`)
	fromDateRE     = regexp.MustCompile(`^(From .*  ).{24}\n`)
)

// masked returns the copy with those parts replaced by placeholders.
func masked(data []byte) string {
	out := fromDateRE.ReplaceAll(data, []byte("${1}<DATE>\n"))
	i := bytes.Index(out, []byte("\nReceived: "))
	if i < 0 {
		return string(out)
	}
	field, rest := cutHeader(out[i+1:])
	field = receivedIDRE.ReplaceAll(field, []byte("id <QUEUEID>"))
	field = receivedDateRE.ReplaceAll(field, []byte("; <DATE>\n"))
	return string(out[:i+1]) + string(field) + string(rest)
}
