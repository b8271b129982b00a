package faults

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestDiskFull: a real tmpfs (root only) with free space F, and messages of
// sizes on both sides of F. A delivery either succeeds whole or defers 4.3.0
// with the mailbox exactly as it was.
func TestDiskFull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root; run as root (CI does)")
	}
	const free = 64 << 10
	sizes := []int{1, 4000, 40000, 60000, 63000, 64000, 65536, 66000, 70000, 100000, 300000}
	if full {
		sizes = nil
		for s := 1; s < 3*free; s += 1021 {
			sizes = append(sizes, s)
		}
	}
	for _, format := range formats {
		t.Run(format, func(t *testing.T) {
			var ok, deferred int
			for _, size := range sizes {
				b := newBox(t, format, "1m")
				if r := b.deliver(message("seed", 3000), runOpt{bin: binPlain}); r.exit != 0 {
					t.Fatalf("seed delivery: %v", r)
				}
				fill(t, b.base, free)
				before := b.snapshot()
				b.run1("disk-full")
				id := "full-" + itoa(size)
				r := b.deliver(message(id, size), runOpt{bin: binPlain})
				bounds := map[string][2]int{"seed": {1, 1}}
				if r.exit == 0 {
					ok++
					b.status("disk-full", r, 0, delivered(format))
					bounds[id] = [2]int{1, 1}
				} else {
					deferred++
					b.status("disk-full", r, 75, "4.3.0 "+failPrefix(format)+"error writing message: No space left on device")
					bounds[id] = [2]int{0, 0}
					if d := diffSnap(before, b.snapshot()); d != "" {
						t.Errorf("size %d: mailbox changed: %s", size, d)
						tally.add("disk-full", format, func(r *row) { r.partial++ })
					}
				}
				b.check("disk-full", bounds)
			}
			// Both sides of the boundary must have been reached, or the
			// test proved nothing.
			if ok == 0 || deferred == 0 {
				t.Errorf("%d deliveries succeeded and %d deferred; want some of each", ok, deferred)
			}
		})
	}
}

// fill grows a root-owned file beside the mailboxes until the file system
// has about free bytes left.
func fill(t *testing.T, base string, free int64) {
	t.Helper()
	var st syscall.Statfs_t
	must(t, syscall.Statfs(base, &st))
	avail := int64(st.Bavail) * st.Bsize
	if avail <= free {
		t.Fatalf("only %d bytes free before filling", avail)
	}
	must(t, os.WriteFile(filepath.Join(base, "filler"), make([]byte, avail-free), 0o600))
}
