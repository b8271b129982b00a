package bdb

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// cpuTime is the process's user and system time: on a machine shared with other work
// it shows the cost of an operation where wall time shows the queue for the CPU.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// loop runs fn b.N times and reports its CPU time per operation besides the wall time.
func loop(b *testing.B, fn func(i int)) {
	b.ReportAllocs()
	start := cpuTime()
	i := 0
	for b.Loop() {
		fn(i)
		i++
	}
	b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
}

// benchN is the size of the benchmarks' tables.
const benchN = 1_000_000

var (
	benchOnce  sync.Once
	benchDir   string
	benchError error
)

// benchTables builds, once per process, a 1,000,000-entry source and the hash and btree
// files Postfix's postmap makes of it (about half a minute), or skips without postmap.
func benchTables(b *testing.B) string {
	b.Helper()
	postmap := "/usr/sbin/postmap"
	if _, err := os.Stat(postmap); err != nil {
		b.Skip("Postfix's postmap is not installed")
	}
	benchOnce.Do(func() {
		dir, err := os.MkdirTemp("", "bdb-bench")
		if err != nil {
			benchError = err
			return
		}
		benchDir = dir
		if err := os.WriteFile(filepath.Join(dir, "main.cf"), nil, 0o644); err != nil {
			benchError = err
			return
		}
		for _, kind := range []string{"hash", "btree"} {
			f, err := os.Create(filepath.Join(dir, kind))
			if err != nil {
				benchError = err
				return
			}
			w := bufio.NewWriter(f)
			for i := range benchN {
				fmt.Fprintf(w, "user%d@example%d.com\texample%d.com/user%d/\n", i, i%50, i%50, i)
			}
			w.Flush()
			f.Close()
			if out, err := exec.Command(postmap, "-c", dir, kind+":"+filepath.Join(dir, kind)).CombinedOutput(); err != nil {
				benchError = fmt.Errorf("postmap: %v: %s", err, out)
				return
			}
		}
	})
	if benchError != nil {
		b.Fatal(benchError)
	}
	return benchDir
}

// TestMain removes the benchmarks' tables.
func TestMain(m *testing.M) {
	code := m.Run()
	if benchDir != "" {
		os.RemoveAll(benchDir)
	}
	os.Exit(code)
}

// BenchmarkGet1M is one lookup (a hit, key with its NUL) in an open 1,000,000-entry
// table, as a delivery makes it once the table is open.
func BenchmarkGet1M(b *testing.B) {
	dir := benchTables(b)
	for _, kind := range []Kind{Hash, Btree} {
		b.Run(kind.String(), func(b *testing.B) {
			r, err := Open(filepath.Join(dir, kind.String()+".db"), kind)
			if err != nil {
				b.Fatal(err)
			}
			defer r.Close()
			ctx := context.Background()
			keys := make([][]byte, 1024)
			for i := range keys {
				n := (i * 7919) % benchN
				keys[i] = fmt.Appendf(nil, "user%d@example%d.com\x00", n, n%50)
			}
			loop(b, func(i int) {
				_, ok, err := r.Get(ctx, keys[i%len(keys)])
				if !ok || err != nil {
					b.Fatalf("Get(%q): %v %v", keys[i%len(keys)], ok, err)
				}
			})
		})
	}
}

// BenchmarkOpenGet1M is what one delivery pays for the table: open, one lookup, close.
func BenchmarkOpenGet1M(b *testing.B) {
	dir := benchTables(b)
	for _, kind := range []Kind{Hash, Btree} {
		b.Run(kind.String(), func(b *testing.B) {
			path := filepath.Join(dir, kind.String()+".db")
			ctx := context.Background()
			key := []byte("user999999@example49.com\x00")
			loop(b, func(int) {
				r, err := Open(path, kind)
				if err != nil {
					b.Fatal(err)
				}
				if _, ok, err := r.Get(ctx, key); !ok || err != nil {
					b.Fatalf("Get: %v %v", ok, err)
				}
				r.Close()
			})
		})
	}
}
