#!/usr/bin/env bash
# Regenerates the committed .db files from postmap.src with Debian's postmap (Postfix
# 3.7, Berkeley DB 5.3) and db5.3_load, which writes the big-endian copies (db_lorder)
# and copies with page checksums (chksum): the tests then need neither installed.
# Run from this directory.
set -euo pipefail
conf=$(mktemp -d)
trap 'rm -rf "$conf"' EXIT
: >"$conf/main.cf"
python3 - <<'PY'
long_key = "long-" + "k" * 1500 + "@example.com"
long_val = "v" * 6000
lines = [
    "# hash: and btree: tables as postmap writes them",
    "User@Example.COM   example.com/user/",
    "bob@example.com    example.com/bob",
    "bob@example.com    example.com/duplicate",   # postmap keeps the first
    "@example.net       example.net/catchall/",
    long_key + "  example.com/long-key/",
    "big@example.com    " + long_val,
]
for i in range(300):
    lines.append(f"u{i}@example.org  example.org/u{i}/")
open("postmap.src", "w").write("\n".join(lines) + "\n")
PY
# Two keys that both hash to bucket 1: bucket 0's page is allocated and never written.
printf 'nul@x before\n\xc3\xa4b@x umlaut\n' >empty-bucket.src
postmap -c "$conf" hash:empty-bucket.src
mv empty-bucket.src.db empty-bucket-hash.db
rm empty-bucket.src
for kind in hash btree; do
	cp postmap.src "$kind.src"
	postmap -c "$conf" "$kind:$kind.src" 2>/dev/null
	mv "$kind.src.db" "postmap-$kind.db"
	db5.3_dump "postmap-$kind.db" | db5.3_load -c db_lorder=4321 "be-$kind.db"
	# With page checksums: a 32-byte page header.
	db5.3_dump "postmap-$kind.db" | db5.3_load -c chksum=1 "chksum-$kind.db"
	cp postmap.src "$kind.src"
	postmap -n -c "$conf" "$kind:$kind.src" 2>/dev/null   # -n: keys and values without the NUL
	mv "$kind.src.db" "postmap-nonul-$kind.db"
	rm "$kind.src"
done
