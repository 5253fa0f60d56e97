#!/usr/bin/env bash
# Makes the system libvirt (qemu:///system) usable on a machine without a service manager (CI, containers).
#
# Idempotent. If `virsh -c qemu:///system version` already answers, the daemons are left alone.
# Otherwise it starts virtlogd and libvirtd as daemons (Debian 12 ships the monolithic libvirtd;
# no virtqemud), records what it started in $VP_LIBVIRT_RUN_DIR (default /run/vdipool-libvirt)
# so that scripts/libvirt-down.sh stops exactly that, waits (bounded) until virsh answers, then
# proves a QEMU domain (TCG) can actually start by creating a paused transient domain.
#
# /etc/libvirt changes: NONE are made unless that smoke domain fails with a known cause; then
#   - cgroup errors  -> `cgroup_controllers = [ ]` in /etc/libvirt/qemu.conf (containers whose
#                       /sys/fs/cgroup is missing or read-only; on a VM/host with cgroup v1/v2
#                       mounted, as on our Debian 12 CI machine, libvirt's defaults work)
#   - AppArmor/SELinux denials -> `security_driver = "none"` in /etc/libvirt/qemu.conf
# Each change is appended to qemu.conf with a "# added by vdipool libvirt-up.sh" comment, the
# original is saved as qemu.conf.vdipool-orig, and the change is printed.
#
# /dev/kvm: where no udev ran (containers, minimal images), the device node is often root-only
#   (crw------- root root), so QEMU, running as libvirt-qemu, cannot open it. The usual udev rule
#   (root:kvm 0660; libvirt-qemu is in group kvm) is applied then, and said. VP_KEEP_DEV_KVM=1
#   leaves it alone. vdipool itself never trusts /dev/kvm: `domain.accel: auto` probes a guest.
#
# Network: libvirt's `default` NAT network (virbr0 + dnsmasq DHCP, 192.168.122.0/24) is defined from
# libvirt's standard XML when missing, and started when inactive (best effort: a warning, not an
# error, if the host forbids bridges/iptables); guests need it for an address (apply --wait ready);
# libvirt-down.sh stops it again only if this script started it. Pass --no-network to skip.
#
# Env: VP_LIBVIRT_URI (qemu:///system), VP_LIBVIRT_RUN_DIR, VP_LIBVIRT_TIMEOUT (seconds, 30),
#      VP_LIBVIRT_DEBUG=1 (verbose daemon logs).
set -euo pipefail

PROG=${0##*/}
URI=${VP_LIBVIRT_URI:-qemu:///system}
RUN_DIR=${VP_LIBVIRT_RUN_DIR:-/run/vdipool-libvirt}
TIMEOUT=${VP_LIBVIRT_TIMEOUT:-30}
QEMU_CONF=/etc/libvirt/qemu.conf
PACKAGES=(libvirt-daemon-system libvirt-clients qemu-system-x86 qemu-utils dnsmasq-base iptables)

die() { echo "$PROG: error: $*" >&2; exit 1; }
log() { echo "$PROG: $*" >&2; }

usage() {
	cat <<EOF
usage: $PROG [--no-network] [--smoke] [-h]
  --no-network  do not start libvirt's 'default' NAT network
  --smoke       also run the domain smoke test when libvirt already answers
EOF
}
WANT_NETWORK=1
FORCE_SMOKE=0
while [ $# -gt 0 ]; do
	case "$1" in
		--no-network) WANT_NETWORK=0 ;;
		--smoke) FORCE_SMOKE=1 ;;
		-h|--help) usage; exit 0 ;;
		*) usage >&2; die "unknown argument: $1" ;;
	esac
	shift
done
[[ "$TIMEOUT" =~ ^[0-9]+$ ]] || die "VP_LIBVIRT_TIMEOUT must be a number of seconds, got '$TIMEOUT'"

# install_packages: the apt packages everything here (and the guest tests) need.
install_packages() {
	[ "$(id -u)" -eq 0 ] || die "libvirt/QEMU binaries are missing and installing them needs root: apt-get install ${PACKAGES[*]}"
	log "installing: ${PACKAGES[*]}"
	# No service manager: keep maintainer scripts from trying to start services.
	local policy=/usr/sbin/policy-rc.d created_policy=0
	if [ ! -e "$policy" ]; then
		printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod 0755 "$policy" && created_policy=1
	fi
	local rc=0
	{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}"; } >&2 || rc=$?
	[ "$created_policy" = 0 ] || rm -f "$policy"
	[ "$rc" = 0 ] || die "apt-get install ${PACKAGES[*]} failed (exit $rc)"
}

