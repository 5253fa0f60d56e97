#!/usr/bin/env bash
# bench_compress.sh: a base imported plain against `base import --compress` (zlib qcow2), in the same run:
# bytes stored, import time, bytes and time to push it to a host, and what the clones pay to read it.
# Usage: tests/bench/bench_compress.sh [-s VIRTUAL_GiB] [-d DATA_MiB] [-n CLONES] [-P]   (as root;
#   defaults 2, 512, 8; -P: no push, no test host)
# The data is what OS images hold: executables and libraries from /usr, in 8 extents. Push: one
# SSH test host (scripts/test-hosts-up.sh), the plain base sent plain and with --compress yes (zlib on
# the SSH transport: what a user would otherwise do), the compressed one sent as it is. Reads: each
# of N clones (qcow2 overlays on the base, like vdipool's deltas) read whole, in 1 MiB requests,
# with O_DIRECT (qemu-img bench -t none: from the disk, not the page cache), first one clone alone,
# then all N at once (a boot storm on 2 cores); a guest booting reads a fraction of this.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${VP_BUILD_DIR:-$ROOT/build}
CLI=${VDIPOOL_CLI:-$BUILD/bin/vdipool}
# shellcheck source=tests/bench/usr_image.sh
. "$ROOT/tests/bench/usr_image.sh"
vsize=2 data=512 clones=8 push=1
while getopts s:d:n:P o; do
	case $o in
	s) vsize=$OPTARG ;;
	d) data=$OPTARG ;;
	n) clones=$OPTARG ;;
	P) push=0 ;;
	*) echo "usage: $0 [-s VIRTUAL_GiB] [-d DATA_MiB] [-n CLONES] [-P]" >&2; exit 2 ;;
	esac
done
[[ $(id -u) -eq 0 ]] || { echo "bench_compress: run as root" >&2; exit 2; }

exec 9>/tmp/vp-itest.lock
flock 9
T=$(mktemp -d /var/tmp/vp-bc-XXXXXX)
chmod 0755 "$T"
export VP_TEST_HOSTS_DIR=/tmp/vpbc$$ VP_TEST_HOSTS_PORT=${VP_BENCH_PORT:-22450}
cleanup() {
	((push)) && bash "$ROOT/scripts/test-hosts-down.sh" >/dev/null 2>&1 || true
	rm -rf "$VP_TEST_HOSTS_DIR"
	rm -rf "$T"
}
trap cleanup EXIT

echo "building a ${vsize} GiB raw image with ${data} MiB of data (8 extents) ..."
usr_image "$T/img.raw" "$vsize" "$data" 8
sync

now() { date +%s.%N; }
declare -A isecs stored fsize
for kind in plain zlib; do
	flag=()
	[[ $kind == zlib ]] && flag=(--compress)
	t0=$(now)
	"$CLI" --root "$T/store" base import "$kind" "$T/img.raw" --version 1 "${flag[@]}" >/dev/null
	t1=$(now)
	img=$T/store/bases/$kind/1/disk.qcow2
	isecs[$kind]=$(echo "$t1 - $t0" | bc)
	stored[$kind]=$(($(stat -c '%b*%B' "$img")))
	fsize[$kind]=$(stat -c %s "$img")
	qemu-img compare -q "$T/img.raw" "$img" || { echo "bench_compress: $kind base differs from the image" >&2; exit 1; }
done
gz=$(gzip -1 -c "$T/img.raw" | wc -c)

echo
printf '%-34s %10s %12s\n' "import (vdipool base import)" "time" "stored"
for kind in plain zlib; do
	printf '%-34s %8.1f s %8d MiB\n' "$([[ $kind == zlib ]] && echo "--compress (zlib qcow2)" || echo "plain qcow2")" \
		"${isecs[$kind]}" $((stored[$kind] >> 20))
done
printf '(gzip -1 of the whole raw image, for scale: %d MiB)\n' $((gz >> 20))

