#!/usr/bin/env bash
# bench/cdb.sh: the cdb speed numbers, vdeliver side by side with Debian's postmap.
#
#   1. build a 1,000,000-entry cdb with "vdeliver postmap" and with "postmap" from the
#      same source: wall time and peak RSS (/usr/bin/time -v, else getrusage through
#      bench/cdbbench), and check the two files are byte for byte the same;
#   2. whole-process lookups, "vdeliver query cdb:FILE key" against
#      "postmap -q key cdb:FILE", RUNS each, alternating, same keys: median and p95;
#   3. the Go benchmarks of one lookup in the open 1,000,000-entry table (< 10 µs) and
#      of open + lookup.
#
# Prints Markdown. Environment: N (entries, 1000000), RUNS (200), GOBENCH=0 skips step 3.
# Needs Postfix's postmap with cdb support (Debian: postfix postfix-cdb).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-1000000}
RUNS=${RUNS:-200}
GO=${GO:-go}
postmap=$(command -v postmap || echo /usr/sbin/postmap)
if [ ! -x "$postmap" ]; then
	echo "bench/cdb.sh: Postfix's postmap is not installed (Debian: apt-get install postfix postfix-cdb)" >&2
	exit 1
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# An empty configuration: postmap needs a main.cf, not a configured mail system.
mkdir "$work/pf"
: >"$work/pf/main.cf"
export MAIL_CONFIG=$work/pf

# vdeliver as `make build` ships it: its start-up is part of a whole-process lookup.
make --no-print-directory GO="$GO" BIN="$work/vdeliver" build
$GO build -trimpath -o "$work/cdbbench" ./bench/cdbbench
"$work/cdbbench" gen "$work/ours" "$N"
cp "$work/ours" "$work/theirs"

# measure CMD...: prints "SECONDS MAXRSS_KB".
measure() {
	if [ -x /usr/bin/time ]; then
		/usr/bin/time -v "$@" 2>"$work/time.out" >/dev/null || { cat "$work/time.out" >&2; return 1; }
		awk -F': ' '
			/Elapsed \(wall clock\)/ { n = split($2, p, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + p[i] }
			/Maximum resident set size/ { rss = $2 }
			END { printf "%.2f %d\n", s, rss }' "$work/time.out"
	else
		"$work/cdbbench" rusage "$@" 2>/dev/null
	fi
}

read -r vd_s vd_kb < <(measure "$work/vdeliver" postmap "cdb:$work/ours")
read -r pm_s pm_kb < <(measure "$postmap" "cdb:$work/theirs")
cmp "$work/ours.cdb" "$work/theirs.cdb"
size=$(stat -c %s "$work/ours.cdb")

echo "## cdb, $N entries ($(uname -m), $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg), $(dpkg-query -W -f='postfix ${Version}' postfix 2>/dev/null || echo 'postfix ?'))"
echo
echo "| build from source ($size-byte file, identical bytes) | wall | peak RSS |"
echo "| --- | --- | --- |"
printf '| `vdeliver postmap cdb:FILE` | %s s | %d MB |\n' "$vd_s" $((vd_kb / 1024))
printf '| `postmap cdb:FILE` | %s s | %d MB |\n' "$pm_s" $((pm_kb / 1024))
echo
"$work/cdbbench" query -runs "$RUNS" -n "$N" -vdeliver "$work/vdeliver" -postmap "$postmap" -table "$work/ours"

if [ "${GOBENCH:-1}" != 0 ]; then
	echo
	echo '```'
	$GO test -run '^$' -bench 'Get1M|OpenGet1M' -benchmem ./lookup/cdb | grep '^Benchmark'
	echo '```'
fi
