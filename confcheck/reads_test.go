package confcheck

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"unsafe"

	"vdeliver/maincf"
)

// TestCheckReadsEachTableOnce: check opens every table file once (inotify counts the
// opens the kernel sees), whatever it learns from it: the entries, postmap's warnings
// about the text, the table itself, and the domain list virtual_alias_domains, which is
// $virtual_alias_maps by default. A hash: table has a text and a .db, a texthash: table
// only its text.
func TestCheckReadsEachTableOnce(t *testing.T) {
	postmap, err := exec.LookPath("postmap")
	if err != nil {
		postmap = "/usr/sbin/postmap"
		if _, err := os.Stat(postmap); err != nil {
			t.Skip("Postfix's postmap is not installed (testdata/deps.sh installs it)")
		}
	}
	dir := t.TempDir()
	write := func(name, text string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "vmail"), 0o755); err != nil {
		t.Fatal(err)
	}
	write("main.cf", "virtual_mailbox_domains = example.com\nvirtual_mailbox_base = "+dir+"/vmail\n"+
		"virtual_mailbox_maps = texthash:"+dir+"/vmailbox\nvirtual_alias_maps = hash:"+dir+"/virtual\n"+
		"virtual_uid_maps = static:5000\nvirtual_gid_maps = static:5000\n")
	// A duplicate in each: the warnings and findings come from the one read.
	write("vmailbox", "alice@example.com example.com/alice/\nbob@example.com example.com/bob/\nbob@example.com example.com/bob2/\n")
	write("virtual", "postmaster@example.com alice@example.com\nPostmaster@example.com bob@example.com\n")
	if out, err := exec.Command(postmap, "-c", dir, "hash:"+filepath.Join(dir, "virtual")).CombinedOutput(); err != nil {
		t.Fatalf("postmap: %v: %s", err, out)
	}
	cf, err := maincf.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	files := []string{"vmailbox", "virtual", "virtual.db"}
	fd, err := syscall.InotifyInit1(syscall.IN_NONBLOCK | syscall.IN_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	wd := map[int32]string{}
	for _, f := range files {
		// The kernel merges an event into an identical one just before it that nobody
		// has read yet: reads and closes between two opens keep them apart.
		w, err := syscall.InotifyAddWatch(fd, filepath.Join(dir, f), syscall.IN_OPEN|syscall.IN_ACCESS|syscall.IN_CLOSE_NOWRITE|syscall.IN_CLOSE_WRITE)
		if err != nil {
			t.Fatal(err)
		}
		wd[int32(w)] = f
	}
	findings := Check(context.Background(), cf, Options{SyslogSocket: answeringSyslog(t, dir)})

	opens, closes := map[string]int{}, map[string]int{}
	buf := make([]byte, 64<<10)
	for {
		n, err := syscall.Read(fd, buf)
		if err == syscall.EAGAIN {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		for off := 0; off+syscall.SizeofInotifyEvent <= n; {
			ev := (*syscall.InotifyEvent)(unsafe.Pointer(&buf[off]))
			if ev.Mask&syscall.IN_OPEN != 0 {
				opens[wd[ev.Wd]]++
			}
			if ev.Mask&(syscall.IN_CLOSE_NOWRITE|syscall.IN_CLOSE_WRITE) != 0 {
				closes[wd[ev.Wd]]++
			}
			off += syscall.SizeofInotifyEvent + int(ev.Len)
		}
	}
	for _, f := range files {
		if opens[f] != 1 || closes[f] == 0 {
			t.Errorf("%s opened %d times, closed %d times; want one open, closed", f, opens[f], closes[f])
		}
	}
	// What the one read gave: both duplicates, at their lines.
	dups := 0
	for _, f := range findings {
		if f.Code == "table-duplicate" {
			dups++
		}
	}
	if dups != 2 {
		t.Errorf("findings %v: want the two table-duplicate findings", findings)
	}
}
