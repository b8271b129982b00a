package lookup

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// genTable writes an n-entry postmap source with what real tables hold and what
// stresses the format: mixed case, 8-bit (UTF-8) keys and values, a few invalid UTF-8
// lines (postmap skips them), keys and values longer than a quarter page (stored
// off-page), and duplicate keys, some differing only in case (postmap keeps the first).
// It returns keys that are in no line, to be asked as misses.
func genTable(t testing.TB, path string, n int, seed uint64) (absent []string) {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 0))
	const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_+"
	word := func(min, max int) string {
		b := make([]byte, min+r.IntN(max-min+1))
		for i := range b {
			b[i] = letters[r.IntN(len(letters))]
		}
		return string(b)
	}
	eight := []string{"é", "Ä", "ß", "日本", "ü", "Ω"}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	var keys []string
	for i := range n {
		var key string
		switch p := r.IntN(1000); {
		case p < 10 && len(keys) > 0: // duplicate, maybe in another case
			key = keys[r.IntN(len(keys))]
			if r.IntN(2) == 0 {
				key = strings.ToUpper(key)
			}
		case p < 20: // off-page key
			key = word(1100, 3000) + "@example.com"
		case p < 60:
			key = word(1, 12) + eight[r.IntN(len(eight))] + word(0, 5) + "@Example.ORG"
		case p < 63: // invalid UTF-8: postmap skips the line
			key = word(1, 8) + "\xff\xfe@example.net"
		default:
			key = fmt.Sprintf("%s%d@%s.example", word(1, 20), i, word(2, 10))
		}
		var value string
		switch p := r.IntN(1000); {
		case p < 10: // off-page value
			value = word(1100, 9000)
		case p < 50:
			value = word(1, 10) + " " + eight[r.IntN(len(eight))] + " " + word(1, 10)
		default:
			value = fmt.Sprintf("%s/%s%d/", word(3, 12), word(1, 8), i)
		}
		keys = append(keys, key)
		fmt.Fprintf(w, "%s\t%s\n", key, value)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	for i := range 2000 {
		absent = append(absent, fmt.Sprintf("absent-%s%d@nowhere.example", strings.ToLower(word(1, 10)), i))
	}
	// Stored keys in the wrong case, or with an extra byte, are misses too.
	for i := 0; i < len(keys) && i < 500; i++ {
		absent = append(absent, strings.ToUpper(keys[i])+"X", keys[i]+"\x01")
	}
	return absent
}

// postmapDump is "postmap -s": every record Postfix stored, key and value up to the NUL.
func postmapDump(t testing.TB, bin, cfg, spec string) map[string]string {
	t.Helper()
	cmd := exec.Command(bin, "-c", cfg, "-s", spec)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	recs := map[string]string{}
	sc := bufio.NewScanner(out)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "\t")
		if !ok {
			t.Fatalf("postmap -s: line %q", sc.Text())
		}
		recs[k] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("postmap -s %s: %v", spec, err)
	}
	return recs
}

// postmapBatch is "postmap -f -q -": Postfix's answer for each key, one process.
func postmapBatch(t testing.TB, bin, cfg, spec string, keys []string) map[string]string {
	t.Helper()
	cmd := exec.Command(bin, "-c", cfg, "-f", "-q", "-", spec)
	cmd.Stdin = strings.NewReader(strings.Join(keys, "\n") + "\n")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	// Exit 1: no key found.
	if err != nil && !(cmd.ProcessState != nil && cmd.ProcessState.ExitCode() == 1 && stderr.Len() == 0) {
		t.Fatalf("postmap -q - %s: %v: %s", spec, err, stderr.Bytes())
	}
	found := map[string]string{}
	for _, line := range strings.Split(strings.TrimSuffix(string(out), "\n"), "\n") {
		if k, v, ok := strings.Cut(line, "\t"); ok {
			found[k] = v
		}
	}
	return found
}

