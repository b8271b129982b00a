#!/usr/bin/env bash
# bench/bdb.sh: a whole-process delivery through a hash: table of 1,000,000 entries
# against the same delivery through one of 10 entries, both built by Postfix's postmap:
# RUNS deliveries each, alternating; medians of wall and CPU time and their ratios
# (the goal: large/small at most 1.1). Then the Go benchmarks of one lookup in an open
# 1,000,000-entry hash and btree table and of open + lookup (GOBENCH=0 skips them).
#
# Prints Markdown. Environment: N (entries, 1000000), RUNS (200).
# Needs Postfix's postmap (Debian: postfix).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-1000000}
RUNS=${RUNS:-200}
GO=${GO:-go}
postmap=$(command -v postmap || echo /usr/sbin/postmap)
if [ ! -x "$postmap" ]; then
	echo "bench/bdb.sh: Postfix's postmap is not installed (Debian: apt-get install postfix)" >&2
	exit 1
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"
mkdir "$work/pf"
: >"$work/pf/main.cf"
make --no-print-directory GO="$GO" BIN="$work/vdeliver" build >/dev/null
$GO build -trimpath -o "$work/bdbbench" ./bench/bdbbench

# Started as root, vdeliver switches to the table's uid: nobody's, owning the base.
if [ "$(id -u)" = 0 ]; then uid=$(id -u nobody) gid=$(id -g nobody); else uid=$(id -u) gid=$(id -g); fi
mkdir "$work/vmail"
chown "$uid:$gid" "$work/vmail"
for size in 10 "$N"; do
	dir=$work/t$size
	mkdir "$dir"
	"$work/bdbbench" gen "$dir/vmailbox" "$size"
	start=$(date +%s%N)
	"$postmap" -c "$work/pf" "hash:$dir/vmailbox"
	built=$((($(date +%s%N) - start) / 1000000))
	printf 'virtual_mailbox_domains = example7.org\nvirtual_mailbox_base = %s\nvirtual_mailbox_maps = hash:%s/vmailbox\nvirtual_minimum_uid = 1\nvirtual_uid_maps = static:%s\nvirtual_gid_maps = static:%s\n' \
		"$work/vmail" "$dir" "$uid" "$gid" >"$dir/main.cf"
	echo "postmap hash: of $size entries: ${built} ms, $(stat -c %s "$dir/vmailbox.db") bytes" >&2
done

echo "## hash:, whole-process delivery, 10 vs $N entries ($(uname -m), $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg))"
echo
"$work/bdbbench" deliver -runs "$RUNS" -vdeliver "$work/vdeliver" -small "$work/t10" -large "$work/t$N" -rcpt user7@example7.org
echo "load after: $(cut -d' ' -f1 /proc/loadavg)"

if [ "${GOBENCH:-1}" != 0 ]; then
	echo
	echo '```'
	$GO test -run '^$' -bench 'Get1M|OpenGet1M' -benchmem ./lookup/bdb | grep '^Benchmark'
	echo '```'
fi
