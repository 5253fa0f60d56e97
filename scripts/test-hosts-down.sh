#!/usr/bin/env bash
# test-hosts-down.sh: stops the sshds test-hosts-up.sh started (by their recorded pids) and removes their users and run dir.
# Every process in a host's mount namespace was started by that host's sshd (connections, sftp,
# remote commands, the user's session libvirtd and virtlogd, QEMU guests): those are stopped too,
# found by namespace or by the uid of a user this script's partner created, never by name.
set -uo pipefail

# Usage: scripts/test-hosts-down.sh            all hosts: processes, users, run dir
#        scripts/test-hosts-down.sh --host I   host I only, as if it lost power: its sshd and every
#          process of its namespace and of its user are killed (SIGKILL); its user, store and
#          config stay, so `scripts/test-hosts-up.sh --restart I` brings it back as it was.
run=${VP_TEST_HOSTS_DIR:-/tmp/vp-test-hosts}
one=
if [[ ${1:-} == --host ]]; then
	one=${2:-}
	[[ $one =~ ^[1-9][0-9]?$ ]] || { echo "usage: $0 [--host I]" >&2; exit 2; }
fi
[[ -d $run ]] || exit 0

# uid_pids UID: the processes whose real uid is UID.
uid_pids() {
	local p k v
	for p in /proc/[0-9]*; do
		while read -r k v _; do
			[[ $k == Uid: ]] || continue
			[[ $v == "$1" ]] && echo "${p#/proc/}"
			break
		done <"$p/status" 2>/dev/null
	done
}

if [[ -n $one ]]; then
	line=$(awk -v i="$one" '$1 == i' "$run/hosts" 2>/dev/null)
	[[ -n $line ]] || { echo "test-hosts-down: no host $one in $run/hosts" >&2; exit 1; }
	read -r _ user _ pid _ <<<"$line"
	uid=$(id -u "$user") || exit 1
	if [[ -r /proc/$pid/cmdline ]] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF "$run/host$one/sshd_config"; then
		ns=$(readlink "/proc/$pid/ns/mnt")
		kill -9 "$pid" 2>/dev/null
		for p in /proc/[0-9]*; do
			p=${p#/proc/}
			[[ $(readlink "/proc/$p/ns/mnt" 2>/dev/null) == "$ns" ]] && kill -9 "$p" 2>/dev/null
		done
	fi
	for p in $(uid_pids "$uid"); do kill -9 "$p" 2>/dev/null; done
	for ((t = 0; t < 50; t++)); do
		[[ -z $(uid_pids "$uid") ]] && ! kill -0 "$pid" 2>/dev/null && break
		sleep 0.1
	done
	rm -f "$run/host$one/pid"
	echo "test host $one down"
	exit 0
fi

# The session daemons first, politely (SIGTERM, up to 5 s): they run as the hosts' users, which
# this run created (RUN/users), so their uid names exactly them, even when a host's sshd is gone.
users=()
[[ -f $run/users ]] && mapfile -t users <"$run/users"
uids=()
for user in "${users[@]}"; do
	[[ $user =~ ^[a-z]{2,16}[0-9]+$ ]] && uid=$(id -u "$user" 2>/dev/null) && uids+=("$uid")
done
for uid in "${uids[@]}"; do
	for p in $(uid_pids "$uid"); do
		case $(readlink "/proc/$p/exe" 2>/dev/null) in */libvirtd | */virtlogd | */virtqemud) kill "$p" 2>/dev/null ;; esac
	done
done
for ((t = 0; t < 50; t++)); do
	left=0
	for uid in "${uids[@]}"; do
		for p in $(uid_pids "$uid"); do
			case $(readlink "/proc/$p/exe" 2>/dev/null) in */libvirtd | */virtlogd | */virtqemud) left=1 ;; esac
		done
	done
	((left)) || break
	sleep 0.1
done

for pidfile in "$run"/host*/pid; do
	[[ -f $pidfile ]] || continue
	pid=$(cat "$pidfile")
	[[ $pid =~ ^[0-9]+$ ]] || continue
	# Only a live sshd whose config is this host's: a recycled pid is left alone.
	if [[ -r /proc/$pid/cmdline ]] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF "$(dirname "$pidfile")/sshd_config"; then
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
# Whatever these users still run (guests QEMU kept after its daemon left, a host whose sshd died
# first): userdel refuses a user with processes.
for uid in "${uids[@]}"; do
	for p in $(uid_pids "$uid"); do kill -9 "$p" 2>/dev/null; done
done
for uid in "${uids[@]}"; do
	for ((t = 0; t < 50; t++)); do [[ -z $(uid_pids "$uid") ]] && break; sleep 0.1; done
done
for user in "${users[@]}"; do
	[[ $user =~ ^[a-z]{2,16}[0-9]+$ ]] && userdel "$user" 2>/dev/null
done
rm -rf "$run"
echo "test hosts down"
