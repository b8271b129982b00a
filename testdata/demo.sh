#!/usr/bin/env bash
# make demo: deliver the messages in testdata/example/messages with the example
# configuration into a fresh base under a temporary directory, and show where each landed.
set -euo pipefail
bin=${1:?usage: demo.sh path/to/vdeliver}
top=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/vdeliver-demo.XXXXXX)
base=$work/vhosts
mkdir -p "$base/example.com" "$base/example.net"
if [ "$(id -u)" = 0 ]; then
	uid=5000 gid=5000   # as the example main.cf says; vdeliver drops to them
	chmod 755 "$work"
	chown -R "$uid:$gid" "$base"
else
	uid=$(id -u) gid=$(id -g)   # without root, vdeliver can only be ourselves
fi
opts=(-c "$top/testdata/example" -o "virtual_mailbox_base=$base"
	-o "virtual_uid_maps=static:$uid" -o "virtual_gid_maps=static:$gid")
deliver() { # message sender recipient
	printf '%-28s -> ' "$3"
	"$bin" "${opts[@]}" -f "$2" -a "$3" -i DEMO -- "$3" <"$top/testdata/example/messages/$1" || true
}
deliver hello.eml sender@example.org alice@example.com
deliver report.eml reports@example.org bob@example.com
deliver bounce.eml '' carol@example.net
deliver hello.eml sender@example.org someone+tag@example.net
deliver hello.eml sender@example.org nobody@example.com
echo
echo "Mailboxes under $base:"
(cd "$base" && find . -type f | sort | sed 's/^/  /')
echo
echo "First Maildir message for alice:"
sed 's/^/  | /' "$base"/example.com/alice/new/* 2>/dev/null | head -8 || true
if [ -f "$base/example.com/bob" ]; then
	echo "bob's mbox:"
	sed 's/^/  | /' "$base/example.com/bob" | head -8
fi
