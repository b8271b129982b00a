package mbox

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestConcurrentProcesses: 50 processes append to one mbox at once; the
// file parses back to exactly 50 intact records.
func TestConcurrentProcesses(t *testing.T) {
	t.Parallel()
	const n = 50
	_, dir := newRoot(t)
	var want []string
	cmds := make([]*exec.Cmd, n)
	outs := make([]strings.Builder, n)
	for i := range n {
		msg := concurrentMsg(i)
		want = append(want, "From "+testSender+"  "+epochDate+"\n"+testHeaders+string(appendQuoted(nil, []byte(msg)))+"\n")
		cmds[i] = helper("deliver", "MBOX_DIR="+dir, "MBOX_PATH=mbox", "MBOX_MSG="+msg)
		cmds[i].Stdout = &outs[i]
		cmds[i].Stderr = &outs[i]
	}
	for i, cmd := range cmds {
		if err := cmd.Start(); err != nil {
			t.Fatalf("start %d: %v", i, err)
		}
	}
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil || outs[i].String() != "ok\n" {
			t.Errorf("process %d: %v %q", i, err, outs[i].String())
		}
	}
	b := []byte(readFile(t, join(dir, "mbox")))
	var got []string
	for _, r := range splitRecords(b) {
		got = append(got, string(r))
	}
	slices.Sort(got)
	slices.Sort(want)
	if len(got) != n {
		t.Fatalf("%d records, want %d", len(got), n)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("record %d:\n got %q\nwant %q", i, got[i], want[i])
		}
	}
	assertMissing(t, join(dir, "mbox.lock"))

	// A reader that is not our code agrees.
	if _, err := exec.LookPath("python3"); err == nil || os.Getenv("CI") != "" {
		msgs := pythonRead(t, join(dir, "mbox"))
		if len(msgs) != n {
			t.Errorf("python3 mailbox.mbox finds %d messages, want %d", len(msgs), n)
		}
	}
}

// concurrentMsg is message i: a body long enough that interleaved writes
// would show, with a "From " line to quote.
func concurrentMsg(i int) string {
	return fmt.Sprintf("Subject: message %d\n\nFrom the start of %d\n%s", i, i, strings.Repeat(fmt.Sprintf("line of message %d\n", i), 200))
}

// TestPythonReader: Python's mailbox module, a reader other than our own
// code, finds every message with the same From_ sender, headers and body
// (the ">From" quoting is visible to it, as to every mboxo reader).
func TestPythonReader(t *testing.T) {
	t.Parallel()
	requireTool(t, "python3")
	root, dir := newRoot(t)
	msgs := []string{
		"Subject: one\nFrom: a@b\n\nplain body\n",
		"Subject: two\n\nFrom the body\n>From already quoted\nfrom lower\n",
		"Subject: three\n\nno final newline",
		"Subject: four\n\n",
		"Subject: five\n\n\n\nblank lines before and after\n\n\n",
	}
	for _, m := range msgs {
		if err := deliver(t, root, "mbox", m, opts()); err != nil {
			t.Fatal(err)
		}
	}
	got := pythonRead(t, join(dir, "mbox"))
	if len(got) != len(msgs) {
		t.Fatalf("python3 finds %d messages, want %d", len(got), len(msgs))
	}
	for i, m := range msgs {
		q := string(appendQuoted(nil, []byte(m)))
		wantBody := q[strings.Index(q, "\n\n")+2:]
		if got[i].From != testSender+"  "+epochDate {
			t.Errorf("message %d From_ = %q", i, got[i].From)
		}
		if got[i].DeliveredTo != "Alice@Example.org" || got[i].ReturnPath != "<sender@example.org>" {
			t.Errorf("message %d headers: %+v", i, got[i])
		}
		if got[i].Body != wantBody {
			t.Errorf("message %d body:\n got %q\nwant %q", i, got[i].Body, wantBody)
		}
	}
}

type pyMsg struct {
	From        string `json:"from"`
	ReturnPath  string `json:"return_path"`
	DeliveredTo string `json:"delivered_to"`
	Body        string `json:"body"`
}

func pythonRead(t *testing.T, name string) []pyMsg {
	t.Helper()
	python := requireTool(t, "python3")
	const script = `
import json, mailbox, sys
out = []
for m in mailbox.mbox(sys.argv[1], create=False):
    out.append({"from": m.get_from(), "return_path": m["Return-Path"],
                "delivered_to": m["Delivered-To"],
                "body": m.get_payload(decode=False)})
json.dump(out, sys.stdout)
`
	out, err := exec.Command(python, "-c", script, name).Output()
	if err != nil {
		t.Fatalf("python3: %v", err)
	}
	var msgs []pyMsg
	if err := json.Unmarshal(out, &msgs); err != nil {
		t.Fatalf("python3 output %q: %v", out, err)
	}
	return msgs
}