declare -A psecs psent
if ((push)); then
	bash "$ROOT/scripts/test-hosts-up.sh" 1 >/dev/null
	H=$VP_TEST_HOSTS_DIR
	pushone() { # pushone KIND LABEL [--compress yes|no]
		local kind=$1 label=$2 out
		shift 2
		rm -rf "$H/host1/store/bases"
		sync
		out=$("$CLI" --root "$T/store" base push "$kind@1" --to "vphost1@127.0.0.1:$((VP_TEST_HOSTS_PORT + 1))" \
			--identity "$H/id_ed25519" --known-hosts "$H/known_hosts" -o json "$@")
		psecs[$label]=$(grep -o '"seconds":[0-9.]*' <<<"$out" | cut -d: -f2)
		psent[$label]=$(grep -o '"wire_sent":[0-9]*' <<<"$out" | cut -d: -f2)
		printf '%-34s %8.1f s %8d MiB sent\n' "$label" "${psecs[$label]}" $((psent[$label] >> 20))
	}
	echo
	echo "push to one SSH test host (vdipool base push; sent: bytes written to the socket):"
	pushone plain "plain" --compress no
	pushone plain "plain, --compress yes (ssh zlib)" --compress yes
	pushone zlib "zlib base, as it is" --compress no
fi

# Reads through N clones: overlays on each base, read whole.
vbytes=$((vsize << 30))
count=$((vbytes >> 20))
readall() { qemu-img bench -f qcow2 -t none -c "$count" -s 1M -S 1M -d 4 -q "$1" >/dev/null 2>&1 || qemu-img bench -f qcow2 -t none -c "$count" -s 1M -S 1M -d 4 "$1" >/dev/null; }
export -f readall
export count
declare -A one storm cpu
for kind in plain zlib; do
	for ((i = 1; i <= clones; i++)); do
		qemu-img create -q -f qcow2 -F qcow2 -b "$T/store/bases/$kind/1/disk.qcow2" "$T/$kind-c$i.qcow2"
	done
	t0=$(now)
	readall "$T/$kind-c1.qcow2"
	t1=$(now)
	one[$kind]=$(echo "$t1 - $t0" | bc)
	c0=$(awk '{ print $14 + $15 + $16 + $17 }' /proc/$$/stat)
	t0=$(now)
	for ((i = 1; i <= clones; i++)); do readall "$T/$kind-c$i.qcow2" & done
	wait
	t1=$(now)
	storm[$kind]=$(echo "$t1 - $t0" | bc)
	ticks=$(getconf CLK_TCK)
	c1=$(awk '{ print $14 + $15 + $16 + $17 }' /proc/$$/stat)
	cpu[$kind]=$(echo "($c1 - $c0) / $ticks" | bc -l)
done
echo
printf 'reading clones whole (%d GiB virtual each, %d MiB of it data, 1 MiB requests, O_DIRECT):\n' "$vsize" "$data"
for kind in plain zlib; do
	printf '%-34s one clone %6.1f s | %d clones at once %6.1f s, %6.1f s CPU\n' \
		"$([[ $kind == zlib ]] && echo "zlib base" || echo "plain base")" "${one[$kind]}" "$clones" "${storm[$kind]}" "${cpu[$kind]}"
done

echo
printf 'ratio zlib / plain: stored %.2f, import time %.2f' \
	"$(echo "${stored[zlib]} / ${stored[plain]}" | bc -l)" "$(echo "${isecs[zlib]} / ${isecs[plain]}" | bc -l)"
if ((push)); then
	printf ', push sent %.2f, push time %.2f (plain with ssh zlib: sent %.2f, time %.2f)' \
		"$(echo "${psent[zlib base, as it is]} / ${psent[plain]}" | bc -l)" \
		"$(echo "${psecs[zlib base, as it is]} / ${psecs[plain]}" | bc -l)" \
		"$(echo "${psent[plain, --compress yes (ssh zlib)]} / ${psent[plain]}" | bc -l)" \
		"$(echo "${psecs[plain, --compress yes (ssh zlib)]} / ${psecs[plain]}" | bc -l)"
fi
printf ',\n  read one clone %.2f, %d clones at once %.2f (CPU %.2f)\n' \
	"$(echo "${one[zlib]} / ${one[plain]}" | bc -l)" "$clones" \
	"$(echo "${storm[zlib]} / ${storm[plain]}" | bc -l)" "$(echo "${cpu[zlib]} / ${cpu[plain]}" | bc -l)"
