package lookup

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/rogpeppe/go-internal/txtar"
)

var update = flag.Bool("update", false, "rewrite the want sections of testdata/*.txtar")

// goldenCase is one testdata/*.txtar file:
//
//	-- spec --     a table type ("texthash"), the table file being "table"; or a whole
//	               spec ("inline:{a=1}") when there is no table section; "source" is
//	               the text postmap compiles, read with ReadSource's rules (keys
//	               folded, the first duplicate wins) and compared with the hash: table
//	               Postfix's postmap builds from it
//	-- options --  optional: "paranoid"
//	-- table --    the table file, byte for byte
//	-- queries --  one key per line
//	-- want --     what render prints
type goldenCase struct {
	path    string
	archive *txtar.Archive
	spec    string
	table   []byte
	hasFile bool
	queries []string
	options string
}

func loadGolden(t *testing.T, path string) *goldenCase {
	t.Helper()
	a, err := txtar.ParseFile(path)
	if err != nil {
		t.Fatal(err)
	}
	c := &goldenCase{path: path, archive: a}
	for _, f := range a.Files {
		switch f.Name {
		case "spec":
			c.spec = strings.TrimSpace(string(f.Data))
		case "table":
			c.table, c.hasFile = f.Data, true
		case "queries":
			q := strings.TrimSuffix(string(f.Data), "\n")
			if q != "" {
				c.queries = strings.Split(q, "\n")
			}
		case "options":
			c.options = strings.TrimSpace(string(f.Data))
		case "want":
		default:
			t.Fatalf("%s: unknown section %q", path, f.Name)
		}
	}
	if c.spec == "" {
		t.Fatalf("%s: no spec section", path)
	}
	return c
}

// open writes the table into dir and opens it; warnings and errors name the file
// "table" so the output does not depend on dir.
func (c *goldenCase) open(dir string, opt Options) (Table, string, error) {
	spec := c.spec
	file := filepath.Join(dir, "table")
	if c.hasFile {
		if err := os.WriteFile(file, c.table, 0o644); err != nil {
			return nil, "", err
		}
		spec = c.spec + ":" + file
	}
	if c.spec == "source" {
		src, err := ReadSource(file, SourceOptions{Warn: opt.Warn})
		if err != nil {
			return nil, "", err
		}
		m := make(map[string]string, len(src.Entries))
		for _, e := range src.Entries {
			m[e.Key] = e.Value
		}
		return &textTable{base: base{name: spec, fixed: true}, m: m}, "hash:" + file, nil
	}
	t, err := Open(spec, opt)
	return t, spec, err
}

func (c *goldenCase) render(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	var out strings.Builder
	clean := func(s string) string { return strings.ReplaceAll(s, filepath.Join(dir, "table"), "table") }
	opt := Options{Paranoid: c.options == "paranoid", Warn: func(m string) { fmt.Fprintf(&out, "warning: %s\n", clean(m)) }}
	tab, _, err := c.open(dir, opt)
	if err != nil {
		fmt.Fprintf(&out, "open error: %s\n", clean(err.Error()))
		return out.String()
	}
	defer tab.Close()
	fmt.Fprintf(&out, "fixed: %v\n", tab.Fixed())
	for _, q := range c.queries {
		v, found, err := tab.Lookup(context.Background(), q)
		switch {
		case err != nil:
			fmt.Fprintf(&out, "%s: error: %s\n", q, clean(err.Error()))
		case !found:
			fmt.Fprintf(&out, "%s: not found\n", q)
		default:
			fmt.Fprintf(&out, "%s=%s\n", q, v)
		}
	}
	return out.String()
}

func goldenFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("testdata/*.txtar")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files: %v", err)
	}
	return files
}

