package lookup

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync/atomic"
	"time"

	"vdeliver/lookup/bdb"
)

// dbTable is hash:/path or btree:/path, reading the Berkeley DB file /path.db
// that postmap(1) writes, as Postfix's dict_db.c does. The source text /path is
// not read: Postfix's daemons do not read it either.
type dbTable struct {
	base
	r *bdb.Reader
	// try holds the key forms still worth trying, as for cdb: postmap on Linux
	// writes keys and values with a trailing NUL, other tools (and postmap -n)
	// without.
	try atomic.Int32
}

func openDB(spec, typ, path string, opt *Options) (Table, error) {
	kind := bdb.Hash
	if typ == "btree" {
		kind = bdb.Btree
	}
	file := path + ".db"
	r, err := bdb.Open(file, kind)
	if errors.Is(err, fs.ErrNotExist) {
		// The source was never compiled, or postmap(1) was not run after a move.
		return nil, fmt.Errorf("table %s: %w; run \"postmap %s:%s\"", spec, err, typ, path)
	}
	if err != nil {
		return nil, fmt.Errorf("table %s: %w", spec, err)
	}
	// As dict_db.c warns: the source was edited after the last postmap (and
	// not in the last 100 seconds, when postmap may still be running).
	if src, err := os.Stat(path); err == nil {
		if db, err := os.Stat(file); err == nil && src.ModTime().After(db.ModTime()) && src.ModTime().Before(time.Now().Add(-100*time.Second)) {
			opt.warn(Warning{File: path, Kind: WarnStaleDB, Msg: fmt.Sprintf("%s is older than its source; run \"postmap %s:%s\"", file, typ, path)})
		}
	}
	t := &dbTable{base: base{name: spec, fixed: true}, r: r}
	t.try.Store(tryNul | tryNoNul)
	return t, nil
}

func (t *dbTable) Lookup(ctx context.Context, key string) (string, bool, error) {
	try := t.try.Load()
	var keys [][]byte
	if try&tryNul != 0 {
		keys = append(keys, append([]byte(key), 0))
	}
	if try&tryNoNul != 0 {
		keys = append(keys, []byte(key))
	}
	// Both forms under one lock and one read of the metadata page.
	i, v, err := t.r.GetFirst(ctx, keys...)
	if err != nil {
		return "", false, fmt.Errorf("table %s: %w", t.name, err)
	}
	if i < 0 {
		return "", false, nil
	}
	if len(keys[i]) > len(key) {
		t.try.Store(tryNul)
	} else {
		t.try.Store(tryNoNul)
	}
	return cString(v), true, nil
}

func (t *dbTable) Close() error { return t.r.Close() }
