package faults

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// TestConcurrent: 8 delivery processes at once, each delivering its messages
// one after the other into the same Maildir or mbox, while Python's mailbox
// module reads it: every message is there exactly once and whole, and the
// reader never saw a fragment or a duplicate.
func TestConcurrent(t *testing.T) {
	python, err := exec.LookPath("python3")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("python3 is missing (make deps installs it)")
		}
		t.Skip("python3 not installed")
	}
	const procs = 8
	per := 12
	if full {
		per = 200
	}
	for _, format := range formats {
		t.Run(format, func(t *testing.T) {
			b := newBox(t, format, "")
			stop := filepath.Join(b.dir, "stop")
			reader := exec.Command(python, "../testdata/faults/reader.py", format, filepath.Join(b.base, b.mailboxPath()), stop)
			reader.Stderr = os.Stderr
			out, err := reader.StdoutPipe()
			must(t, err)
			must(t, reader.Start())
			msgs := make([][][]byte, procs)
			for p := range procs {
				for i := range per {
					// Sizes from 100 bytes to about 60 kB, so writes of
					// very different lengths interleave.
					msgs[p] = append(msgs[p], message(fmt.Sprintf("c%d-%d", p, i), 100+(p*per+i)*7919%60000))
				}
				for _, m := range msgs[p] {
					b.expect(string(idRE.FindSubmatch(m)[1]), m)
				}
			}
			var wg sync.WaitGroup
			var mu sync.Mutex
			results := map[string]result{}
			for p := range procs {
				wg.Go(func() {
					for _, m := range msgs[p] {
						r := b.deliverQuiet(m, runOpt{bin: binPlain})
						mu.Lock()
						results[string(idRE.FindSubmatch(m)[1])] = r
						mu.Unlock()
					}
				})
			}
			wg.Wait()
			must(t, os.WriteFile(stop, nil, 0o644))
			var rep struct {
				Passes  int      `json:"passes"`
				SeenMax int      `json:"seen_max"`
				Errors  []string `json:"errors"`
			}
			if err := json.NewDecoder(out).Decode(&rep); err != nil {
				t.Fatalf("reader output: %v", err)
			}
			must(t, reader.Wait())
			bounds := map[string][2]int{}
			for id, r := range results {
				b.run1("concurrent")
				if b.status("concurrent", r, 0, delivered(format)) {
					bounds[id] = [2]int{1, 1}
				} else {
					bounds[id] = [2]int{0, 0} // deferred: the mailbox must not have it
				}
			}
			b.check("concurrent", bounds)
			for _, e := range rep.Errors {
				t.Errorf("python reader: %s", e)
			}
			tally.add("concurrent", format, func(r *row) { r.partial += len(rep.Errors) })
			if rep.SeenMax != procs*per {
				t.Errorf("python reader's last pass saw %d messages, want %d", rep.SeenMax, procs*per)
			}
			t.Logf("python reader: %d passes during and after %d deliveries", rep.Passes, procs*per)
		})
	}
}
