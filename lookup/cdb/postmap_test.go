package cdb

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// postmapSource parses the subset of postmap(1) source text used by these
// tests (no continuation lines, unique keys) into records as postmap stores
// them in a cdb file: key folded to lower case, no trailing NUL unless nul.
func postmapSource(t testing.TB, src []byte, nul bool) []kv {
	t.Helper()
	var recs []kv
	sc := bufio.NewScanner(bytes.NewReader(src))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.IndexAny(line, " \t")
		if i < 0 {
			t.Fatalf("bad source line %q", line)
		}
		k, v := line[:i], line[i:]
		k, v = strings.ToLower(k), strings.TrimSpace(v)
		if nul {
			k, v = k+"\x00", v+"\x00"
		}
		recs = append(recs, kv{k, v})
	}
	return recs
}

// Files written by Debian's postmap 3.7.11, committed so these checks run
// without Postfix: the Reader answers as postmap -q does, and the Writer,
// given the same records in the same order, writes the same bytes.
func TestPostmapGolden(t *testing.T) {
	t.Parallel()
	src, err := os.ReadFile("testdata/postmap.src")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		file string
		nul  bool // postmap -N: keys and values end in NUL
	}{
		{"testdata/postmap.cdb", false},
		{"testdata/postmap-nul.cdb", true},
	} {
		t.Run(filepath.Base(tc.file), func(t *testing.T) {
			t.Parallel()
			recs := postmapSource(t, src, tc.nul)
			r := open(t, tc.file)
			for _, e := range recs {
				mustGet(t, r, e.k, e.v, true)
			}
			other := "\x00"
			if tc.nul {
				other = ""
			}
			for _, k := range []string{"user@example.com" + other, "User@Example.COM", "nobody@example.org"} {
				mustGet(t, r, k, "", false)
			}
			want, err := os.ReadFile(tc.file)
			if err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(build(t, recs))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("Writer's file differs from postmap's (%d vs %d bytes)", len(got), len(want))
			}
		})
	}
}

// postfix returns a function running postmap with a scratch configuration
// directory, or skips (fails under CI=true) when postmap cannot do cdb.
func postfix(t *testing.T) func(args ...string) ([]byte, error) {
	t.Helper()
	unavailable := func(format string, args ...any) {
		t.Helper()
		msg := fmt.Sprintf(format, args...) + " (Debian: apt-get install postfix postfix-cdb)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	postmap, err := exec.LookPath("postmap")
	if err != nil {
		postmap = "/usr/sbin/postmap"
	}
	postconf := filepath.Join(filepath.Dir(postmap), "postconf")
	if _, err := os.Stat(postmap); err != nil {
		unavailable("postmap not installed: %v", err)
	}
	// A scratch main.cf: the machine need not be configured for mail.
	conf := t.TempDir()
	if err := os.WriteFile(filepath.Join(conf, "main.cf"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(prog string, args ...string) ([]byte, error) {
		cmd := exec.Command(prog, args...)
		cmd.Env = append(os.Environ(), "MAIL_CONFIG="+conf)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			err = fmt.Errorf("%s %q: %w: %s", filepath.Base(prog), args, err, stderr.Bytes())
		}
		return out, err
	}
	types, err := run(postconf, "-m")
	if err != nil {
		unavailable("postconf -m: %v", err)
	}
	if !bytes.Contains(append([]byte("\n"), types...), []byte("\ncdb\n")) {
		unavailable("postfix has no cdb support (postconf -m: %q)", types)
	}
	return func(args ...string) ([]byte, error) { return run(postmap, args...) }
}

// Both directions on one 100,000-entry table: postmap's file read
// by Reader, and Writer's file read by postmap -q.
func TestPostmapCrossCheck(t *testing.T) {
	if testing.Short() {
		t.Skip("runs postmap on 100,000 lines")
	}
	t.Parallel()
	postmap := postfix(t)
	dir := t.TempDir()
	const n = 100000
	var src bytes.Buffer
	recs := make([]kv, 0, n)
	for i := range n {
		// Mixed case: postmap folds keys, not values.
		key := fmt.Sprintf("Key%d@Example.ORG", i)
		if i%3 == 0 {
			key = strings.ToUpper(key)
		}
		val := fmt.Sprintf("Value%d/Maildir/", i)
		fmt.Fprintf(&src, "%s %s\n", key, val)
		recs = append(recs, kv{strings.ToLower(key), val})
	}
	if err := os.WriteFile(filepath.Join(dir, "theirs"), src.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := postmap("cdb:" + filepath.Join(dir, "theirs")); err != nil {
		t.Fatal(err)
	}

	t.Run("Reader reads postmap", func(t *testing.T) {
		r := open(t, filepath.Join(dir, "theirs.cdb"))
		for _, e := range recs {
			mustGet(t, r, e.k, e.v, true)
		}
		for _, k := range []string{"KEY0@EXAMPLE.ORG", "key0@example.org\x00", fmt.Sprintf("key%d@example.org", n)} {
			mustGet(t, r, k, "", false)
		}
	})

	ours := filepath.Join(dir, "ours")
	w, err := Create(ours + ".cdb")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range recs {
		if err := w.Add([]byte(e.k), []byte(e.v)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}

	t.Run("postmap reads Writer", func(t *testing.T) {
		// One process per query: a sample spread over the table.
		for i := 0; i < n; i += n / 40 {
			e := recs[i+i%7]
			out, err := postmap("-q", e.k, "cdb:"+ours)
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.TrimSuffix(string(out), "\n"); got != e.v {
				t.Errorf("postmap -q %q = %q, want %q", e.k, got, e.v)
			}
		}
		_, err := postmap("-q", "nobody@example.org", "cdb:"+ours)
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 1 {
			t.Errorf("postmap -q of a missing key: %v, want exit status 1", err)
		}
	})

	t.Run("same bytes", func(t *testing.T) {
		theirs, err := os.ReadFile(filepath.Join(dir, "theirs.cdb"))
		if err != nil {
			t.Fatal(err)
		}
		mine, err := os.ReadFile(ours + ".cdb")
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(mine, theirs) {
			t.Errorf("Writer's file differs from postmap's (%d vs %d bytes)", len(mine), len(theirs))
		}
	})
}
