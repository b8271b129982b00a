package lookup

import (
	"context"
	"fmt"
	"strings"
)

// NonBDB is Postfix 3.11's non-Berkeley-DB migration ("postfix non-bdb"), as main.cf
// configures it. With it, Postfix programs read a table named hash:NAME or btree:NAME as
// another type's file, typically lmdb:NAME (NAME.lmdb) or cdb:NAME (NAME.cdb); Open
// then reads what they read. The zero value is Postfix 3.10 and older, and 3.11's
// default: hash: and btree: are Berkeley DB.
//
// The rules, from Postfix 3.11's NON_BERKELEYDB_README and src/global/nbdb_util.c and
// nbdb_redirect.c:
//
//   - Level "" or "disable": no redirection. "enable-redirect" and "enable-reindex"
//     redirect hash: and btree:, and nothing else; level names ignore case; any other
//     level is an error (Postfix programs refuse to start).
//   - The type is, in order: CustomMapping's answer for "hash:NAME" (btree:NAME), then
//     its answer for "hash" ("btree"); else DatabaseType for hash:, CacheDBType for
//     btree:. The custom mapping is asked with the key folded to lower case (Postfix
//     opens it with DICT_FLAG_FOLD_FIX); a lookup error is an error, not a miss.
//   - The type must be ASCII letters and digits and must not be hash or btree; a custom
//     mapping of type hash or btree is an error. An error makes the table fail to open
//     (Postfix opens a table that fails every lookup: mail defers either way).
//   - The table keeps its configured name, hash:NAME, and is otherwise the new type.
//
// With "enable-reindex", Postfix asks its nbdb_reindexd(8) server to run postmap when
// NAME.lmdb (NAME.cdb) does not exist; vdeliver cannot, and fails to open the table,
// with the hint to run postmap, so the message defers until the file exists.
type NonBDB struct {
	Level         string // non_bdb_migration_level
	DatabaseType  string // default_database_type: what hash: becomes; "" is hash
	CacheDBType   string // default_cache_db_type: what btree: becomes; "" is btree
	CustomMapping string // non_bdb_custom_mapping: a table spec, "" for none
}

// customMappingTypes are the table types vdeliver can ask with Postfix's key folding:
// keys postmap folded when it built the file, keys folded here (inline), or none to fold.
var customMappingTypes = map[string]bool{"cdb": true, "lmdb": true, "inline": true, "static": true, "regexp": true, "pcre": true}

// redirect returns the type Postfix programs open for typ:name (typ hash or btree).
func (n *NonBDB) redirect(typ, name string, opt *Options) (string, error) {
	// Postfix's name_code: level names are case-insensitive.
	switch strings.ToLower(n.Level) {
	case "", "disable":
		return typ, nil
	case "enable-redirect", "enable-reindex":
	default:
		return "", fmt.Errorf("non_bdb_migration_level = %s: invalid non-Berkeley-DB migration level: %w", n.Level, ErrSyntax)
	}
	target, found, err := n.custom(typ, name, opt)
	if err != nil {
		return "", fmt.Errorf("non-Berkeley-DB type mapping lookup error for '%s:%s': %w", typ, name, err)
	}
	if !found {
		// An unset parameter has Postfix's stock default, the legacy type itself, so
		// that redirection without a type is the error it is in Postfix.
		target = n.DatabaseType
		if typ == "btree" {
			target = n.CacheDBType
		}
		if target == "" {
			target = typ
		}
	}
	if target == "" || strings.IndexFunc(target, func(r rune) bool { return r > 0x7f || !isAlnum(byte(r)) }) >= 0 {
		return "", fmt.Errorf("non-Berkeley-DB type mapping for '%s:%s': bad non-legacy database type syntax: '%s': %w", typ, name, target, ErrSyntax)
	}
	if target == "hash" || target == "btree" {
		return "", fmt.Errorf("non-Berkeley-DB type mapping for '%s:%s': mapping from '%s' to legacy type '%s' (set default_database_type and default_cache_db_type in main.cf): %w", typ, name, typ, target, ErrSyntax)
	}
	return target, nil
}

// custom asks the custom mapping, if any, for "typ:name", then "typ".
func (n *NonBDB) custom(typ, name string, opt *Options) (string, bool, error) {
	if n.CustomMapping == "" {
		return "", false, nil
	}
	mtyp, _, err := ParseSpec(n.CustomMapping)
	if err != nil {
		return "", false, fmt.Errorf("non_bdb_custom_mapping: %w", err)
	}
	if mtyp == "hash" || mtyp == "btree" {
		return "", false, fmt.Errorf("non_bdb_custom_mapping must not use legacy type: '%s': %w", mtyp, ErrSyntax)
	}
	if !customMappingTypes[mtyp] {
		return "", false, fmt.Errorf("non_bdb_custom_mapping: vdeliver reads the custom mapping only from cdb, lmdb, inline, static, regexp or pcre tables, not %s: %w", mtyp, ErrUnsupported)
	}
	t, err := Open(n.CustomMapping, Options{Warn: opt.Warn, OnWarning: opt.OnWarning, ConfigDir: opt.ConfigDir, foldFixed: true})
	if err != nil {
		return "", false, err
	}
	defer t.Close()
	for _, key := range []string{typ + ":" + name, typ} {
		if t.Fixed() {
			key = strings.ToLower(key)
		}
		v, found, err := t.Lookup(context.Background(), key)
		if err != nil {
			return "", false, fmt.Errorf("%s lookup error for '%s': %w", n.CustomMapping, key, err)
		}
		if found {
			return v, true, nil
		}
	}
	return "", false, nil
}
