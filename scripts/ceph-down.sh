#!/usr/bin/env bash
# ceph-down.sh: stops the test cluster of ceph-up.sh (the OSD before the mon, or it waits on it) and removes its dir.
set -uo pipefail

RUN=${VP_CEPH_DIR:-/tmp/vp-ceph}
[[ -e $RUN/.vp-ceph ]] || { echo "ceph-down: no test cluster in '$RUN'"; exit 0; }

stop() { # stop NAME: SIGTERM by pid file, SIGKILL after 10 s
	local f=$RUN/$1.pid pid i
	[[ -f $f ]] || return 0
	pid=$(cat "$f")
	[[ $pid =~ ^[0-9]+$ ]] || return 0
	kill "$pid" 2>/dev/null || return 0
	for ((i = 0; i < 100; i++)); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	kill -9 "$pid" 2>/dev/null
}
stop osd.0
stop mon.a
rm -rf "$RUN"
echo "ceph-down: stopped and removed $RUN"
