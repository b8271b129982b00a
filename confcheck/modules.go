package confcheck

import (
	"errors"
	"fmt"
	"os/user"
	"strings"

	"vdeliver/lookup"
)

// modulePackages are the Debian packages that give Postfix's postmap(1) a table type,
// which vdeliver reads through postmap.
var modulePackages = map[string]string{
	"mysql": "postfix-mysql", "pgsql": "postfix-pgsql", "ldap": "postfix-ldap", "sqlite": "postfix-sqlite",
	"lmdb": "postfix-lmdb", "cdb": "postfix-cdb", "pcre": "postfix-pcre", "mongodb": "postfix-mongodb",
}

// missingModule is the finding for a table whose type postmap(1) does not know because
// its module is not installed: the fix is the package, not another table type.
// ok is false for any other error.
func missingModule(t *table, param string) (msg, fix string, ok bool) {
	if !errors.Is(t.openErr, lookup.ErrNoModule) {
		return "", "", false
	}
	pkg, known := modulePackages[t.typ]
	msg = fmt.Sprintf("%s: table %s needs Postfix's %s table module, and postmap(1) does not have it (\"unsupported dictionary type: %s\"): every delivery defers", param, t.spec, t.typ, t.typ)
	if known {
		return msg, fmt.Sprintf("install %s (apt-get install %s), then run vdeliver check again", pkg, pkg), true
	}
	return msg, fmt.Sprintf("install the package that gives Postfix's postmap the %s table type (postconf -m lists the types it has)", t.typ), true
}

// accountError is why an account lookup failed, without os/user's repetition of the name
// ("user: unknown user vmail").
func accountError(name string, err error) string {
	var unknown user.UnknownUserError
	if errors.As(err, &unknown) {
		return "not in the password database"
	}
	return err.Error()
}

// quotedValue is a parameter value as a finding quotes it: "empty" for nothing, so a
// sentence never reads "is , not 1".
func quotedValue(v string) string {
	if strings.TrimSpace(v) == "" {
		return "empty"
	}
	return v
}