ensure_binaries() {
	local missing=() b
	for b in virsh libvirtd virtlogd qemu-system-x86_64 qemu-img; do
		command -v "$b" >/dev/null 2>&1 || PATH=$PATH:/usr/sbin:/sbin command -v "$b" >/dev/null 2>&1 || missing+=("$b")
	done
	[ "${#missing[@]}" = 0 ] && return 0
	log "missing: ${missing[*]}"
	install_packages
	PATH=$PATH:/usr/sbin:/sbin
	for b in "${missing[@]}"; do
		command -v "$b" >/dev/null 2>&1 || die "'$b' still missing after installing ${PACKAGES[*]}"
	done
}

virsh_ok() { timeout 10 virsh -c "$URI" version >/dev/null 2>&1; }

# proc_start_time PID -> field 22 of /proc/PID/stat (start time in clock ticks since boot)
proc_start_time() { awk '{ sub(/^.*\) /, ""); print $20 }' "/proc/$1/stat" 2>/dev/null; }
# proc_is PID NAME -> true if PID is alive and its executable is called NAME
proc_is() {
	[ -n "$1" ] || return 1
	kill -0 "$1" 2>/dev/null || return 1
	[ "$(basename "$(readlink "/proc/$1/exe" 2>/dev/null)" 2>/dev/null)" = "$2" ]
}
# our_pid NAME -> pid recorded in RUN_DIR/NAME.pid if that exact process is still alive
our_pid() {
	local f=$RUN_DIR/$1.pid pid st
	[ -f "$f" ] || return 1
	read -r pid st < "$f" || return 1
	proc_is "$pid" "$1" && [ "$(proc_start_time "$pid")" = "$st" ] && echo "$pid"
}
# daemon_pid NAME -> pid from the daemon's own pid file /run/NAME.pid if alive
daemon_pid() {
	local pid
	pid=$(cat "/run/$1.pid" 2>/dev/null) || return 1
	proc_is "$pid" "$1" && echo "$pid"
}

tail_logs() {
	local f
	for f in "$RUN_DIR/libvirtd.log" "$RUN_DIR/virtlogd.log" "$@"; do
		[ -s "$f" ] || continue
		echo "---- last lines of $f ----" >&2
		tail -n 25 "$f" >&2
	done
}

# start_daemon NAME : start NAME -d unless already running; record it in RUN_DIR if we started it
start_daemon() {
	local name=$1 pid
	if pid=$(daemon_pid "$name"); then
		log "$name already running (pid $pid), not started by us"
		return 0
	fi
	# Stale pid file from a killed run: the daemons lock it, an unlocked leftover is harmless,
	# but remove it so nothing mistakes it for a live process.
	rm -f "/run/$name.pid"
	if [ "$name" = libvirtd ]; then
		# A killed libvirtd leaves its sockets behind; with no live libvirtd they are stale.
		rm -f /run/libvirt/libvirt-sock /run/libvirt/libvirt-sock-ro /run/libvirt/libvirt-admin-sock
	else
		rm -f /run/libvirt/virtlogd-sock /run/libvirt/virtlogd-admin-sock
	fi
	local level=3 filters=
	if [ "${VP_LIBVIRT_DEBUG:-0}" = 1 ]; then level=1; filters="3:rpc 3:event 3:util.object 3:util.json 3:util.threadpool"; fi
	log "starting $name"
	LIBVIRT_LOG_OUTPUTS="$level:file:$RUN_DIR/$name.log" LIBVIRT_LOG_FILTERS="$filters" \
		"$name" -d >>"$RUN_DIR/$name.log" 2>&1 8>&- || { tail_logs; die "'$name -d' failed to start"; }
	for _ in $(seq 50); do
		pid=$(daemon_pid "$name") && break
		sleep 0.1
	done
	[ -n "${pid:-}" ] || { tail_logs; die "$name did not come up (no live pid in /run/$name.pid after 5 s)"; }
	echo "$pid $(proc_start_time "$pid")" > "$RUN_DIR/$name.pid"
	log "$name started (pid $pid)"
}

