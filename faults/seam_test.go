package faults

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSeams: errors a real file system will not produce on demand, injected
// through the packages' seams in the faultinject build. A failure leaves the
// mailbox exactly as it was and answers the status of docs/behaviour.md §7; the link
// cases never replace an existing file.
func TestSeams(t *testing.T) {
	eio := func(f string) string { return "5.3.0 " + failPrefix(f) + "error writing message: Input/output error" }
	cases := []struct {
		format, fault, row string
		exit               int
		line               string // "" means delivered
	}{
		{"maildir", "maildir:write-eio", "eio", 74, eio("maildir")},
		{"maildir", "maildir:fsync-eio", "eio", 74, eio("maildir")},
		{"maildir", "maildir:close-eio", "eio", 74, eio("maildir")},
		{"maildir", "maildir:dirsync-eio", "eio", 75, "4.2.0 maildir delivery failed: create maildir file: Input/output error"},
		{"maildir", "maildir:link-eperm", "link", 0, ""},
		{"maildir", "maildir:link-lie", "link", 0, ""},
		{"maildir", "maildir:link-taken", "link", 75, "4.2.0 maildir delivery failed: create maildir file: File exists"},
		{"maildir", "maildir:rename-einval", "link", 75, "4.2.0 maildir delivery failed: create maildir file: Operation not permitted"},
		{"mbox", "mbox:write-eio", "eio", 74, eio("mbox")},
		{"mbox", "mbox:half-eio", "eio", 74, eio("mbox")},
		{"mbox", "mbox:fsync-eio", "eio", 74, eio("mbox")},
		// The intent record cannot be written: delivered without one.
		{"mbox", "mbox:intent-eio", "eio", 0, ""},
	}
	reps := 1
	if full {
		reps = 10
	}
	for _, tc := range cases {
		t.Run(tc.fault, func(t *testing.T) {
			for i := range reps {
				b := newBox(t, tc.format, "")
				if r := b.deliver(message("seed", 3000), runOpt{bin: binPlain}); r.exit != 0 {
					t.Fatalf("seed delivery: %v", r)
				}
				before := b.snapshot()
				b.run1(tc.row)
				id := "faulty-" + itoa(i)
				// The delivery may run as another uid: a file it can append to.
				flog, err := os.CreateTemp("", "vdeliver-fault-log")
				if err != nil {
					t.Fatal(err)
				}
				flog.Close()
				t.Cleanup(func() { os.Remove(flog.Name()) })
				os.Chmod(flog.Name(), 0o666)
				r := b.deliver(message(id, 10000), runOpt{env: []string{"VDELIVER_FAULT=" + tc.fault, "VDELIVER_FAULT_LOG=" + flog.Name()}})
				// Otherwise an unwired or renamed fault would pass the delivered rows.
				if fired, _ := os.ReadFile(flog.Name()); !strings.Contains(string(fired), tc.fault+"\n") {
					t.Errorf("fault %s never fired (log %q)", tc.fault, fired)
				}
				bounds := map[string][2]int{"seed": {1, 1}}
				if tc.line == "" {
					b.status(tc.row, r, 0, delivered(tc.format))
					bounds[id] = [2]int{1, 1}
					b.check(tc.row, bounds)
					if inv := b.inventory(); inv.tmp != 0 {
						t.Errorf("%d files left in tmp/", inv.tmp)
					}
					continue
				}
				b.status(tc.row, r, tc.exit, tc.line)
				bounds[id] = [2]int{0, 0}
				after := b.snapshot()
				if tc.fault == "maildir:link-taken" {
					// The seam played another process that took the name: its
					// file must be there, untouched.
					checkOccupied(t, b, after)
				}
				if d := diffSnap(before, after); d != "" {
					t.Errorf("%s: mailbox changed: %s", tc.fault, d)
					tally.add(tc.row, tc.format, func(r *row) { r.partial++ })
				}
				b.check(tc.row, bounds)
			}
		})
	}
}

// checkOccupied finds the file the link-taken seam put in new/, checks its
// bytes and takes it out of the snapshot.
func checkOccupied(t *testing.T, b *box, snap map[string]string) {
	t.Helper()
	dir := filepath.Join(b.base, "alice", "new")
	ents, err := os.ReadDir(dir)
	must(t, err)
	found := 0
	for _, e := range ents {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		must(t, err)
		if string(data) == "occupied\n" {
			found++
			delete(snap, filepath.Join("alice", "new", e.Name()))
			os.Remove(filepath.Join(dir, e.Name()))
		} else if !strings.Contains(string(data), "X-Fault-Id: seed") {
			t.Errorf("new/%s: unexpected content %.60q", e.Name(), data)
		}
	}
	if found != 1 {
		t.Errorf("the file that took the new/ name: found %d, want 1 untouched", found)
	}
}
