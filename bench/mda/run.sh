#!/usr/bin/env bash
# make bench: vdeliver against dovecot-lda, maildrop and procmail.
# Installs the peers from Debian when missing, builds vdeliver as `make build` does, the
# read-and-exit floor and the measuring starter, then runs bench/mda, which prints the
# Markdown results and writes them into bench/mda/README.md.
#
#   N=30 bash bench/mda/run.sh      # timed deliveries per agent, format and message
#   README=  bash bench/mda/run.sh  # print only, leave README.md alone
#   LMTP_ONLY=1 bash bench/mda/run.sh  # only the LMTP mode's rows, printed
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
GO=${GO:-go}
N=${N:-20}
README=${README-bench/mda/README.md}

need=()
[ -x /usr/lib/dovecot/dovecot-lda ] || need+=(dovecot-core)
command -v maildrop >/dev/null || need+=(maildrop)
command -v procmail >/dev/null || need+=(procmail)
command -v strace >/dev/null || need+=(strace)
if [ ${#need[@]} -gt 0 ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "bench: missing ${need[*]}; install them as root (apt-get install ${need[*]})" >&2
		exit 1
	fi
	echo "bench: installing ${need[*]}" >&2
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# As root every agent runs as uid/gid 5000, as pipe(8) would with user=vmail.
if [ "$(id -u)" = 0 ]; then
	getent group 5000 >/dev/null || groupadd -g 5000 vmail
	getent passwd 5000 >/dev/null || useradd -u 5000 -g 5000 -M -d /nonexistent -s /usr/sbin/nologin vmail
fi

bin=$(mktemp -d /tmp/vdeliver-bench-bin.XXXXXX)
trap 'rm -rf "$bin"' EXIT
chmod 755 "$bin"
# vdeliver exactly as `make build` builds it (static, without urfave/cli's documentation
# generator), and the plain `go build` variant with cgo and that generator, whose markdown
# package has a costly init: the README says why the difference matters.
make --no-print-directory GO="$GO" BIN="$bin/vdeliver" build
"$GO" build -trimpath -o "$bin/vdeliver-cgo-docs" .
CGO_ENABLED=0 "$GO" build -trimpath -o "$bin/readexit" ./bench/mda/readexit
CGO_ENABLED=0 "$GO" build -trimpath -o "$bin/spawn" ./bench/mda/spawn
CGO_ENABLED=0 "$GO" build -trimpath -o "$bin/coldstart" ./bench/mda/coldstart
"$GO" build -o "$bin/mda" ./bench/mda

# The gomaxprocs1 variant is the same binary with GOMAXPROCS=1 in its environment, as
# Postfix's export_environment can give it (bench/mda/README.md, "Where the time goes").
args=(-vdeliver "$bin/vdeliver" -variant "cgo-docs=$bin/vdeliver-cgo-docs"
	-variant "gomaxprocs1=$bin/vdeliver" -variant-env "gomaxprocs1=GOMAXPROCS=1"
	-coldstart "$bin/coldstart" -readexit "$bin/readexit" -spawn "$bin/spawn" -n "$N")
if [ -n "${LMTP_ONLY:-}" ]; then
	args+=(-lmtp-only)
elif [ -n "$README" ]; then
	args+=(-readme "$README")
fi
"$bin/mda" "${args[@]}"