wait_for_virsh() {
	local deadline=$((SECONDS + TIMEOUT))
	while ! virsh_ok; do
		if [ "$SECONDS" -ge "$deadline" ]; then
			tail_logs
			die "libvirtd is running but 'virsh -c $URI version' did not answer within ${TIMEOUT}s"
		fi
		daemon_pid libvirtd >/dev/null || { tail_logs; die "libvirtd exited while we waited for it to answer"; }
		sleep 0.3
	done
}

# smoke_domain: create a paused transient TCG domain (no disk, no kernel) and destroy it.
# Prints libvirt's error on failure.
smoke_domain() {
	local name=vdipool-smoke-$$ xml out rc=0
	xml=$(mktemp "${TMPDIR:-/tmp}/vdipool-smoke.XXXXXX.xml")
	cat > "$xml" <<EOF
<domain type='qemu'>
  <name>$name</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64'>hvm</type></os>
  <devices><emulator>$(command -v qemu-system-x86_64)</emulator><memballoon model='none'/></devices>
</domain>
EOF
	out=$(timeout 60 virsh -c "$URI" create "$xml" --paused 2>&1) || rc=$?
	rm -f "$xml"
	timeout 30 virsh -c "$URI" destroy "$name" >/dev/null 2>&1 || true
	[ "$rc" = 0 ] && return 0
	echo "$out"
	return 1
}

# set_qemu_conf KEY VALUE WHY : append KEY = VALUE to qemu.conf (once), saving the original
set_qemu_conf() {
	local key=$1 value=$2 why=$3
	if grep -Eq "^[[:space:]]*${key}[[:space:]]*=" "$QEMU_CONF"; then
		log "$QEMU_CONF already sets $key; not changing it"
		return 1
	fi
	[ -e "$QEMU_CONF.vdipool-orig" ] || cp -p "$QEMU_CONF" "$QEMU_CONF.vdipool-orig"
	printf '\n# added by vdipool libvirt-up.sh: %s\n%s = %s\n' "$why" "$key" "$value" >> "$QEMU_CONF"
	log "CONFIG CHANGE: $QEMU_CONF: $key = $value ($why; original saved as $QEMU_CONF.vdipool-orig)"
}

restart_our_libvirtd() {
	local pid
	pid=$(our_pid libvirtd) || die "libvirtd needs a restart to apply $QEMU_CONF but was not started by $PROG; restart it yourself"
	log "restarting libvirtd (pid $pid) to apply $QEMU_CONF"
	kill -TERM "$pid"
	for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	kill -0 "$pid" 2>/dev/null && die "libvirtd (pid $pid) did not exit after SIGTERM"
	rm -f "$RUN_DIR/libvirtd.pid"
	start_daemon libvirtd
	wait_for_virsh
}

# smoke_and_repair: run the smoke domain; on a known failure fix qemu.conf once and retry.
smoke_and_repair() {
	local err tries=0
	while ! err=$(smoke_domain); do
		tries=$((tries + 1))
		local changed=1
		[ "$tries" -le 2 ] || changed=0
		if [ "$changed" = 1 ] && grep -qiE 'cgroup|cpuset|machine\.slice' <<<"$err"; then
			set_qemu_conf cgroup_controllers '[ ]' "QEMU domains failed to start: cgroup controllers unusable here" || changed=0
		elif [ "$changed" = 1 ] && grep -qiE 'apparmor|selinux|security' <<<"$err"; then
			set_qemu_conf security_driver '"none"' "QEMU domains failed to start: security driver error" || changed=0
		else
			changed=0
		fi
		if [ "$changed" = 0 ]; then
			echo "$err" >&2
			tail_logs /var/log/libvirt/qemu/vdipool-smoke-*.log
			die "libvirt answers but cannot start a QEMU (TCG) domain; see the error above"
		fi
		restart_our_libvirtd
	done
	log "smoke test passed: a QEMU (TCG) domain starts"
}

# define_default_network: libvirt's stock `default` NAT network (what libvirt-daemon-config-network
# installs as /usr/share/libvirt/networks/default.xml, or the same XML written here), defined when a
# machine lacks it, so guests get DHCP leases on 192.168.122.0/24 (apply --wait ready needs them).
define_default_network() {
	local xml=/usr/share/libvirt/networks/default.xml tmp= out rc=0
	if [ ! -f "$xml" ]; then
		tmp=$(mktemp /tmp/vp-net-default-XXXXXX.xml)
		cat >"$tmp" <<'EOF'
<network>
  <name>default</name>
  <forward mode='nat'/>
  <bridge name='virbr0' stp='on' delay='0'/>
  <ip address='192.168.122.1' netmask='255.255.255.0'>
    <dhcp>
      <range start='192.168.122.2' end='192.168.122.254'/>
    </dhcp>
  </ip>
</network>
EOF
		xml=$tmp
	fi
	if out=$(timeout 30 virsh -c "$URI" net-define "$xml" 2>&1); then
		log "defined libvirt's standard network 'default' (192.168.122.0/24, NAT, DHCP) from $xml"
	else
		log "warning: no libvirt network 'default' and defining it failed (guests get no address): $out"
		rc=1
	fi
	[ -z "$tmp" ] || rm -f "$tmp"
	return $rc
}

