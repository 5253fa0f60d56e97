#!/usr/bin/env bash
# test-hosts-up.sh: starts N throw-away SSH "hosts" on loopback, each an sshd with its own key, user and store view.
# Usage: scripts/test-hosts-up.sh N
#        scripts/test-hosts-up.sh --restart I   starts host I's sshd again (same port, key, user,
#          store) after `scripts/test-hosts-down.sh --host I`; its session libvirtd comes back with
#          the next libvirt connection.
# Host i: sshd on 127.0.0.1:$((VP_TEST_HOSTS_PORT+i)) (default 22200+i) with its own ed25519 host
# key, unix user vphost<i> allowed in by a key made here, running in its own mount namespace
# (unshare -m --propagation private) where RUN/host<i>/store is bind-mounted on /var/lib/vdipool,
# so each host sees only its own store. RUN is $VP_TEST_HOSTS_DIR (default /tmp/vp-test-hosts);
# users are $VP_TEST_HOSTS_USER<i> (default vphost<i>: tests running side by side use their own).
# Writes RUN/known_hosts, RUN/id_ed25519 (the client key) and RUN/hosts ("i user port pid uri" lines).
# Each host is also a libvirt host: uri is qemu+libssh2://USER@127.0.0.1:PORT/session?keyfile=
# RUN/id_ed25519&known_hosts=RUN/known_hosts&sshauth=privkey. libvirt runs virt-ssh-helper through
# the host's sshd, which autostarts the user's session libvirtd (and virtlogd) in the host's mount
# namespace: that daemon, and QEMU as the host's user, see only the host's store. Its state lives
# in the user's HOME (RUN/host<i>/home: .config/libvirt, .cache/libvirt).
# Only loopback is used. scripts/test-hosts-down.sh stops exactly these sshds, the processes of
# these users (session daemons, guests) and removes the users.
set -euo pipefail

n=${1:-}
restart=
if [[ $n == --restart ]]; then
	restart=${2:-}
	[[ $restart =~ ^[1-9][0-9]?$ ]] || { echo "usage: $0 --restart I" >&2; exit 2; }
elif ! [[ $n =~ ^[1-9][0-9]?$ ]]; then
	echo "usage: $0 N   (1-99 hosts) | --restart I" >&2
	exit 2
fi
[[ $(id -u) -eq 0 ]] || { echo "test-hosts-up: must run as root (users, namespaces, bind mounts)" >&2; exit 2; }
run=${VP_TEST_HOSTS_DIR:-/tmp/vp-test-hosts}
mnt=/var/lib/vdipool

# start_sshd I: host I's sshd in a mount namespace of its own where its store is $mnt; sets $pid.
# unshare execs sh, which execs sshd: $! is sshd's pid. setsid: it outlives this script.
start_sshd() {
	local dir=$run/host$1
	setsid unshare -m --propagation private \
		sh -c "mount --bind '$dir/store' '$mnt' && exec /usr/sbin/sshd -D -f '$dir/sshd_config' -E '$dir/sshd.log'" \
		</dev/null >>"$dir/sshd.log" 2>&1 &
	pid=$!
	echo "$pid" >"$dir/pid"
}
# wait_listen I PORT PID: until host I's sshd listens (and is still alive).
wait_listen() {
	local t
	for ((t = 0; t < 100; t++)); do
		kill -0 "$3" 2>/dev/null || { echo "test-hosts-up: sshd of host $1 died: $(tail -3 "$run/host$1/sshd.log")" >&2; exit 1; }
		(exec 3<>"/dev/tcp/127.0.0.1/$2") 2>/dev/null && return 0
		sleep 0.1
	done
	echo "test-hosts-up: host $1 does not listen on port $2" >&2
	exit 1
}

if [[ -n $restart ]]; then
	line=$(awk -v i="$restart" '$1 == i' "$run/hosts" 2>/dev/null)
	[[ -n $line ]] || { echo "test-hosts-up: no host $restart in $run/hosts" >&2; exit 1; }
	read -r i user port old uri <<<"$line"
	if [[ -f $run/host$i/pid ]] && kill -0 "$(cat "$run/host$i/pid")" 2>/dev/null; then
		echo "test-hosts-up: host $i is up (pid $(cat "$run/host$i/pid")): scripts/test-hosts-down.sh --host $i first" >&2
		exit 1
	fi
	start_sshd "$i"
	awk -v i="$i" -v pid="$pid" '$1 == i { $4 = pid } { print }' "$run/hosts" >"$run/hosts.new"
	mv "$run/hosts.new" "$run/hosts"
	wait_listen "$i" "$port" "$pid"
	echo "test host $i up again (sshd pid $pid, was $old)"
	exit 0
fi
port0=${VP_TEST_HOSTS_PORT:-22200}
uprefix=${VP_TEST_HOSTS_USER:-vphost}
[[ $uprefix =~ ^[a-z]{2,16}$ ]] || { echo "test-hosts-up: VP_TEST_HOSTS_USER: 2-16 of a-z" >&2; exit 2; }

