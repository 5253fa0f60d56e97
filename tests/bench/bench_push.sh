#!/usr/bin/env bash
# bench_push.sh: a 4 GiB image holding 1 GiB of data to 3 SSH test hosts: vdipool base push against scp and rsync -z.
# Usage: tests/bench/bench_push.sh [-s VIRTUAL_GiB] [-d DATA_MiB] [-W]   (as root; defaults 4 and 1024)
#   -W: also push to one host with each SFTP window (30000 bytes: no pipelining, up to 16 MiB)
# Same run, same hosts (scripts/test-hosts-up.sh: sshd per host on loopback, own mount
# namespace), each tool to the 3 hosts one after the other. Bytes on the wire are the bytes of
# the TCP packets sent to the hosts' ports, counted by an iptables rule in a chain of our own
# (VP_BENCH_PUSH, removed at the end); vdipool's own count of bytes written to its socket is
# printed beside it. The data is what OS images hold: executables and libraries from /usr.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${VP_BUILD_DIR:-$ROOT/build}
CLI=${VDIPOOL_CLI:-$BUILD/bin/vdipool}
# shellcheck source=tests/bench/usr_image.sh
. "$ROOT/tests/bench/usr_image.sh"
vsize=4 data=1024 sweep=0
while getopts s:d:W o; do
	case $o in
	s) vsize=$OPTARG ;;
	d) data=$OPTARG ;;
	W) sweep=1 ;;
	*) echo "usage: $0 [-s VIRTUAL_GiB] [-d DATA_MiB] [-W]" >&2; exit 2 ;;
	esac
done
[[ $(id -u) -eq 0 ]] || { echo "bench_push: run as root" >&2; exit 2; }
command -v rsync >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rsync >/dev/null

exec 9>/tmp/vp-itest.lock
flock 9
T=$(mktemp -d /var/tmp/vp-bench-push-XXXXXX)
chmod 0755 "$T"
export VP_TEST_HOSTS_DIR=$T/hosts VP_TEST_HOSTS_PORT=${VP_BENCH_PORT:-22400}
P1=$((VP_TEST_HOSTS_PORT + 1)) P3=$((VP_TEST_HOSTS_PORT + 3))
CHAIN=VP_BENCH_PUSH
cleanup() {
	iptables -D OUTPUT -o lo -p tcp --dport "$P1:$P3" -j "$CHAIN" 2>/dev/null || true
	iptables -F "$CHAIN" 2>/dev/null || true
	iptables -X "$CHAIN" 2>/dev/null || true
	bash "$ROOT/scripts/test-hosts-down.sh" >/dev/null 2>&1 || true
	rm -rf "$T"
}
trap cleanup EXIT

bash "$ROOT/scripts/test-hosts-up.sh" 3 >/dev/null
H=$VP_TEST_HOSTS_DIR
ID=$H/id_ed25519 KH=$H/known_hosts
wire_ok=1
{ iptables -N "$CHAIN" && iptables -A "$CHAIN" -j RETURN &&
	iptables -I OUTPUT -o lo -p tcp --dport "$P1:$P3" -j "$CHAIN"; } 2>/dev/null || wire_ok=0
wire() { ((wire_ok)) && iptables -L "$CHAIN" -vnx | awk '$3 == "RETURN" { print $2 }' || echo 0; }
wire_zero() { ((wire_ok)) && iptables -Z "$CHAIN" || true; }
wipe_hosts() { for h in 1 2 3; do rm -rf "$H/host$h/store/"{bases,copy.raw}; done; sync; }

echo "building a ${vsize} GiB raw image with ${data} MiB of data (16 extents) ..."
usr_image "$T/img.raw" "$vsize" "$data" 16
"$CLI" --root "$T/store" base import bench "$T/img.raw" --version 1 --format raw >/dev/null
IMG=$T/store/bases/bench/1/disk.raw
alloc=$(($(stat -c '%b*%B' "$IMG")))
gz=$(gzip -1 -c "$IMG" | wc -c)
printf 'image: %s GiB virtual, %d MiB allocated; gzip -1 of the whole file: %d MiB\n\n' \
	"$vsize" $((alloc >> 20)) $((gz >> 20))

