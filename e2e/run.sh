#!/usr/bin/env bash
# e2e/run.sh: the end-to-end suite through a real Postfix.
#
# Builds vdeliver into /usr/local/bin, installs Postfix from Debian if it is
# missing, installs the seed configuration of e2e/testdata (loopback only,
# nothing can leave the machine), starts Postfix, runs the Go suite in e2e/
# and stops Postfix again, whatever happened. Any failure (build, install,
# configuration, start, a test) makes the script exit non-zero: on CI this
# suite must never pass by being skipped.
#
# Needs root. Idempotent: each run resets the mailboxes under
# /var/mail/vhosts, the mail queue and the log /var/log/postfix-e2e.log.
#
# VDELIVER_E2E_TRANSPORT=virtual runs the same suite against Postfix's own
# virtual(8) (a reference run of the harness itself); the default is vdeliver.
set -euo pipefail

cd "$(dirname "$0")/.."

transport=${VDELIVER_E2E_TRANSPORT:-vdeliver}
conf=/etc/postfix
base=/var/mail/vhosts
maillog=/var/log/postfix-e2e.log
vmail_id=5000

say() { printf 'e2e: %s\n' "$*" >&2; }
die() { printf 'e2e: FATAL: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root: it installs, configures and starts Postfix"
case $transport in
vdeliver | virtual) ;;
*) die "VDELIVER_E2E_TRANSPORT must be vdeliver or virtual, not '$transport'" ;;
esac

say "building vdeliver into /usr/local/bin/vdeliver"
make --no-print-directory BIN=/usr/local/bin/vdeliver build || die "go build failed"

postfix_installed() {
	[ "$(dpkg-query -W -f='${Status}' postfix 2>/dev/null)" = "install ok installed" ] &&
		[ -x /usr/sbin/postfix ]
}

if ! postfix_installed; then
	# A background apt run may be installing it right now: wait for dpkg's
	# lock rather than failing on it, then install only if still missing.
	say "installing postfix from Debian"
	echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections ||
		die "debconf-set-selections failed"
	apt_get() { DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=600 "$@"; }
	if ! postfix_installed; then
		apt_get update || die "apt-get update failed"
		apt_get install -y --no-install-recommends postfix || die "apt-get install postfix failed"
	fi
	postfix_installed || die "postfix is still not installed"
fi
say "$(postconf -d -h mail_version | sed 's/^/postfix /')"

# A previous run that was killed may have left Postfix running.
if postfix status >/dev/null 2>&1; then
	say "stopping an already running postfix"
	postfix stop || die "postfix stop failed"
fi

# pipe(8) refuses to run a command as root: vdeliver runs as vmail, the
# uid/gid of static:5000 in the seed configuration.
getent group vmail >/dev/null || groupadd -g "$vmail_id" vmail || die "groupadd vmail failed"
getent passwd vmail >/dev/null ||
	useradd -u "$vmail_id" -g vmail -d "$base" -M -s /usr/sbin/nologin vmail ||
	die "useradd vmail failed"
[ "$(id -u vmail):$(id -g vmail)" = "$vmail_id:$vmail_id" ] ||
	die "user vmail exists with uid:gid $(id -u vmail):$(id -g vmail), the seed configuration needs $vmail_id:$vmail_id"

say "installing the seed configuration into $conf"
[ -f "$conf/master.cf" ] || cp /usr/share/postfix/master.cf.dist "$conf/master.cf" ||
	die "no master.cf to start from"
install -m 0644 e2e/testdata/main.cf "$conf/main.cf"
install -m 0644 e2e/testdata/vmailbox "$conf/vmailbox"
install -m 0644 e2e/testdata/virtual "$conf/virtual"
postconf -e "virtual_transport = $transport"
postmap "$conf/vmailbox" "$conf/virtual" || die "postmap failed"
# Debian chroots smtpd, cleanup and friends, and a plain `postfix start`
# does not populate the chroot.
postconf -F '*/*/chroot = n'
# maillog_file is written by postlogd, which must have a master.cf entry.
postconf -M 'postlog/unix-dgram=postlog unix-dgram n - n - 1 postlogd'
# The recommended entry: no F, D, O, R or > flags (vdeliver writes those
# headers itself) and an empty null_sender, so a bounce arrives as -f "".
postconf -M 'vdeliver/unix=vdeliver unix - n n - - pipe flags=X null_sender= user=vmail argv=/usr/local/bin/vdeliver -f ${sender} -a ${original_recipient} -i ${queue_id} -- ${recipient}'

say "resetting $base, the queue and $maillog"
rm -rf "$base"
mkdir -p "$base/example.com" "$base/example.net"
# Debian's /var/mail is setgid group mail and the new directories inherit
# that: the mailbox tree must belong to vmail alone.
chown root:root "$base"
chmod 00755 "$base"
chown vmail:vmail "$base/example.com" "$base/example.net"
chmod 00700 "$base/example.com" "$base/example.net"
# Postfix creates the log itself: a command that runs while postlogd is
# down opens it directly, as the postfix user.
rm -f "$maillog"

postfix check || die "postfix check failed"

stop_postfix() {
	if postfix status >/dev/null 2>&1; then
		say "stopping postfix"
		postfix stop || say "postfix stop failed"
	fi
}
trap stop_postfix EXIT

say "starting postfix (virtual_transport = $transport)"
postfix start || die "postfix start failed; last log lines: $(tail -n 20 "$maillog" 2>/dev/null)"
postfix status || die "postfix is not running after postfix start"
# Mail left over from an earlier run would only get in the way.
postsuper -d ALL || die "postsuper -d ALL failed"

status=0
if [ -n "${TESTLOG:-}" ]; then
	# Under make test: the events go to the closing summary, failures are shown.
	VDELIVER_E2E=1 go test -json -count=1 ./e2e/ | bin/testsum record "$TESTLOG" e2e || status=$?
else
	VDELIVER_E2E=1 go test -count=1 -v ./e2e/ || status=$?
fi
if [ "$status" != 0 ]; then
	say "FAILED (go test exit $status); last lines of $maillog:"
	tail -n 40 "$maillog" >&2 || true
fi
exit "$status"
