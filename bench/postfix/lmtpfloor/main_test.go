package main

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSession drives a pipelined session as Postfix's lmtp client sends it and checks
// every reply and the one Maildir file: dot-unstuffed, LF line ends, nothing left in tmp/.
func TestSession(t *testing.T) {
	dir := t.TempDir()
	for _, d := range []string{"tmp", "new", "cur"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	newDir, err := os.Open(filepath.Join(dir, "new"))
	if err != nil {
		t.Fatal(err)
	}
	defer newDir.Close()
	long := strings.Repeat("x", 100<<10) // longer than the reader's buffer
	in := "LHLO client\r\n" +
		"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\nRCPT TO:<c@example.com>\r\nDATA\r\n" +
		"Subject: s\r\n\r\n..dot\r\n..\r\n" + long + "\r\n.x" + long + "\r\n.\r\n" +
		"DATA\r\nBOGUS\r\nQUIT\r\n"
	var out bytes.Buffer
	s := &session{r: bufio.NewReaderSize(strings.NewReader(in), 64<<10), w: bufio.NewWriter(&out), dir: dir, newDir: newDir, prefix: "t."}
	s.serve()
	want := "220 lmtpfloor LMTP\r\n250-lmtpfloor\r\n250-PIPELINING\r\n250-ENHANCEDSTATUSCODES\r\n250 8BITMIME\r\n" +
		"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n250 2.0.0 Ok\r\n250 2.0.0 Ok\r\n" +
		"503 5.5.1 Error: need RCPT command\r\n500 5.5.2 Error: command not recognized\r\n221 2.0.0 Bye\r\n"
	if out.String() != want {
		t.Errorf("replies:\n%q\nwant\n%q", out.String(), want)
	}
	ents, _ := os.ReadDir(filepath.Join(dir, "new"))
	if len(ents) != 1 {
		t.Fatalf("new/ has %d files, want 1", len(ents))
	}
	got, err := os.ReadFile(filepath.Join(dir, "new", ents[0].Name()))
	if err != nil {
		t.Fatal(err)
	}
	if w := "Subject: s\n\n.dot\n.\n" + long + "\nx" + long + "\n"; string(got) != w {
		t.Errorf("message: %d bytes, want %d; starts %q", len(got), len(w), got[:min(len(got), 40)])
	}
	if tmp, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(tmp) != 0 {
		t.Errorf("tmp/ holds %d files", len(tmp))
	}
}
