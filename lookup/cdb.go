package lookup

import (
	"bytes"
	"context"
	"fmt"
	"sync/atomic"

	"vdeliver/lookup/cdb"
)

// Key forms a cdb file may use (Postfix DICT_FLAG_TRY1NULL / TRY0NULL).
const (
	tryNul   = 1 // key+"\x00"
	tryNoNul = 2 // key
)

// cdbTable is cdb:/path, reading /path.cdb (Postfix dict_cdb.c).
type cdbTable struct {
	base
	r *cdb.Reader
	// try holds the key forms still worth trying: both until one has been found, as
	// postmap writes keys without the NUL unless -N and other tools write them with it.
	try atomic.Int32
}

func openCDB(spec, name string) (Table, error) {
	r, err := cdb.Open(name + ".cdb")
	if err != nil {
		return nil, fmt.Errorf("table %s: %w", spec, err)
	}
	t := &cdbTable{base: base{name: spec, fixed: true}, r: r}
	t.try.Store(tryNul | tryNoNul)
	return t, nil
}

func (t *cdbTable) Lookup(ctx context.Context, key string) (string, bool, error) {
	try := t.try.Load()
	if try&tryNul != 0 {
		v, ok, err := t.r.Get(append([]byte(key), 0))
		if err != nil {
			return "", false, err
		}
		if ok {
			t.try.Store(tryNul)
			return cString(v), true, nil
		}
	}
	if try&tryNoNul != 0 {
		v, ok, err := t.r.Get([]byte(key))
		if err != nil {
			return "", false, err
		}
		if ok {
			t.try.Store(tryNoNul)
			return cString(v), true, nil
		}
	}
	return "", false, nil
}

// cString is the value as Postfix's C code sees it: up to the first NUL.
func cString(v []byte) string {
	if i := bytes.IndexByte(v, 0); i >= 0 {
		v = v[:i]
	}
	return string(v)
}

func (t *cdbTable) Close() error { return t.r.Close() }
