#!/usr/bin/env bash
# Installs the Debian packages the test suite drives for real, when they are missing:
# Postfix (the e2e suite, postmap cross-checks, a private proxymap), postfix-cdb/-pcre/-lmdb/
# -sqlite, sqlite3, postfix-pgsql and PostgreSQL, postfix-mysql and MariaDB's server and
# client, dotlockfile and flock(1) (real other lockers), python3 (an independent mbox
# reader), strace, a C compiler, zsh and fish (the completion scripts run in them),
# Berkeley DB's db5.3_dump/db5.3_load (big-endian copies of postmap's hash: and btree: files),
# Dovecot's doveadm (reads the Maildirs vdeliver writes).
set -euo pipefail
need=()
command -v postmap >/dev/null || need+=(postfix)
[ -e /usr/lib/postfix/postfix-cdb.so ] || need+=(postfix-cdb)
[ -e /usr/lib/postfix/postfix-pcre.so ] || need+=(postfix-pcre)
[ -e /usr/lib/postfix/postfix-lmdb.so ] || need+=(postfix-lmdb)   # lmdb: cross-checks
[ -e /usr/lib/postfix/postfix-sqlite.so ] || need+=(postfix-sqlite)   # proxy:sqlite: through proxymap
command -v sqlite3 >/dev/null || need+=(sqlite3)
[ -e /usr/lib/postfix/postfix-pgsql.so ] || need+=(postfix-pgsql)   # proxy:pgsql: through proxymap
ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || need+=(postgresql)   # a throwaway server per test
[ -e /usr/lib/postfix/postfix-mysql.so ] || need+=(postfix-mysql)   # proxy:mysql: through proxymap
command -v mariadbd >/dev/null || need+=(mariadb-server-core)   # the server binary only: no system service
command -v mariadb >/dev/null || need+=(mariadb-client-core)
command -v dotlockfile >/dev/null || need+=(liblockfile-bin)
command -v flock >/dev/null || need+=(util-linux)
command -v python3 >/dev/null || need+=(python3)
command -v db5.3_load >/dev/null || need+=(db5.3-util)   # big-endian .db files for lookup's tests
command -v strace >/dev/null || need+=(strace)   # shows the confinement's system calls
command -v cc >/dev/null || need+=(gcc)   # builds the LD_PRELOAD library of the setuid attack test
command -v zsh >/dev/null || need+=(zsh)   # runs the zsh completion script
command -v fish >/dev/null || need+=(fish)   # runs the fish completion script
command -v doveadm >/dev/null || need+=(dovecot-core)   # Dovecot reads what vdeliver wrote
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "deps: missing ${need[*]}; install them as root (apt-get install ${need[*]})" >&2
	exit 0
fi
echo "deps: installing ${need[*]}"
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
