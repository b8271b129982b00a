package mbox

import (
	"bytes"
	"context"
	"os"
	"testing"
	"time"
)

// TestFormat pins the exact bytes of one record (SPEC tests 12, 13, 18-20).
func TestFormat(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		old     string // existing mailbox content; "" means no file
		sender  string
		headers string
		msg     string
		now     time.Time
		want    string // whole file afterwards
	}{
		{
			name:    "from line two spaces padded day local time",
			sender:  "sender@example.org",
			headers: testHeaders,
			msg:     "Subject: hi\n\nbody\n",
			now:     epoch,
			want:    "From sender@example.org  Tue Mar  5 04:07:02 2024\n" + testHeaders + "Subject: hi\n\nbody\n\n",
		},
		{
			name:    "epoch in the local zone",
			sender:  "a@b",
			headers: "",
			msg:     "x\n",
			now:     time.Unix(0, 0).UTC(),
			want:    "From a@b  Wed Dec 31 19:00:00 1969\nx\n\n",
		},
		{
			name:   "two-digit day",
			sender: "a@b",
			msg:    "x\n",
			now:    time.Date(2025, 11, 25, 23, 59, 59, 0, time.UTC),
			want:   "From a@b  Tue Nov 25 18:59:59 2025\nx\n\n",
		},
		{
			name:    "null sender given as MAILER-DAEMON",
			sender:  "MAILER-DAEMON",
			headers: "Return-Path: <>\nDelivered-To: bob@example.org\n",
			msg:     "Subject: bounce\n\nsorry\n",
			now:     epoch,
			want:    "From MAILER-DAEMON  " + epochDate + "\nReturn-Path: <>\nDelivered-To: bob@example.org\nSubject: bounce\n\nsorry\n\n",
		},
		{
			name:   "empty sender written as MAILER-DAEMON",
			sender: "",
			msg:    "x\n",
			now:    epoch,
			want:   "From MAILER-DAEMON  " + epochDate + "\nx\n\n",
		},
		{
			name:   "quoted local part passes through",
			sender: `"john doe"@x`,
			msg:    "x\n",
			now:    epoch,
			want:   `From "john doe"@x  ` + epochDate + "\nx\n\n",
		},
		{
			name:   "CR and LF in the sender cannot forge a record",
			sender: "a@b\nFrom evil@x\r",
			msg:    "x\n",
			now:    epoch,
			want:   "From a@b From evil@x   " + epochDate + "\nx\n\n",
		},
		{
			name:    "unterminated last line gets a newline then the blank line",
			sender:  "a@b",
			headers: "H: 1\n",
			msg:     "Subject: x\n\nno newline",
			now:     epoch,
			want:    "From a@b  " + epochDate + "\nH: 1\nSubject: x\n\nno newline\n\n",
		},
		{
			name:    "unterminated header block gets a newline",
			sender:  "a@b",
			headers: "Delivered-To: c@d",
			msg:     "S: x\n\nb\n",
			now:     epoch,
			want:    "From a@b  " + epochDate + "\nDelivered-To: c@d\nS: x\n\nb\n\n",
		},
		{
			name:   "empty message is just the From_ line, headers and blank line",
			sender: "a@b",
			msg:    "",
			now:    epoch,
			want:   "From a@b  " + epochDate + "\n\n",
		},
		{
			name:   "appended after the old bytes, which stay unchanged",
			old:    "From old@x  Mon Jan  1 00:00:00 2024\nSubject: old\n\nold body\n\n",
			sender: "a@b",
			msg:    "Subject: new\n\nnew\n",
			now:    epoch,
			want: "From old@x  Mon Jan  1 00:00:00 2024\nSubject: old\n\nold body\n\n" +
				"From a@b  " + epochDate + "\nSubject: new\n\nnew\n\n",
		},
		{
			// Unlike virtual(8): appended straight after "garbage", the From_
			// line would not start a line and readers would lose the message
			// (issue 4: a delivery killed mid-write leaves exactly this).
			name:   "old mailbox without final newline gets a blank line first",
			old:    "garbage",
			sender: "a@b",
			msg:    "x\n",
			now:    epoch,
			want:   "garbage\n\nFrom a@b  " + epochDate + "\nx\n\n",
		},
		{
			name:   "old mailbox ending in one newline is appended to as virtual(8)",
			old:    "From old@x  Mon Jan  1 00:00:00 2024\ncut short\n",
			sender: "a@b",
			msg:    "x\n",
			now:    epoch,
			want:   "From old@x  Mon Jan  1 00:00:00 2024\ncut short\nFrom a@b  " + epochDate + "\nx\n\n",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			root, dir := newRoot(t)
			if tc.old != "" {
				putFile(t, join(dir, "mbox"), tc.old, 0o600)
			}
			opt := opts()
			opt.Now = func() time.Time { return tc.now }
			err := Deliver(context.Background(), root, "mbox", tc.sender, []byte(tc.headers), []byte(tc.msg), opt)
			if err != nil {
				t.Fatal(err)
			}
			assertContent(t, join(dir, "mbox"), tc.want)
			assertMissing(t, join(dir, "mbox.lock"))
		})
	}
}

