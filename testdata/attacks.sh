#!/usr/bin/env bash
# make attacks: runs the issue 5 attack suite (testdata/script/attack_*.txtar and the
# setuid-root Go tests in attack_test.go) and prints one row per attack: the attack, the
# status SPEC expects, the status vdeliver gave, and the number of files touched outside
# the intended mailbox (always 0). Exits non-zero when any attack fails.
# As root (CI) every attack runs; elsewhere the root-only ones skip with a message.
set -uo pipefail
GO=${GO:-go}
table=$(mktemp)
log=$(mktemp)
trap 'rm -f "$table" "$log"' EXIT
VDELIVER_ATTACK_TABLE=$table $GO test -count=1 \
	-run 'TestScripts/attack_|TestAttack|TestSetuid|TestNotSetuid|TestSafeTZ|TestRootOnlyFile|TestTrustedUID|TestCompareTrees' . >"$log" 2>&1
rc=$?
{
	printf 'ATTACK\tEXPECTED\tGOT\tTOUCHED OUTSIDE\n'
	sort -t "$(printf '\t')" -k1,1 "$table"
} | column -t -s "$(printf '\t')"
rows=$(wc -l <"$table")
bad=$(awk -F'\t' '$2 != $3 || $4 != 0' "$table" | wc -l)
echo
echo "$rows attacks, $bad with an unexpected status or a file touched outside"
if [ "$rc" -ne 0 ]; then
	echo
	cat "$log"
	echo "attacks: go test failed"
	exit 1
fi
[ "$bad" -eq 0 ]