start_network() {
	[ "$WANT_NETWORK" = 1 ] || return 0
	local state
	state=$(timeout 10 virsh -c "$URI" net-info default 2>/dev/null | awk '/^Active:/ { print $2 }') || true
	case "$state" in
		yes) return 0 ;;
		no) ;;
		*) define_default_network || return 0 ;;
	esac
	local out
	if out=$(timeout 30 virsh -c "$URI" net-start default 2>&1); then
		touch "$RUN_DIR/network-default.started"
		log "started libvirt network 'default' (virbr0, NAT, dnsmasq)"
	else
		log "warning: could not start libvirt network 'default' (test domains use no network): $out"
	fi
}

# fix_dev_kvm: give /dev/kvm udev's usual owner and mode when nothing did.
fix_dev_kvm() {
	local group mode
	if [ ! -e /dev/kvm ]; then
		log "no /dev/kvm: guests run under TCG (software emulation)"
		return 0
	fi
	group=$(stat -c %G /dev/kvm) mode=$(stat -c %a /dev/kvm)
	# Usable by libvirt-qemu already: group kvm with rw, or rw for everyone.
	if { [ "$group" = kvm ] && [ $((0$mode & 060)) = $((060)) ]; } || [ $((0$mode & 06)) = 6 ]; then
		return 0
	fi
	if [ "${VP_KEEP_DEV_KVM:-0}" = 1 ]; then
		log "/dev/kvm is $group $mode (QEMU cannot open it); left so (VP_KEEP_DEV_KVM=1)"
		return 0
	fi
	if [ "$(id -u)" -ne 0 ] || ! getent group kvm >/dev/null; then
		log "/dev/kvm is $group $mode and cannot be fixed here (needs root and a group 'kvm'); guests run under TCG"
		return 0
	fi
	chgrp kvm /dev/kvm && chmod 0660 /dev/kvm ||
		{ log "warning: could not set /dev/kvm to root:kvm 0660; guests run under TCG"; return 0; }
	log "/dev/kvm was $group $mode (no udev rule ran): set root:kvm 0660, as udev does"
}

# ---------------------------------------------------------------------------------------------
ensure_binaries
fix_dev_kvm
if virsh_ok; then
	log "libvirt already answers on $URI; daemons left alone"
	if [ "$FORCE_SMOKE" = 1 ]; then
		err=$(smoke_domain) || { echo "$err" >&2; die "libvirt answers but cannot start a QEMU (TCG) domain"; }
		log "smoke test passed: a QEMU (TCG) domain starts"
	fi
	exit 0
fi

[ "$(id -u)" -eq 0 ] || die "'virsh -c $URI version' does not answer and starting the system daemons needs root"
mkdir -p "$RUN_DIR" /run/libvirt /var/log/libvirt/qemu /var/lib/libvirt/qemu \
	|| die "cannot create $RUN_DIR or libvirt's state directories"
chmod 0755 "$RUN_DIR"
# Serialise concurrent callers (parallel ctest): the second waits, then finds libvirt answering.
exec 8>"$RUN_DIR/lock" || die "cannot open $RUN_DIR/lock"
flock -w $((TIMEOUT + 120)) 8 || die "timed out waiting for another $PROG (lock $RUN_DIR/lock)"
if virsh_ok; then
	log "libvirt answers on $URI (started by a concurrent $PROG)"
	exit 0
fi

if pid=$(daemon_pid libvirtd); then
	# Running but not answering: hung, or still starting up. Give it the bounded wait.
	log "libvirtd (pid $pid) is running but not answering yet; waiting"
	start_daemon virtlogd
	wait_for_virsh
else
	start_daemon virtlogd
	start_daemon libvirtd
	wait_for_virsh
fi
log "libvirt answers on $URI"
smoke_and_repair
start_network
