# e2e/setup.sh: the pieces that put the system Postfix into the seed
# configuration of e2e/testdata. Sourced by e2e/run.sh (the end-to-end suite)
# and bench/postfix/run.sh (throughput through Postfix); both need root and
# own /etc/postfix, /var/spool/postfix and /var/mail/vhosts while they run.
#
# The caller defines say and die (one line to stderr; die exits non-zero)
# before sourcing, and runs under `set -euo pipefail`.

conf=/etc/postfix
base=/var/mail/vhosts
vmail_id=5000

apt_get() { DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=600 "$@"; }

pkg_installed() {
	[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
}

# install_packages installs the Debian packages given that are missing.
# Postfix is installed with "No configuration": the seed configuration is
# installed by install_seed_config, not by debconf.
install_packages() {
	local need=() p
	for p in "$@"; do
		pkg_installed "$p" || need+=("$p")
	done
	[ ${#need[@]} -eq 0 ] && return 0
	say "installing ${need[*]} from Debian"
	echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections ||
		die "debconf-set-selections failed"
	apt_get update || die "apt-get update failed"
	apt_get install -y --no-install-recommends "${need[@]}" || die "apt-get install ${need[*]} failed"
	for p in "${need[@]}"; do
		pkg_installed "$p" || die "$p is still not installed"
	done
}

# build_vdeliver builds vdeliver as `make build` does, into /usr/local/bin,
# the path of the master.cf entries.
build_vdeliver() {
	say "building vdeliver into /usr/local/bin/vdeliver"
	make --no-print-directory BIN=/usr/local/bin/vdeliver build || die "go build failed"
}

# stop_postfix stops a running Postfix (one left by a killed run, too).
stop_postfix() {
	if postfix status >/dev/null 2>&1; then
		say "stopping postfix"
		postfix stop || say "postfix stop failed"
	fi
}

# ensure_vmail creates user and group vmail (5000:5000), the uid/gid of
# static:5000 in the seed configuration; pipe(8) and spawn(8) refuse to run
# a command as root.
ensure_vmail() {
	getent group vmail >/dev/null || groupadd -g "$vmail_id" vmail || die "groupadd vmail failed"
	getent passwd vmail >/dev/null ||
		useradd -u "$vmail_id" -g vmail -d "$base" -M -s /usr/sbin/nologin vmail ||
		die "useradd vmail failed"
	[ "$(id -u vmail):$(id -g vmail)" = "$vmail_id:$vmail_id" ] ||
		die "user vmail exists with uid:gid $(id -u vmail):$(id -g vmail), the seed configuration needs $vmail_id:$vmail_id"
}

# install_seed_config installs main.cf, the tables and master.cf from
# scratch, whatever an earlier run left: master.cf is Debian's master.cf.dist
# plus the entries below, main.cf is e2e/testdata/main.cf.
install_seed_config() {
	say "installing the seed configuration into $conf"
	install -m 0644 /usr/share/postfix/master.cf.dist "$conf/master.cf" || die "no master.cf.dist to start from"
	install -m 0644 e2e/testdata/main.cf "$conf/main.cf"
	install -m 0644 e2e/testdata/vmailbox "$conf/vmailbox"
	install -m 0644 e2e/testdata/virtual "$conf/virtual"
	postmap "$conf/vmailbox" "$conf/virtual" || die "postmap failed"
	# Debian chroots smtpd, cleanup and friends, and a plain `postfix start`
	# does not populate the chroot.
	postconf -F '*/*/chroot = n'
	# maillog_file is written by postlogd, which must have a master.cf entry.
	postconf -M 'postlog/unix-dgram=postlog unix-dgram n - n - 1 postlogd'
	# The recommended pipe(8) entry: no F, D, O, R or > flags (vdeliver
	# writes those headers itself) and an empty null_sender, so a bounce
	# arrives as -f "".
	postconf -M 'vdeliver/unix=vdeliver unix - n n - - pipe flags=X null_sender= user=vmail argv=/usr/local/bin/vdeliver -f ${sender} -a ${original_recipient} -i ${queue_id} -- ${recipient}'
	# The LMTP mode under spawn(8), reached as
	# virtual_transport = lmtp:unix:private/vdeliver-lmtp.
	postconf -M 'vdeliver-lmtp/unix=vdeliver-lmtp unix - n n - - spawn user=vmail argv=/usr/local/bin/vdeliver lmtp'
}

# reset_mailboxes empties the mailbox tree: the two domain directories of
# the seed configuration, owned by vmail alone.
reset_mailboxes() {
	rm -rf "$base"
	mkdir -p "$base/example.com" "$base/example.net"
	# Debian's /var/mail is setgid group mail and the new directories
	# inherit that: the mailbox tree must belong to vmail alone.
	chown root:root "$base"
	chmod 00755 "$base"
	chown vmail:vmail "$base/example.com" "$base/example.net"
	chmod 00700 "$base/example.com" "$base/example.net"
}

# start_postfix checks the configuration, starts Postfix and deletes mail
# an earlier run left in any queue.
start_postfix() {
	postfix check || die "postfix check failed"
	say "starting postfix (virtual_transport = $(postconf -h virtual_transport))"
	postfix start || die "postfix start failed; last log lines: $(tail -n 20 "$(postconf -h maillog_file)" 2>/dev/null)"
	postfix status || die "postfix is not running after postfix start"
	postsuper -d ALL || die "postsuper -d ALL failed"
}
