#!/usr/bin/env bash
# bench_fleet.sh: `vdipool apply` of an N-clone pool (define only, TCG, preallocated extended-L2
# deltas, a blank base of a few GiB virtual made by qemu-img) over 3 test hosts against the same
# N clones on 1 test host, in the same run; then a second apply (nothing to do) and `plan` of the
# 3-host pool. Prints one line per figure and the ratio 1-host / 3-host.
# Usage: tests/bench/bench_fleet.sh [-n CLONES] [-s BASE_GiB]   (as root; defaults 300 and 4)
# Hosts are scripts/test-hosts-up.sh's (sshd per host on loopback, own mount namespace and session
# libvirtd, reached as qemu+libssh2); the controller runs in a mount namespace of its own, as in
# tests/integration/test_fleet.sh. The base is pushed to the hosts beforehand (not timed): both
# applies time only the clones. All hosts share this machine's cores and disk.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${VP_BUILD_DIR:-$ROOT/build}
CLI=${VDIPOOL_CLI:-$BUILD/bin/vdipool}
N=300 vsize=4
while getopts n:s: o; do
	case $o in
	n) N=$OPTARG ;;
	s) vsize=$OPTARG ;;
	*) echo "usage: $0 [-n CLONES] [-s BASE_GiB]" >&2; exit 2 ;;
	esac
done
[[ $(id -u) -eq 0 ]] || { echo "bench_fleet: run as root" >&2; exit 2; }
export VDIPOOL_PLUGIN_PATH=$BUILD/plugins VDIPOOL_TEMPLATE_PATH=$ROOT/templates CI=1

# Integration runs share the machine: one at a time. The hosts' daemons must not inherit the
# lock (they would hold it after we leave): they are started with fd 9 closed.
exec 9>/tmp/vp-itest.lock
flock 9
T=$(mktemp -d /var/tmp/vp-bench-fleet-XXXXXX)
chmod 0755 "$T"
export VP_TEST_HOSTS_DIR=$T/hosts VP_TEST_HOSTS_PORT=${VP_BENCH_PORT:-22820} VP_TEST_HOSTS_USER=${VP_BENCH_USER:-vpbf}
RUN=$VP_TEST_HOSTS_DIR
CTL=$T/ctl
POOL1=bf1h$$ POOL3=bf3h$$
mkdir -p "$CTL"
ctl() {
	unshare -m --propagation private sh -c 'mount --bind "$1" /var/lib/vdipool && shift && exec "$@"' \
		_ "$CTL" "$CLI" "$@" 9>&-
}
cleanup() {
	ctl destroy -q --yes "$T/pool1.yaml" >/dev/null 2>&1 || true
	ctl destroy -q --yes "$T/pool3.yaml" >/dev/null 2>&1 || true
	bash "$ROOT/scripts/test-hosts-down.sh" >/dev/null 2>&1 || true
	rm -rf "$T"
}
trap cleanup EXIT
now() { date +%s.%N; }
secs() { echo "$2 - $1" | bc -l; }

bash "$ROOT/scripts/test-hosts-up.sh" 3 >"$T/hosts-up.log" 2>&1 9>&- || { cat "$T/hosts-up.log" >&2; exit 1; }
mapfile -t HOSTS <"$RUN/hosts" # "i user port pid uri"

qemu-img create -q -f qcow2 "$T/base.qcow2" "${vsize}G"
ctl --root /var/lib/vdipool/t base import bench "$T/base.qcow2" --version 1 >/dev/null
for line in "${HOSTS[@]}"; do
	read -r _ user port _ _ <<<"$line"
	ctl --root /var/lib/vdipool/t base push bench@1 --to "$user@127.0.0.1:$port" --identity "$RUN/id_ed25519" \
		--known-hosts "$RUN/known_hosts" --remote-root /var/lib/vdipool/t >/dev/null
done

spec() { # spec FILE POOL NHOSTS
	{
		cat <<EOF
pool: { name: $2 }
base: { name: bench, version: "1" }
storage:
  tiers: [ { name: local, driver: dir, path: /var/lib/vdipool/t } ]
clones: { count: $N, name: "$2-{index:03}" }
delta: { cluster_size: 128K, extended_l2: true, preallocation: metadata }
domain: { template: server, memory: 64M, vcpus: 1, network: none, start: false, accel: tcg }
# 2 CPUs x 64 = 128 vCPUs per host: 3 hosts hold 384 one-vCPU clones (a one-host pool has no cap).
placement: { policy: spread, cpu_overcommit: 64, memory_overcommit: 8 }
hosts:
EOF
		for ((n = 1; n <= $3; n++)); do
			read -r _ user port _ uri <<<"${HOSTS[$((n - 1))]}"
			cat <<EOF
  - name: h$n
    uri: "$uri"
    ssh: { user: $user, port: $port, host: 127.0.0.1, identity: $RUN/id_ed25519, known_hosts: $RUN/known_hosts }
EOF
		done
	} >"$1"
}
spec "$T/pool1.yaml" "$POOL1" 1
spec "$T/pool3.yaml" "$POOL3" 3
deltas_on() { ls "$RUN/host$1/store/t/deltas/$2" 2>/dev/null | grep -c '\.qcow2$' || true; }

# A plan of each first (not timed): every host's session libvirtd is started and warm.
ctl plan "$T/pool3.yaml" >/dev/null
ctl plan "$T/pool1.yaml" >/dev/null

t0=$(now)
ctl apply -q "$T/pool1.yaml"
t1=$(now)
one=$(secs "$t0" "$t1")
on1=$(deltas_on 1 "$POOL1")
[[ $on1 == "$N" ]] || { echo "bench_fleet: the 1-host apply made $on1 deltas, not $N" >&2; exit 1; }
# h1 must be empty again: placement counts the vCPUs and memory of every defined domain.
ctl destroy -q --yes "$T/pool1.yaml"

t2=$(now)
ctl apply -q "$T/pool3.yaml"
t3=$(now)
ctl apply -q "$T/pool3.yaml"
t4=$(now)
ctl plan --detailed-exitcode "$T/pool3.yaml" >/dev/null
t5=$(now)
three=$(secs "$t2" "$t3")
again=$(secs "$t3" "$t4")
plan=$(secs "$t4" "$t5")
split="$(deltas_on 1 "$POOL3") / $(deltas_on 2 "$POOL3") / $(deltas_on 3 "$POOL3")"
total=$(($(deltas_on 1 "$POOL3") + $(deltas_on 2 "$POOL3") + $(deltas_on 3 "$POOL3")))
[[ $total == "$N" ]] || { echo "bench_fleet: the 3-host apply made $total deltas, not $N" >&2; exit 1; }

echo "all 3 \"hosts\" share this machine's $(nproc) cores and one disk: the ratio measures per-host work done in"
echo "parallel (SSH, session libvirtd, delta writes), not added hardware"
line() { printf '%-66s %8.2f s%s\n' "$1" "$2" "${3:-}"; }
line "apply $N clones on 1 host  (define only, $vsize GiB base, preallocated)" "$one" \
	"$(printf '  (%.2f ms/clone)' "$(echo "$one * 1000 / $N" | bc -l)")"
line "apply $N clones on 3 hosts ($split, spread)" "$three" \
	"$(printf '  (%.2f ms/clone)' "$(echo "$three * 1000 / $N" | bc -l)")"
line "second apply of the 3-host pool (nothing to do)" "$again"
line "plan of the unchanged 3-host pool" "$plan"
printf 'ratio 1-host / 3-host apply = %.2f\n' "$(echo "$one / $three" | bc -l)"
