package lookup

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Postfix 3.11's redirection of hash: and btree:, on lmdb and cdb files built by the
// real postmap (Debian's 3.7 has no redirection of its own, so its answers come from
// the lmdb:/cdb: names the redirection leads to).
func TestNonBDBRedirect(t *testing.T) {
	run, _ := postmapForLMDB(t, "lmdb")
	if _, err := run(nil, "-q", "x", "cdb:/nonexistent"); err != nil && strings.Contains(err.Error(), "unsupported dictionary type") {
		t.Skip("Postfix has no cdb support (apt-get install postfix-cdb)")
	}
	// Upper case in the directory: the custom mapping is asked with folded keys.
	dir := filepath.Join(t.TempDir(), "Postfix")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	build := func(typ, name, src string) string {
		t.Helper()
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := run(nil, typ+":"+path); err != nil {
			t.Fatal(err)
		}
		// Only the built file is left: a hash: table that is not redirected has
		// nothing to read.
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
		return path
	}
	// Each table exists in one form only, with a value naming that form, so an answer
	// shows which file was read.
	both := build("lmdb", "vmailbox", "alice@example.com lmdb-file/\n")
	build("cdb", "vmailbox", "alice@example.com cdb-file/\n") // vmailbox.cdb beside vmailbox.lmdb
	onlyLMDB := build("lmdb", "lmdbonly", "alice@example.com lmdbonly/\n")
	custom := build("lmdb", "custom", "hash:"+both+" cdb\nbtree lmdb\n")
	for _, tc := range []struct {
		name  string
		spec  string
		n     NonBDB
		value string // "" for an Open error
		err   string
	}{
		{"disabled: hash stays Berkeley DB", "hash:" + onlyLMDB, NonBDB{Level: "disable", DatabaseType: "lmdb"}, "", "lmdbonly"},
		{"no level: hash stays Berkeley DB", "hash:" + onlyLMDB, NonBDB{DatabaseType: "lmdb"}, "", "lmdbonly"},
		{"redirect hash to lmdb", "hash:" + both, NonBDB{Level: "enable-redirect", DatabaseType: "lmdb", CacheDBType: "cdb"}, "lmdb-file/", ""},
		{"level names ignore case", "hash:" + both, NonBDB{Level: "Enable-Redirect", DatabaseType: "lmdb"}, "lmdb-file/", ""},
		{"reindex level redirects too", "hash:" + both, NonBDB{Level: "enable-reindex", DatabaseType: "lmdb"}, "lmdb-file/", ""},
		{"redirect hash to cdb", "hash:" + both, NonBDB{Level: "enable-redirect", DatabaseType: "cdb", CacheDBType: "lmdb"}, "cdb-file/", ""},
		{"redirect btree to the cache type", "btree:" + both, NonBDB{Level: "enable-redirect", DatabaseType: "lmdb", CacheDBType: "cdb"}, "cdb-file/", ""},
		{"proxy: stripped, then redirected", "proxy:hash:" + both, NonBDB{Level: "enable-redirect", DatabaseType: "lmdb"}, "lmdb-file/", ""},
		{"lmdb: itself untouched", "lmdb:" + both, NonBDB{Level: "enable-redirect", DatabaseType: "cdb"}, "lmdb-file/", ""},
		{"missing file: hint", "hash:" + filepath.Join(dir, "none"), NonBDB{Level: "enable-reindex", DatabaseType: "lmdb"}, "", `no such file or directory (run "postmap lmdb:` + filepath.Join(dir, "none") + `")`},
		{"Debian's default database type", "hash:" + both, NonBDB{Level: "enable-redirect", DatabaseType: "hash", CacheDBType: "btree"}, "", "mapping from 'hash' to legacy type 'hash'"},
		{"btree to btree", "btree:" + both, NonBDB{Level: "enable-redirect", DatabaseType: "lmdb", CacheDBType: "btree"}, "", "to legacy type 'btree'"},
		{"types unset", "hash:" + both, NonBDB{Level: "enable-redirect"}, "", "mapping from 'hash' to legacy type 'hash'"},
		{"cache type unset", "btree:" + both, NonBDB{Level: "enable-redirect", DatabaseType: "lmdb"}, "", "mapping from 'btree' to legacy type 'btree'"},
		{"bad type", "hash:" + both, NonBDB{Level: "enable-redirect", DatabaseType: "lm-db"}, "", "syntax: 'lm-db'"},
		{"bad level", "hash:" + both, NonBDB{Level: "enable", DatabaseType: "lmdb"}, "", "invalid non-Berkeley-DB migration level"},
		{"custom: type:name first", "hash:" + both, NonBDB{Level: "enable-redirect", DatabaseType: "lmdb", CustomMapping: "lmdb:" + custom}, "cdb-file/", ""},
		{"custom: bare type next", "btree:" + both, NonBDB{Level: "enable-redirect", CacheDBType: "cdb", CustomMapping: "lmdb:" + custom}, "lmdb-file/", ""},
		{"custom: no answer, the default", "hash:" + onlyLMDB, NonBDB{Level: "enable-redirect", DatabaseType: "lmdb", CustomMapping: "lmdb:" + custom}, "lmdbonly/", ""},
		{"custom inline, keys folded", "hash:" + both, NonBDB{Level: "enable-redirect", DatabaseType: "lmdb", CustomMapping: "inline:{HASH=cdb}"}, "cdb-file/", ""},
		{"custom inline, empty answer", "hash:" + both, NonBDB{Level: "enable-redirect", DatabaseType: "lmdb", CustomMapping: "inline:{{hash=}}"}, "", "syntax: ''"},
		{"custom of legacy type", "hash:" + both, NonBDB{Level: "enable-redirect", DatabaseType: "lmdb", CustomMapping: "hash:" + custom}, "", "must not use legacy type: 'hash'"},
		{"custom missing", "hash:" + both, NonBDB{Level: "enable-redirect", DatabaseType: "lmdb", CustomMapping: "lmdb:" + filepath.Join(dir, "nocustom")}, "", "lookup error for 'hash:" + both},
		{"custom through postmap", "hash:" + both, NonBDB{Level: "enable-redirect", DatabaseType: "lmdb", CustomMapping: "texthash:" + custom}, "", "not texthash"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tab, err := Open(tc.spec, Options{NonBDB: tc.n})
			if tc.value == "" {
				if err == nil {
					v, found, err := tab.Lookup(context.Background(), "alice@example.com")
					tab.Close()
					t.Fatalf("Open succeeded; Lookup = %q, %v, %v", v, found, err)
				}
				if !strings.Contains(err.Error(), tc.err) || !strings.HasPrefix(err.Error(), "table "+tc.spec+": ") {
					t.Fatalf("error %q; want it to name the table and say %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer tab.Close()
			if tab.Name() != tc.spec || !tab.Fixed() {
				t.Errorf("Name() = %q, Fixed() = %v", tab.Name(), tab.Fixed())
			}
			v, found, err := tab.Lookup(context.Background(), "alice@example.com")
			if err != nil || !found || v != tc.value {
				t.Fatalf("Lookup = %q, %v, %v; want %q", v, found, err, tc.value)
			}
			if _, found, err := tab.Lookup(context.Background(), "bob@example.com"); err != nil || found {
				t.Fatalf("absent key: %v, %v", found, err)
			}
		})
	}
}

// A bad level is a syntax error even for a table that would not be redirected: Postfix
// programs refuse to start with it.
func TestNonBDBBadLevelIsSyntax(t *testing.T) {
	_, err := Open("hash:/nonexistent", Options{NonBDB: NonBDB{Level: "yes"}})
	if !errors.Is(err, ErrSyntax) {
		t.Fatalf("error %v; want ErrSyntax", err)
	}
}
