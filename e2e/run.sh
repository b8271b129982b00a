#!/usr/bin/env bash
# e2e/run.sh: the end-to-end suite through a real Postfix.
#
# Builds vdeliver into /usr/local/bin, installs Postfix from Debian if it is
# missing, installs the seed configuration of e2e/testdata (loopback only,
# nothing can leave the machine; e2e/setup.sh), starts Postfix, runs the Go
# suite in e2e/ once per transport and stops Postfix again, whatever
# happened. Any failure (build, install, configuration, start, a test) makes
# the script exit non-zero: on CI this suite must never pass by being
# skipped.
#
# Needs root. Idempotent: each run reinstalls main.cf and master.cf, resets
# the mailboxes under /var/mail/vhosts, the mail queue and the log
# /var/log/postfix-e2e.log.
#
# VDELIVER_E2E_TRANSPORT lists the transports to run the suite against, in
# order (default "vdeliver lmtp"):
#   vdeliver  vdeliver through pipe(8), one process per recipient
#   lmtp      vdeliver's LMTP mode under spawn(8),
#             virtual_transport = lmtp:unix:private/vdeliver-lmtp
#   virtual   Postfix's own virtual(8): a reference run of the suite itself
set -euo pipefail

cd "$(dirname "$0")/.."

transports=${VDELIVER_E2E_TRANSPORT:-vdeliver lmtp}
maillog=/var/log/postfix-e2e.log

say() { printf 'e2e: %s\n' "$*" >&2; }
die() { printf 'e2e: FATAL: %s\n' "$*" >&2; exit 1; }
# shellcheck source=e2e/setup.sh
. e2e/setup.sh

[ "$(id -u)" = 0 ] || die "must run as root: it installs, configures and starts Postfix"
for tr in $transports; do
	case $tr in
	vdeliver | lmtp | virtual) ;;
	*) die "VDELIVER_E2E_TRANSPORT lists vdeliver, lmtp or virtual, not '$tr'" ;;
	esac
done
[ -n "${transports// /}" ] || die "VDELIVER_E2E_TRANSPORT is empty"

build_vdeliver
install_packages postfix
say "$(postconf -d -h mail_version | sed 's/^/postfix /')"
stop_postfix
ensure_vmail
install_seed_config
say "resetting $base, the queue and $maillog"
reset_mailboxes
# Postfix creates the log itself: a command that runs while postlogd is
# down opens it directly, as the postfix user.
rm -f "$maillog"

# virtual_transport as main.cf spells it for each name.
transport_value() {
	case $1 in
	lmtp) echo "lmtp:unix:private/vdeliver-lmtp" ;;
	*) echo "$1" ;;
	esac
}

first=${transports%% *}
postconf -e "virtual_transport = $(transport_value "$first")"
trap stop_postfix EXIT
start_postfix

status=0
for tr in $transports; do
	value=$(transport_value "$tr")
	if [ "$(postconf -h virtual_transport)" != "$value" ]; then
		# A restart rather than a reload: no process of the old
		# generation may still resolve or deliver with the old transport.
		stop_postfix
		postconf -e "virtual_transport = $value"
		start_postfix
	fi
	say "running the suite against virtual_transport = $value"
	if [ -n "${TESTLOG:-}" ]; then
		# Under make test: the events go to the closing summary, failures are shown.
		VDELIVER_E2E=1 go test -json -count=1 ./e2e/ | bin/testsum record "$TESTLOG" "e2e-$tr" || status=$?
	else
		VDELIVER_E2E=1 go test -count=1 -v ./e2e/ || status=$?
	fi
	if [ "$status" != 0 ]; then
		say "FAILED against $value (go test exit $status); last lines of $maillog:"
		tail -n 40 "$maillog" >&2 || true
		break
	fi
	# The next pass starts from an empty queue.
	[ -z "$(postqueue -j)" ] || die "mail left in the queue after the $tr pass: $(postqueue -p)"
done
exit "$status"