// TestDBAgainstPostmap: tables of generated entries, built by Postfix's postmap as hash:
// and btree:, give vdeliver the same answer as Postfix for every stored key (from
// "postmap -s") and for keys that are absent (through "postmap -q -"). The 1,000,000-entry
// tables take minutes; they run with VDELIVER_BDB_1M=1 (make tables-1m, part of make test).
func TestDBAgainstPostmap(t *testing.T) {
	bin, cfg := realPostmap(t)
	sizes := []int{10, 10_000}
	if os.Getenv("VDELIVER_BDB_1M") == "1" {
		sizes = append(sizes, 1_000_000)
	}
	for _, n := range sizes {
		for _, typ := range []string{"hash", "btree"} {
			t.Run(fmt.Sprintf("%s-%d", typ, n), func(t *testing.T) {
				dir := t.TempDir()
				path := filepath.Join(dir, "table")
				absent := genTable(t, path, n, uint64(n))
				spec := typ + ":" + path
				start := time.Now()
				if out, err := exec.Command(bin, "-c", cfg, spec).CombinedOutput(); err != nil {
					t.Fatalf("postmap %s: %v\n%.2000s", spec, err, out)
				}
				built := time.Since(start)
				recs := postmapDump(t, bin, cfg, spec)
				if len(recs) < n*9/10 {
					t.Fatalf("postmap stored %d records of %d lines", len(recs), n)
				}
				tab, err := Open(spec, Options{})
				if err != nil {
					t.Fatal(err)
				}
				defer tab.Close()
				ctx := context.Background()
				start = time.Now()
				offPage := 0
				for k, want := range recs {
					v, found, err := tab.Lookup(ctx, k)
					if err != nil || !found || v != want {
						t.Fatalf("Lookup(%.60q) = %.60q, %v, %v; postmap -s has %.60q", k, v, found, err, want)
					}
					if len(k) > 1024 || len(v) > 1024 {
						offPage++
					}
				}
				looked := time.Since(start)
				// Postfix's answers for the absent keys and, up to 10,000, the stored ones.
				ask := absent
				for k := range recs {
					if len(ask) >= len(absent)+10_000 {
						break
					}
					ask = append(ask, k)
				}
				pm := postmapBatch(t, bin, cfg, spec, ask)
				for _, k := range ask {
					v, found, err := tab.Lookup(ctx, k)
					pv, pfound := pm[k]
					if err != nil || found != pfound || v != pv {
						t.Fatalf("Lookup(%.60q) = %.60q, %v, %v; postmap -q: %.60q, %v", k, v, found, err, pv, pfound)
					}
				}
				if n >= 10_000 && offPage == 0 {
					t.Errorf("no off-page key or value among %d records", len(recs))
				}
				if n <= 10_000 {
					bigEndian(t, typ, path, recs, absent)
				}
				t.Logf("%d lines, %d records (%d with an off-page key or value); postmap build %v; %d lookups %v (%v each); %d compared with postmap -q",
					n, len(recs), offPage, built.Round(time.Millisecond), len(recs), looked.Round(time.Millisecond), looked/time.Duration(len(recs)), len(ask))
			})
		}
	}
}

// bigEndian copies the table into a big-endian file with 512-byte pages and page
// checksums (Berkeley DB's own db_dump and db_load -c db_lorder=4321, db_pagesize=512,
// chksum=1: what a big-endian machine writes, with long chains of off-page items and
// 32-byte page headers) and requires the same answers from it.
// Without db5.3-util it is skipped (CI installs it).
func bigEndian(t *testing.T, typ, path string, recs map[string]string, absent []string) {
	t.Helper()
	dump, err1 := exec.LookPath("db5.3_dump")
	load, err2 := exec.LookPath("db5.3_load")
	if err1 != nil || err2 != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true but db5.3_dump or db5.3_load is missing: apt-get install db5.3-util")
		}
		t.Log("db5.3-util not installed: no big-endian copy")
		return
	}
	be := path + "-be"
	d := exec.Command(dump, path+".db")
	l := exec.Command(load, "-c", "db_lorder=4321", "-c", "db_pagesize=512", "-c", "chksum=1", be+".db")
	pipe, err := d.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	l.Stdin = pipe
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	if out, err := l.CombinedOutput(); err != nil {
		t.Fatalf("db5.3_load: %v: %s", err, out)
	}
	if err := d.Wait(); err != nil {
		t.Fatalf("db5.3_dump: %v", err)
	}
	if b, err := os.ReadFile(be + ".db"); err != nil || len(b) < 32 || b[12] != 0 || b[20] != 0 || b[21] != 0 || b[22] != 2 || b[23] != 0 || b[26]&1 == 0 {
		t.Fatalf("%s.db is not a big-endian file of 512-byte pages with checksums: %v", be, err)
	}
	tab, err := Open(typ+":"+be, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer tab.Close()
	ctx := context.Background()
	for k, want := range recs {
		if v, found, err := tab.Lookup(ctx, k); err != nil || !found || v != want {
			t.Fatalf("big-endian: Lookup(%.60q) = %.60q, %v, %v; postmap -s has %.60q", k, v, found, err, want)
		}
	}
	for _, k := range absent {
		if v, found, err := tab.Lookup(ctx, k); err != nil || found {
			t.Fatalf("big-endian: Lookup(%.60q) = %.60q, %v, %v; want a miss", k, v, found, err)
		}
	}
}

