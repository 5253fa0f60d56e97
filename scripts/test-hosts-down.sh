#!/usr/bin/env bash
# test-hosts-down.sh: stops the sshds test-hosts-up.sh started (by their recorded pids) and removes their users and run dir.
# Every process in a host's mount namespace was started by that host's sshd (connections, sftp,
# remote commands): those are stopped too, found by namespace, never by name.
set -uo pipefail

run=${VP_TEST_HOSTS_DIR:-/tmp/vp-test-hosts}
[[ -d $run ]] || exit 0

for pidfile in "$run"/host*/pid; do
	[[ -f $pidfile ]] || continue
	pid=$(cat "$pidfile")
	[[ $pid =~ ^[0-9]+$ ]] || continue
	# Only a live sshd whose config is this host's: a recycled pid is left alone.
	if [[ -r /proc/$pid/cmdline ]] && tr '\0' ' ' </proc/$pid/cmdline | grep -qF "$(dirname "$pidfile")/sshd_config"; then
		ns=$(readlink "/proc/$pid/ns/mnt")
		kill "$pid" 2>/dev/null
		for p in /proc/[0-9]*; do
			p=${p#/proc/}
			[[ $p != "$pid" && $(readlink "/proc/$p/ns/mnt" 2>/dev/null) == "$ns" ]] && kill -9 "$p" 2>/dev/null
		done
		for ((t = 0; t < 50; t++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$pid" 2>/dev/null
	fi
	rm -f "$pidfile"
done
if [[ -f $run/users ]]; then
	while read -r user; do
		[[ $user =~ ^[a-z]{2,16}[0-9]+$ ]] && userdel "$user" 2>/dev/null
	done <"$run/users"
fi
rm -rf "$run"
echo "test hosts down"