declare -A secs bytes
# run NAME COMMAND-for-host-$h...: the command for the 3 hosts in turn, timed, wire counted.
run() {
	local name=$1 t0 t1 h
	shift
	wipe_hosts
	wire_zero
	t0=$(date +%s.%N)
	for h in 1 2 3; do
		eval "$*" || { echo "bench_push: $name to host $h failed" >&2; exit 1; }
	done
	t1=$(date +%s.%N)
	secs[$name]=$(echo "$t1 - $t0" | bc)
	bytes[$name]=$(wire)
	printf '%-34s %8.1f s  %8d MiB on the wire\n' "$name" "${secs[$name]}" $((bytes[$name] >> 20))
}
port() { echo $((VP_TEST_HOSTS_PORT + $1)); }
vp_push() {
	"$CLI" --root "$T/store" base push bench@1 --to "vphost$h@127.0.0.1:$(port "$h")" \
		--identity "$ID" --known-hosts "$KH" -o json "$@" >>"$T/vp.json"
}
SSH_OPTS="-i $ID -o UserKnownHostsFile=$KH -o StrictHostKeyChecking=yes -o BatchMode=yes"

echo "to 3 hosts, one after the other:"
run "vdipool base push" 'vp_push --compress no'
vp_hash=$(grep -o '"hash_seconds":[0-9.]*' "$T/vp.json" | cut -d: -f2 | paste -sd+ | bc)
vp_own=$(grep -o '"wire_sent":[0-9]*' "$T/vp.json" | cut -d: -f2 | paste -sd+ | bc)
cipher=$(grep -o '"cipher":"[^"]*"' "$T/vp.json" | head -1 | cut -d'"' -f4)
: >"$T/vp.json"
run "vdipool base push --compress yes" 'vp_push --compress yes'
vpz_hash=$(grep -o '"hash_seconds":[0-9.]*' "$T/vp.json" | cut -d: -f2 | paste -sd+ | bc)
run "scp" 'scp -q $SSH_OPTS -P $(port $h) "$IMG" vphost$h@127.0.0.1:/var/lib/vdipool/copy.raw'
run "rsync -z" 'rsync -z -e "ssh $SSH_OPTS -p $(port $h)" "$IMG" vphost$h@127.0.0.1:/var/lib/vdipool/copy.raw'
run "rsync -zS (sparse)" 'rsync -zS -e "ssh $SSH_OPTS -p $(port $h)" "$IMG" vphost$h@127.0.0.1:/var/lib/vdipool/copy.raw'
echo
printf 'vdipool: %s; of its time, %.1f s (%.1f s compressed) hashing on the hosts;\n' "$cipher" "$vp_hash" "$vpz_hash"
printf '  bytes vdipool wrote to its sockets: %d MiB (the iptables count adds TCP/IP headers)\n' $((vp_own >> 20))
echo
for other in "scp" "rsync -z" "rsync -zS (sparse)"; do
	printf 'ratio %-20s / vdipool: time %5.2f, wire %5.2f | / vdipool --compress yes: time %5.2f, wire %5.2f\n' \
		"$other" "$(echo "${secs[$other]} / ${secs[vdipool base push]}" | bc -l)" \
		"$(echo "${bytes[$other]} / ${bytes[vdipool base push]}" | bc -l)" \
		"$(echo "${secs[$other]} / ${secs[vdipool base push --compress yes]}" | bc -l)" \
		"$(echo "${bytes[$other]} / ${bytes[vdipool base push --compress yes]}" | bc -l)"
done
((wire_ok)) || echo "(iptables not usable here: bytes on the wire not measured)"

if ((sweep)); then
	echo
	echo "SFTP window (bytes handed to one pipelined write), one host, transfer only (hash excluded):"
	for w in 30000 262144 1M 4M 16M; do
		wipe_hosts
		: >"$T/vp.json"
		h=1 vp_push --window "$w"
		s=$(grep -o '"seconds":[0-9.]*' "$T/vp.json" | cut -d: -f2)
		hs=$(grep -o '"hash_seconds":[0-9.]*' "$T/vp.json" | cut -d: -f2)
		printf '  window %-7s %6.1f s  %6.1f MiB/s\n' "$w" "$(echo "$s - $hs" | bc)" \
			"$(echo "$alloc / 1048576 / ($s - $hs)" | bc -l)"
	done
fi
