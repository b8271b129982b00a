#!/usr/bin/env bash
# make attacks: runs the attack suite (testdata/script/attack_*.txtar, the setuid-root
# Go tests in internal/cli/attack_test.go and the unit tests of the rules in
# internal/setuid) and prints one row per attack: the attack, the expected status
# (docs/behaviour.md §7), the status vdeliver gave, and the number of files touched
# outside the intended mailbox (always 0). Exits non-zero when any attack
# fails. It runs twice: with the kernel confining every open beneath the base (openat2
# RESOLVE_BENEATH), and built with -tags beneath_osroot, the os.Root fallback used where
# openat2 is missing.
# As root (CI) every attack runs; elsewhere the root-only ones skip with a message.
set -uo pipefail
GO=${GO:-go}
table=$(mktemp)
log=$(mktemp)
trap 'rm -f "$table" "$log"' EXIT
fail=0
for tags in "" beneath_osroot; do
	if [ -z "$tags" ]; then
		echo "== confinement by the kernel: openat2 RESOLVE_BENEATH"
	else
		echo "== confinement by Go's os.Root (-tags $tags, the fallback without openat2)"
	fi
	: >"$table"
	VDELIVER_ATTACK_TABLE=$table $GO test -count=1 -tags "$tags" \
		-run 'TestScripts/attack_|TestAttack|TestSetuid|TestNotSetuid|TestSafeTZ|TestRootOnlyFile|TestTrustedUID|TestCompareTrees' ./internal/cli ./internal/setuid >"$log" 2>&1
	rc=$?
	{
		printf 'ATTACK\tEXPECTED\tGOT\tTOUCHED OUTSIDE\n'
		sort -t "$(printf '\t')" -k1,1 "$table"
	} | column -t -s "$(printf '\t')"
	rows=$(wc -l <"$table")
	bad=$(awk -F'\t' '$2 != $3 || $4 != 0' "$table" | wc -l)
	echo
	echo "$rows attacks, $bad with an unexpected status or a file touched outside"
	echo
	if [ "$rc" -ne 0 ]; then
		cat "$log"
		echo "attacks: go test failed"
		fail=1
	fi
	[ "$bad" -eq 0 ] || fail=1
done
exit $fail