// postmap rewrites a .db in place (truncate, refill) under an exclusive flock. A table
// kept open across the rebuild answers from the new file, never from a mix: each
// lookup takes the shared lock and reads the metadata page again. Lookups run in a
// loop all through the rebuilds and must always see one version or the other.
func TestDBRebuiltWhileOpen(t *testing.T) {
	bin, cfg := realPostmap(t)
	for _, typ := range []string{"hash", "btree"} {
		t.Run(typ, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "vmailbox")
			write := func(version string, n int) {
				var b strings.Builder
				for i := range n {
					fmt.Fprintf(&b, "user%d@example.com %s/user%d/\n", i, version, i)
				}
				if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
					t.Fatal(err)
				}
				if out, err := exec.Command(bin, "-c", cfg, typ+":"+path).CombinedOutput(); err != nil {
					t.Fatalf("postmap: %v: %s", err, out)
				}
			}
			write("old", 20_000)
			tab, err := Open(typ+":"+path, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer tab.Close()
			ctx := context.Background()
			done := make(chan struct{})
			// Several lookers share the one open table, as parallel LMTP sessions do:
			// each lookup must hold the shared lock for its whole length, whoever else
			// finishes meanwhile.
			const lookers = 4
			errc := make(chan error, lookers)
			var wg sync.WaitGroup
			for g := range lookers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := g; ; i += lookers {
						select {
						case <-done:
							return
						default:
						}
						k := i % 20_000
						v, found, err := tab.Lookup(ctx, fmt.Sprintf("user%d@example.com", k))
						if err != nil || !found || (v != fmt.Sprintf("old/user%d/", k) && v != fmt.Sprintf("new/user%d/", k)) {
							errc <- fmt.Errorf("during the rebuild: Lookup(user%d@example.com) = %q, %v, %v", k, v, found, err)
							return
						}
					}
				}()
			}
			write("new", 20_000)
			write("old", 20_000)
			write("new", 20_000)
			close(done)
			wg.Wait()
			close(errc)
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
			if v, found, err := tab.Lookup(ctx, "user7@example.com"); v != "new/user7/" || !found || err != nil {
				t.Fatalf("after the rebuild: %q, %v, %v; want new/user7/", v, found, err)
			}
		})
	}
}

// A file holding keys in both forms (postmap -N, then postmap -n -i): like Postfix,
// the first hit decides which form the table uses, and later lookups try only that
// one. "postmap -q -" asks its keys in one process, so it shows Postfix's memory.
func TestDBRemembersKeyForm(t *testing.T) {
	bin, cfg := realPostmap(t)
	for _, typ := range []string{"hash", "btree"} {
		path := filepath.Join(t.TempDir(), "mixed")
		if err := os.WriteFile(path, []byte("a@x withnul\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(bin, "-N", "-c", cfg, typ+":"+path).CombinedOutput(); err != nil {
			t.Fatalf("postmap -N: %v: %s", err, out)
		}
		add := exec.Command(bin, "-n", "-i", "-c", cfg, typ+":"+path)
		add.Stdin = strings.NewReader("b@x nonul\n")
		if out, err := add.CombinedOutput(); err != nil {
			t.Fatalf("postmap -n -i: %v: %s", err, out)
		}
		for _, order := range [][]string{{"a@x", "b@x"}, {"b@x", "a@x"}} {
			pm := postmapBatch(t, bin, cfg, typ+":"+path, order)
			if len(pm) != 1 {
				t.Fatalf("%s: postmap -q - %q answered %q; want only the first key", typ, order, pm)
			}
			tab, err := Open(typ+":"+path, Options{})
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range order {
				v, found, err := tab.Lookup(context.Background(), k)
				pv, pfound := pm[k]
				if err != nil || found != pfound || v != pv {
					t.Errorf("%s, keys %q: Lookup(%q) = %q, %v, %v; postmap: %q, %v", typ, order, k, v, found, err, pv, pfound)
				}
			}
			tab.Close()
		}
	}
}
