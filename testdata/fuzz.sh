#!/usr/bin/env bash
# A short smoke run of every fuzz target, each alone as go test requires.
#
# Go 1.26's fuzz coordinator can report "context deadline exceeded" when a duration
# -fuzztime expires while a worker is mid-call (go.dev/issue/75804, fixed in Go 1.27): no input
# fails, nothing is written to testdata/fuzz. Such a run is repeated once with a count budget,
# which has no wall-clock deadline to race, so the gate stays real: a crash, a failing input
# or a second failure of any kind fails the target.
set -uo pipefail
GO=${GO:-go}
FUZZTIME=${FUZZTIME:-10s}
RETRY=${FUZZRETRY:-20000x}
TESTLOG=${TESTLOG:-}
fail=0
out=$(mktemp); trap 'rm -f "$out"' EXIT
# One "pass|fail PACKAGE TARGET" line per target for make test's summary.
result() { [ -z "$TESTLOG" ] || { mkdir -p "$TESTLOG" && echo "$1 $2 $3" >>"$TESTLOG/fuzz.txt"; }; }
for pkg in $($GO list ./...); do
	for f in $($GO test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
		echo "fuzz $pkg $f"
		# Minimising a new input may take 60 s by default, past -fuzztime: bound it.
		if $GO test -run '^$' -fuzz "^$f\$" -fuzztime "$FUZZTIME" -fuzzminimizetime 100x "$pkg" 2>&1 | tee "$out"; test "${PIPESTATUS[0]}" = 0; then
			result pass "$pkg" "$f"
			continue
		fi
		if grep -q '^    context deadline exceeded$' "$out" &&
			! grep -qE 'Failing input written|panic:|_test\.go:[0-9]+:' "$out"; then
			echo "fuzz: $f hit the Go 1.26 fuzztime deadline race (go.dev/issue/75804); again with -fuzztime $RETRY"
			if $GO test -run '^$' -fuzz "^$f\$" -fuzztime "$RETRY" -fuzzminimizetime 100x "$pkg"; then
				result pass "$pkg" "$f"
				continue
			fi
		fi
		echo "fuzz: $pkg $f FAILED"
		result fail "$pkg" "$f"
		fail=1
	done
done
exit $fail
