#!/usr/bin/env bash
# make bench-lmtp: delivery throughput through the system's real Postfix (root only).
#
# Installs what is missing (postfix, dovecot-core, dovecot-lmtpd from Debian), builds
# vdeliver into /usr/local/bin (the path of the master.cf entries) and the floor LMTP
# server, installs the seed configuration of the end-to-end suite (e2e/setup.sh) with a
# HOLD rule for the benchmark's messages and a master.cf entry per agent, starts two
# Dovecot LMTP instances of its own (one delivering to Maildir, one to mbox) and Postfix,
# and runs bench/postfix, which prints Markdown and writes it into bench/postfix/README.md.
# Postfix and the Dovecot instances are stopped again whatever happens.
#
#   ROUNDS=5 bash bench/postfix/run.sh
#   AGENTS=virtual,floor CONCURRENCY=4 README= bash bench/postfix/run.sh
#   PERF=/tmp/perf ROUNDS=1 README= bash bench/postfix/run.sh   # where the CPU goes
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
GO=${GO:-go}
ROUNDS=${ROUNDS:-3}
N=${N:-1000}
AGENTS=${AGENTS:-virtual,vdeliver-pipe,vdeliver-lmtp,floor,dovecot-lmtp}
CONCURRENCY=${CONCURRENCY:-20,4}
FORMATS=${FORMATS:-maildir,mbox}
README=${README-bench/postfix/README.md}
maillog=/var/log/postfix-bench.log
libexec=/usr/local/lib/vdeliver-bench
run=/run/vdeliver-bench

say() { printf 'bench-lmtp: %s\n' "$*" >&2; }
die() { printf 'bench-lmtp: FATAL: %s\n' "$*" >&2; exit 1; }
# shellcheck source=e2e/setup.sh
. e2e/setup.sh

[ "$(id -u)" = 0 ] || die "must run as root: it installs, configures and starts Postfix and Dovecot"

install_packages postfix dovecot-core dovecot-lmtpd
build_vdeliver
install -d -m 0755 "$libexec"
CGO_ENABLED=0 "$GO" build -trimpath -o "$libexec/lmtpfloor" ./bench/postfix/lmtpfloor || die "building lmtpfloor failed"
harness=$(mktemp /tmp/vdeliver-bench-postfix.XXXXXX)
"$GO" build -o "$harness" ./bench/postfix || die "building the harness failed"

stop_dovecots() {
	local f
	for f in "$run"/dovecot-*.conf; do
		[ -e "$f" ] || continue
		doveadm -c "$f" stop 2>/dev/null || true
	done
}
cleanup() {
	stop_postfix
	stop_dovecots
	rm -f "$harness"
}
trap cleanup EXIT

stop_postfix
stop_dovecots
ensure_vmail
install_seed_config
postconf -e "maillog_file = $maillog" \
	"header_checks = regexp:$conf/bench_hold" \
	"lmtp_destination_concurrency_limit = 20"
# Only the benchmark's messages are held; the release does not pass cleanup(8) again.
printf '/^X-Bench-Hold:/ HOLD\n' >"$conf/bench_hold"
postconf -M "lmtpfloor/unix=lmtpfloor unix - n n - - spawn user=vmail argv=$libexec/lmtpfloor $base/floor/"

reset_mailboxes
install -d -o vmail -g vmail -m 0700 "$base/floor" "$base/floor/tmp" "$base/floor/new" "$base/floor/cur"
rm -f "$maillog"

# Dovecot's LMTP server, Debian's defaults but for what it needs to run beside Postfix:
# static userdb (uid/gid 5000, every user exists), the mailbox in the seed layout, the
# socket in Postfix's private/ directory.
install -d -m 0755 "$run"
for format in maildir mbox; do
	case $format in
	maildir) location="maildir:$base/%d/%n" home="$base/%d/%n" ;;
	mbox) location="mbox:$base/%d/%n.dovecot:INBOX=$base/%d/%n" home="$base/%d/%n.dovecot" ;;
	esac
	cat >"$run/dovecot-$format.conf" <<CONF
instance_name = vdeliver-bench-$format
base_dir = $run/dovecot-$format
protocols = lmtp
ssl = no
log_path = $run/dovecot-$format.log
mail_location = $location
first_valid_uid = $vmail_id
passdb {
  driver = static
  args = nopassword=y
}
userdb {
  driver = static
  args = uid=$vmail_id gid=$vmail_id home=$home allow_all_users=yes
}
service lmtp {
  unix_listener /var/spool/postfix/private/dovecot-lmtp-$format {
    user = postfix
    group = postfix
    mode = 0600
  }
}
CONF
done

start_postfix
for format in maildir mbox; do
	dovecot -c "$run/dovecot-$format.conf" || die "dovecot ($format) did not start: $(tail -n 5 "$run/dovecot-$format.log" 2>/dev/null)"
done

args=(-n "$N" -rounds "$ROUNDS" -agents "$AGENTS" -concurrency "$CONCURRENCY" -formats "$FORMATS" -maillog "$maillog" -base "$base")
[ -n "$README" ] && args+=(-readme "$README")
if [ -n "${PERF:-}" ]; then
	command -v perf >/dev/null || install_packages linux-perf
	mkdir -p "$PERF"
	args+=(-perf "$PERF")
fi
"$harness" "${args[@]}"