func TestGolden(t *testing.T) {
	for _, path := range goldenFiles(t) {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".txtar"), func(t *testing.T) {
			t.Parallel()
			c := loadGolden(t, path)
			got := c.render(t)
			if *update {
				for i := range c.archive.Files {
					if c.archive.Files[i].Name == "want" {
						c.archive.Files[i].Data = []byte(got)
					}
				}
				if err := os.WriteFile(path, txtar.Format(c.archive), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			var want string
			for _, f := range c.archive.Files {
				if f.Name == "want" {
					want = string(f.Data)
				}
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%s: (-want +got)\n%s", path, diff)
			}
		})
	}
}

// realPostmap returns Debian's postmap and a configuration directory for it, or skips
// (fails under CI=true, where postfix must be installed).
func realPostmap(t *testing.T) (string, string) {
	t.Helper()
	bin, err := exec.LookPath("/usr/sbin/postmap")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true but /usr/sbin/postmap is missing: install postfix")
		}
		t.Skip("/usr/sbin/postmap missing: install postfix to cross-check against Postfix")
	}
	dir := t.TempDir()
	// compatibility_level 3.6 turns smtputf8_enable on, as on a current installation.
	if err := os.WriteFile(filepath.Join(dir, "main.cf"), []byte("compatibility_level = 3.6\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return bin, dir
}

// postmapQuery asks the real postmap; -f keeps the key as given, as virtual(8) does.
func postmapQuery(t *testing.T, bin, cfg, key, spec string) (string, bool) {
	t.Helper()
	cmd := exec.Command(bin, "-c", cfg, "-f", "-q", key, spec)
	out, err := cmd.Output()
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() == 1 && !strings.Contains(string(ee.Stderr), "fatal:") {
		return "", false
	}
	if err != nil {
		t.Fatalf("postmap -q %q %s: %v %s", key, spec, err, out)
	}
	return strings.TrimSuffix(string(out), "\n"), true
}

// TestGoldenAgainstPostmap answers every golden query of the file-based text, regexp and
// pcre tables with Debian's postmap on the same file and requires the same answer. Where
// vdeliver deliberately differs (a rule Postfix would skip is an Open error here; a
// texthash duplicate makes the table unusable) there is nothing to compare.
func TestGoldenAgainstPostmap(t *testing.T) {
	bin, cfg := realPostmap(t)
	for _, path := range goldenFiles(t) {
		c := loadGolden(t, path)
		switch c.spec {
		case "source", "texthash", "regexp", "pcre":
		default:
			continue
		}
		if !c.hasFile || c.options == "paranoid" {
			continue
		}
		tab, spec, err := c.open(t.TempDir(), Options{})
		if err != nil {
			// vdeliver refuses this table on purpose; TestGolden asserts the refusal.
			continue
		}
		t.Run(strings.TrimSuffix(filepath.Base(path), ".txtar"), func(t *testing.T) {
			defer tab.Close()
			// The source text against the hash: table Postfix builds from it, read
			// both by postmap and by vdeliver.
			var db Table
			if c.spec == "source" {
				if out, err := exec.Command(bin, "-c", cfg, spec).CombinedOutput(); err != nil {
					t.Fatalf("postmap %s: %v\n%s", spec, err, out)
				}
				if db, err = Open(spec, Options{}); err != nil {
					t.Fatal(err)
				}
				defer db.Close()
			}
			for _, q := range c.queries {
				v, found, err := tab.Lookup(context.Background(), q)
				if err != nil {
					continue
				}
				pv, pfound := postmapQuery(t, bin, cfg, q, spec)
				if found != pfound || v != pv {
					t.Errorf("key %q: vdeliver (%q, %v), postmap (%q, %v)", q, v, found, pv, pfound)
				}
				if db != nil {
					if dv, dfound, err := db.Lookup(context.Background(), q); err != nil || dfound != pfound || dv != pv {
						t.Errorf("key %q: vdeliver's %s (%q, %v, %v), postmap (%q, %v)", q, spec, dv, dfound, err, pv, pfound)
					}
				}
			}
		})
	}
}