// TestQuoting pins which lines get a ">" (SPEC test 18): exactly those whose
// first five bytes are "From ", in the header area and in the body.
func TestQuoting(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, msg, want string
	}{
		{"body From line", "S: x\n\nFrom x\n", "S: x\n\n>From x\n"},
		{"header-area From line", "From x\nS: y\n\nb\n", ">From x\nS: y\n\nb\n"},
		{"From: header untouched", "From: a@b\n\nb\n", "From: a@b\n\nb\n"},
		{"lower case untouched", "S: x\n\nfrom x\n", "S: x\n\nfrom x\n"},
		{"already quoted untouched", "S: x\n\n>From x\n", "S: x\n\n>From x\n"},
		{"bare From without space untouched", "S: x\n\nFrom\n", "S: x\n\nFrom\n"},
		{"From followed by tab untouched", "S: x\n\nFrom\tx\n", "S: x\n\nFrom\tx\n"},
		{"not at line start untouched", "S: x\n\n From x\nsay From x\n", "S: x\n\n From x\nsay From x\n"},
		{"several, adjacent", "S: x\n\nFrom a\nFrom b\n\nFrom c", "S: x\n\n>From a\n>From b\n\n>From c\n"},
		{"From space only", "S: x\n\nFrom \n", "S: x\n\n>From \n"},
		{"CRLF line still quoted after LF", "S: x\r\n\r\nFrom x\r\n", "S: x\r\n\r\n>From x\r\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			root, dir := newRoot(t)
			if err := deliver(t, root, "mbox", tc.msg, opts()); err != nil {
				t.Fatal(err)
			}
			assertContent(t, join(dir, "mbox"), want(tc.want))
		})
	}
}

// TestQuotingHeaders: the caller's header block is quoted by the same rule,
// so no input at all can start a line with "From ".
func TestQuotingHeaders(t *testing.T) {
	t.Parallel()
	root, dir := newRoot(t)
	err := Deliver(context.Background(), root, "mbox", "a@b", []byte("From x\nDelivered-To: y\n"), []byte("b\n"), opts())
	if err != nil {
		t.Fatal(err)
	}
	assertContent(t, join(dir, "mbox"), "From a@b  "+epochDate+"\n>From x\nDelivered-To: y\nb\n\n")
}

func TestRecordLen(t *testing.T) {
	t.Parallel()
	for _, msg := range []string{"", "x", "From ", "From x", "\nFrom ", "a\nFrom b\nFrom c", "From \n\n", "\n\n"} {
		rec := record("a@b", epoch, []byte(msg), []byte(msg))
		if len(rec) != cap(rec) {
			t.Errorf("record(%q): len %d != cap %d: size computed wrong", msg, len(rec), cap(rec))
		}
	}
}

func TestUnknownLockMethod(t *testing.T) {
	t.Parallel()
	root, dir := newRoot(t)
	opt := opts()
	opt.Locks = []string{"dotlock", "posix"}
	err := deliver(t, root, "mbox", "x\n", opt)
	checkErr(t, err, "lock", join(dir, "mbox"), `unknown mailbox lock method "posix"`)
	assertMissing(t, join(dir, "mbox"))
	assertMissing(t, join(dir, "mbox.lock"))
}

func TestNoLocks(t *testing.T) {
	t.Parallel()
	root, dir := newRoot(t)
	opt := opts()
	opt.Locks = nil
	if err := deliver(t, root, "mbox", "x\n", opt); err != nil {
		t.Fatal(err)
	}
	assertContent(t, join(dir, "mbox"), want("x\n"))
	if _, err := os.Stat(join(dir, "mbox.lock")); err == nil {
		t.Error("a dotlock was made though none was asked for")
	}
}

// recordParts, whatever the message, concatenates to record's bytes: with the
// threshold at 0 every message takes the piece-by-piece path.
func FuzzRecordParts(f *testing.F) {
	for _, s := range []string{"From x\nFrom y\n", "a\nFrom ", "no newline", "\n", "x\n>From y\nFrom\n"} {
		f.Add("s@example.org", "Return-Path: <s>\nFrom z\n", s)
	}
	f.Fuzz(func(t *testing.T, sender, headers, msg string) {
		if msg == "" {
			return
		}
		saved := largeRecord
		largeRecord = 0
		defer func() { largeRecord = saved }()
		now := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
		parts := recordParts(sender, now, []byte(headers), []byte(msg))
		want := record(sender, now, []byte(headers), []byte(msg))
		if got := bytes.Join(parts, nil); !bytes.Equal(got, want) {
			t.Fatalf("parts %q, record %q", got, want)
		}
		if partsLen(parts) != int64(len(want)) || partsSum(parts) != intentSum(want) {
			t.Fatal("length or checksum of the parts differs from the record's")
		}
		if len(msg) > 1 && len(parts) < 3 {
			t.Fatalf("the large path was not taken: %d parts", len(parts))
		}
	})
}
