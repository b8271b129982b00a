package quota

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkReserve sets what the quota adds to a delivery beside what a delivery costs:
// "fsync" writes and fsyncs a 4 kB file (the least a Maildir delivery does), "reserve"
// is Reserve and Done on a Maildir whose maildirsize is read and appended to, "recount"
// the same with the file removed each time, so that 300 messages are counted and the file
// written again. Compare the three of one run as ratios.
func BenchmarkReserve(b *testing.B) {
	base := b.TempDir()
	md := filepath.Join(base, "u")
	for _, s := range []string{"cur", "new", "tmp"} {
		if err := os.MkdirAll(filepath.Join(md, s), 0o700); err != nil {
			b.Fatal(err)
		}
	}
	for i := range 300 {
		if err := os.WriteFile(filepath.Join(md, "cur", fmt.Sprintf("%d.host,S=4096:2,S", i)), nil, 0o600); err != nil {
			b.Fatal(err)
		}
	}
	root, err := openRootErr(base)
	if err != nil {
		b.Fatal(err)
	}
	defer root.Close()
	limit := Limit{Bytes: 1 << 40}
	msg := make([]byte, 4096)
	b.Run("fsync", func(b *testing.B) {
		p := filepath.Join(md, "tmp", "bench")
		for b.Loop() {
			f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
			if err != nil {
				b.Fatal(err)
			}
			f.Write(msg)
			f.Sync()
			f.Close()
		}
		os.Remove(p)
	})
	b.Run("reserve", func(b *testing.B) {
		for b.Loop() {
			// Each round appends 16 bytes: every ~300 rounds the file reaches 5120
			// bytes and is counted again, as in real use.
			r, err := Reserve(root, "u", &limit, 4096, time.Now())
			if err != nil {
				b.Fatal(err)
			}
			r.Cancel()
		}
	})
	b.Run("recount", func(b *testing.B) {
		for b.Loop() {
			os.Remove(filepath.Join(md, FileName))
			r, err := Reserve(root, "u", &limit, 4096, time.Now())
			if err != nil {
				b.Fatal(err)
			}
			r.Done()
		}
	})
}
