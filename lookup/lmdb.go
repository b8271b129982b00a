package lookup

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync/atomic"
	"time"

	"vdeliver/lookup/lmdb"
)

// lmdbTable is lmdb:/path, reading /path.lmdb (Postfix dict_lmdb.c).
type lmdbTable struct {
	base
	r *lmdb.Reader
	// try holds the key forms still worth trying, as for cdb: postmap writes keys
	// with a trailing NUL unless -n, other tools without it.
	try atomic.Int32
}

// openLMDB opens name+".lmdb". spec is the table as configured, which differs from
// "lmdb:"+name for a hash: or btree: table that Postfix's non-Berkeley-DB migration
// redirects here.
func openLMDB(spec, name string, opt *Options) (Table, error) {
	r, err := lmdb.Open(name + ".lmdb")
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("table %s: %w (run \"postmap lmdb:%s\")", spec, err, name)
		}
		return nil, fmt.Errorf("table %s: %w", spec, err)
	}
	// dict_lmdb_open's warning, in whole seconds as there, with its grace time: a
	// source edited in the last 100 seconds may be being postmapped right now.
	if fi, err := os.Stat(name); err == nil && fi.ModTime().Unix() > r.ModTime().Unix() && fi.ModTime().Unix() < time.Now().Unix()-100 {
		opt.warn(Warning{Msg: fmt.Sprintf("database %s.lmdb is older than source file %s", name, name)})
	}
	t := &lmdbTable{base: base{name: spec, fixed: true}, r: r}
	t.try.Store(tryNul | tryNoNul)
	return t, nil
}

// Lookup tries key+NUL, then key, as dict_lmdb_lookup does, and keeps only the form
// that first answers. The value is read as C code reads it: up to its first NUL.
func (t *lmdbTable) Lookup(ctx context.Context, key string) (string, bool, error) {
	return keyForms(&t.try, key, func(k []byte) ([]byte, bool, error) {
		if len(k) == 0 {
			// liblmdb refuses a zero-length key, and Postfix's lookup then fails.
			return nil, false, errors.New("empty key: liblmdb refuses it (MDB_BAD_VALSIZE), and so does Postfix")
		}
		return t.r.Get(k)
	})
}

func (t *lmdbTable) Close() error { return t.r.Close() }
