#!/usr/bin/env bash
# Stops what scripts/libvirt-up.sh started (libvirtd, virtlogd, the 'default' network) and nothing else.
#
# Only processes recorded in $VP_LIBVIRT_RUN_DIR (default /run/vdipool-libvirt) are stopped, and
# only if the recorded pid still is the same process (name and start time match). Daemons that
# were already running before libvirt-up.sh are never touched. Running domains are not
# destroyed (they belong to whoever started them); QEMU keeps running without libvirtd and a
# later libvirtd reconnects to it. Config changes libvirt-up.sh made to /etc/libvirt/qemu.conf
# stay (they are needed on the next start too); the original is in qemu.conf.vdipool-orig.
set -euo pipefail

PROG=${0##*/}
URI=${VP_LIBVIRT_URI:-qemu:///system}
RUN_DIR=${VP_LIBVIRT_RUN_DIR:-/run/vdipool-libvirt}

die() { echo "$PROG: error: $*" >&2; exit 1; }
log() { echo "$PROG: $*" >&2; }

case "${1:-}" in
	"") ;;
	-h|--help) echo "usage: $PROG"; exit 0 ;;
	*) die "unknown argument: $1" ;;
esac

if [ ! -d "$RUN_DIR" ]; then
	log "nothing to stop ($RUN_DIR does not exist)"
	exit 0
fi

proc_start_time() { awk '{ sub(/^.*\) /, ""); print $20 }' "/proc/$1/stat" 2>/dev/null; }
# our_pid NAME -> pid recorded in RUN_DIR/NAME.pid if that exact process is still alive
our_pid() {
	local f=$RUN_DIR/$1.pid pid st
	[ -f "$f" ] || return 1
	read -r pid st < "$f" || return 1
	[ -n "$pid" ] || return 1
	kill -0 "$pid" 2>/dev/null || return 1
	[ "$(basename "$(readlink "/proc/$pid/exe" 2>/dev/null)" 2>/dev/null)" = "$1" ] || return 1
	[ "$(proc_start_time "$pid")" = "$st" ] && echo "$pid"
}

if [ -e "$RUN_DIR/network-default.started" ]; then
	if our_pid libvirtd >/dev/null; then
		if timeout 30 virsh -c "$URI" net-destroy default >/dev/null 2>&1; then
			log "stopped libvirt network 'default'"
		else
			log "warning: could not stop libvirt network 'default'"
		fi
	fi
	rm -f "$RUN_DIR/network-default.started"
fi

stop_daemon() {
	local name=$1 pid
	if ! pid=$(our_pid "$name"); then
		[ ! -e "$RUN_DIR/$name.pid" ] || log "$name recorded in $RUN_DIR is no longer running"
		rm -f "$RUN_DIR/$name.pid"
		return 0
	fi
	if [ "$name" = libvirtd ]; then
		local running
		running=$(timeout 10 virsh -c "$URI" list --name 2>/dev/null | sed '/^$/d' | tr '\n' ' ') || true
		[ -z "$running" ] || log "warning: domains still running (left running): $running"
	fi
	kill -TERM "$pid" 2>/dev/null || true
	for _ in $(seq 100); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		log "warning: $name (pid $pid) ignored SIGTERM for 10 s; sending SIGKILL"
		kill -KILL "$pid" 2>/dev/null || true
	fi
	rm -f "$RUN_DIR/$name.pid"
	log "stopped $name (pid $pid)"
}
stop_daemon libvirtd
stop_daemon virtlogd
