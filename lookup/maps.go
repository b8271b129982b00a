package lookup

import (
	"context"
	"errors"
	"fmt"
)

// Maps is an ordered list of tables searched as one, as Postfix's maps.c does for a
// parameter such as virtual_mailbox_maps.
type Maps struct {
	tables []Table
}

// OpenMaps opens every table of a Postfix list (see SplitList). An empty list gives an
// empty Maps on which every Find misses.
//
// If any table fails to open, the tables already opened are closed and the error is
// returned: a list is never used with a table missing.
func OpenMaps(list string, opt Options) (*Maps, error) {
	m := &Maps{}
	for _, spec := range SplitList(list) {
		t, err := Open(spec, opt)
		if err != nil {
			m.Close()
			return nil, err
		}
		m.tables = append(m.tables, t)
	}
	return m, nil
}

// Find asks the tables in order and stops at the first hit or the first error. With
// fixedOnly, pattern tables (Fixed() == false) are skipped, as Postfix does for every key
// but the full address.
//
// A table error is returned as is, never turned into a miss. A hit whose value is empty
// is an error wrapping ErrEmptyValue naming the table (Postfix maps_find: "empty string
// result is not allowed").
func (m *Maps) Find(ctx context.Context, key string, fixedOnly bool) (value string, found bool, err error) {
	value, _, found, err = m.FindTable(ctx, key, fixedOnly)
	return value, found, err
}

// FindTable is Find that also names the table of the list that answered, or whose error
// ended the search ("" for a miss).
func (m *Maps) FindTable(ctx context.Context, key string, fixedOnly bool) (value, table string, found bool, err error) {
	if m == nil {
		return "", "", false, nil
	}
	for _, t := range m.tables {
		if fixedOnly && !t.Fixed() {
			continue
		}
		if err := ctx.Err(); err != nil {
			return "", t.Name(), false, err
		}
		v, ok, err := t.Lookup(ctx, key)
		if err != nil {
			return "", t.Name(), false, fmt.Errorf("table %s: %w", t.Name(), err)
		}
		if ok {
			if v == "" {
				return "", t.Name(), false, fmt.Errorf("table %s: key %q: %w", t.Name(), key, ErrEmptyValue)
			}
			return v, t.Name(), true, nil
		}
	}
	return "", "", false, nil
}

// Tables returns the tables in search order.
func (m *Maps) Tables() []Table {
	if m == nil {
		return nil
	}
	return m.tables
}

// Close closes every table and returns their errors joined.
func (m *Maps) Close() error {
	if m == nil {
		return nil
	}
	var errs []error
	for _, t := range m.tables {
		errs = append(errs, t.Close())
	}
	m.tables = nil
	return errors.Join(errs...)
}