if [[ ! -x /usr/sbin/sshd ]]; then
	echo "test-hosts-up: installing openssh-server"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends openssh-server >/dev/null
fi
if [[ -e $run/hosts ]]; then
	echo "test-hosts-up: $run/hosts exists: hosts are up already; run scripts/test-hosts-down.sh first" >&2
	exit 1
fi
# libvirt over SSH runs virt-ssh-helper on the host side (the same machine here), which starts
# the session libvirtd; without them the hosts still serve SSH and SFTP.
if ! command -v virt-ssh-helper >/dev/null 2>&1 || ! [[ -x /usr/sbin/libvirtd ]]; then
	echo "test-hosts-up: warning: no virt-ssh-helper or /usr/sbin/libvirtd: the hosts answer SSH only (scripts/libvirt-up.sh installs libvirt)" >&2
fi
mkdir -p "$run" /run/sshd "$mnt"
chmod 0755 "$run"
[[ -f $run/id_ed25519 ]] || ssh-keygen -q -t ed25519 -N '' -C vdipool-test-client -f "$run/id_ed25519"
: >"$run/known_hosts"

for ((i = 1; i <= n; i++)); do
	user=$uprefix$i port=$((port0 + i)) dir=$run/host$i
	mkdir -p "$dir/store"
	if ! id "$user" >/dev/null 2>&1; then
		useradd -M -d "$dir/home" -s /bin/sh "$user"
		echo "$user" >>"$run/users"
	fi
	# A user left by a killed run keeps its old HOME: libvirt's session daemon lives there.
	usermod -p '*' -d "$dir/home" "$user" # no password, but not locked: key auth only
	mkdir -p "$dir/home"
	# QEMU's monitor socket is HOME/.config/libvirt/qemu/lib/domain-ID-NAME/monitor.sock, NAME cut
	# to 20 characters: a unix socket path holds 107, so a longer HOME fails every guest start.
	if ((${#dir} + 5 + 38 + 20 + 13 > 107)); then
		echo "test-hosts-up: warning: $dir/home is too long for QEMU's monitor socket: guests will not start on host $i (use a shorter VP_TEST_HOSTS_DIR)" >&2
	fi
	# The store belongs to the host's user: its QEMU reads bases there and writes deltas.
	chown "$user:" "$dir/store" "$dir/home"
	chmod 0755 "$dir" "$dir/store"
	[[ -f $dir/ssh_host_ed25519_key ]] || ssh-keygen -q -t ed25519 -N '' -C "vp-test-host$i" -f "$dir/ssh_host_ed25519_key"
	cp "$run/id_ed25519.pub" "$dir/authorized_keys"
	chmod 0644 "$dir/authorized_keys"
	cat >"$dir/sshd_config" <<CFG
# throw-away test host $i (scripts/test-hosts-up.sh)
Port $port
ListenAddress 127.0.0.1
HostKey $dir/ssh_host_ed25519_key
PidFile $dir/sshd.pidfile
AuthorizedKeysFile $dir/authorized_keys
AllowUsers $user
PermitRootLogin no
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
Compression yes
# Tests may give a host's user another PATH in ~/.ssh/environment (tools missing on a host).
PermitUserEnvironment PATH
Subsystem sftp internal-sftp
MaxStartups 50
MaxSessions 50
LogLevel INFO
CFG
	/usr/sbin/sshd -t -f "$dir/sshd_config"
	# sshd reads authorized_keys as the user: every directory above it must let the user through.
	if ! runuser -u "$user" -- test -r "$dir/authorized_keys"; then
		echo "test-hosts-up: $user cannot read $dir/authorized_keys: make the directories above $run traversable (chmod o+x)" >&2
		exit 1
	fi
	start_sshd "$i"
	uri="qemu+libssh2://$user@127.0.0.1:$port/session?keyfile=$run/id_ed25519&known_hosts=$run/known_hosts&sshauth=privkey"
	echo "$i $user $port $pid $uri" >>"$run/hosts"
	# OpenSSH's "[host]:port" form for a port other than 22, plain (not hashed): the form libssh2
	# (libvirt's libssh2 transport and lib/ssh) reads back.
	echo "[127.0.0.1]:$port $(cut -d' ' -f1,2 "$dir/ssh_host_ed25519_key.pub")" >>"$run/known_hosts"
done

# Wait until every sshd listens (and is still alive).
while read -r i user port pid uri; do
	wait_listen "$i" "$port" "$pid"
done <"$run/hosts"

echo "test hosts up (run dir $run):"
while read -r i user port pid uri; do
	echo "  host$i: ssh -i $run/id_ed25519 -o UserKnownHostsFile=$run/known_hosts -p $port $user@127.0.0.1   (sshd pid $pid, store $run/host$i/store on $mnt)"
	echo "         libvirt: $uri"
done <"$run/hosts"
echo "  known_hosts: $run/known_hosts   identity: $run/id_ed25519"
