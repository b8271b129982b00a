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
	return keyForms(&t.try, key, t.r.Get)
}

// keyForms asks get for key+NUL, then for key, as Postfix's cdb and lmdb readers do, and
// keeps in try only the form that answered first: a table is written one way or the
// other. The value is read as C code reads it, up to its first NUL.
func keyForms(try *atomic.Int32, key string, get func([]byte) ([]byte, bool, error)) (string, bool, error) {
	forms := try.Load()
	for _, f := range []int32{tryNul, tryNoNul} {
		if forms&f == 0 {
			continue
		}
		k := []byte(key)
		if f == tryNul {
			k = append(k, 0)
		}
		v, ok, err := get(k)
		if err != nil {
			return "", false, err
		}
		if ok {
			try.Store(f)
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
