package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestMessage(t *testing.T) {
	for _, size := range []int{4096, 1000, 100 << 10} {
		m := message(size, "alice@example.com", "x.1")
		if len(m) != size || !bytes.HasSuffix(m, []byte("\r\n")) {
			t.Errorf("size %d: %d bytes, ends %q", size, len(m), m[len(m)-4:])
		}
		if bytes.Contains(m, []byte("\nFrom ")) || bytes.Contains(m, []byte("\n.")) {
			t.Errorf("size %d: a line starts with From or a dot", size)
		}
		if !bytes.Contains(m, []byte("\r\nX-Bench-Hold: yes\r\n")) || !bytes.Contains(m, []byte("\r\nMessage-ID: <bench.x.1@example.org>\r\n")) {
			t.Errorf("size %d: headers missing", size)
		}
	}
}

// TestWaitSent: status=sent lines are counted across reads that end inside a line, and
// any other status fails the run at once.
func TestWaitSent(t *testing.T) {
	log := filepath.Join(t.TempDir(), "maillog")
	sent := "Dec 06 05:01:02 mail postfix/lmtp[1]: ABC: to=<alice@example.com>, relay=mail.e2e.test[private/vdeliver-lmtp], delay=1, delays=1/0/0/0, dsn=2.0.0, status=sent (250 2.0.0 delivered to maildir)\n"
	other := "Dec 06 05:01:02 mail postfix/qmgr[2]: ABC: removed\n"
	if err := os.WriteFile(log, []byte(other+sent+sent[:40]), 0o644); err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(50 * time.Millisecond)
		f, _ := os.OpenFile(log, os.O_APPEND|os.O_WRONLY, 0)
		f.WriteString(sent[40:] + other)
		f.Close()
	}()
	if err := waitSent(log, 0, 2, time.Now().Add(5*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := waitSent(log, 0, 3, time.Now().Add(200*time.Millisecond)); err == nil || !strings.Contains(err.Error(), "2 of 3") {
		t.Errorf("3 wanted, 2 logged: %v", err)
	}
	deferred := strings.Replace(sent, "status=sent", "status=deferred", 1)
	if err := os.WriteFile(log, []byte(sent+deferred), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := waitSent(log, 0, 2, time.Now().Add(5*time.Second)); err == nil || !strings.Contains(err.Error(), "not sent") {
		t.Errorf("a deferred line: %v", err)
	}
}
