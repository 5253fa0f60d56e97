#!/usr/bin/env bash
# bench_stamp.sh: N preallocated deltas (20 GiB base, extended L2, 128 KiB clusters: ~2.9 MiB of
# metadata each) through the dir backend as apply makes them now (stamped: reflinks on XFS, copies
# flushed in groups on ext4) against one durable vp_qcow2_create() each (how they were made
# before), and on ext4 against the disk's own sequential write speed: dd of the same number of
# bytes with conv=fdatasync, in the same run. Each figure is the best of R rounds (the machine is
# shared; rounds alternate the methods). Needs root (an XFS loop mount).
# Usage: bash tests/bench/bench_stamp.sh [-n DELTAS] [-r ROUNDS] [-p THREADS]   (1000, 3, 8)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${VP_BUILD_DIR:-$ROOT/build}
B=$BUILD/bench/bench_stamp
N=1000
R=3
P=8
while getopts "n:r:p:" o; do
	case $o in
	n) N=$OPTARG ;;
	r) R=$OPTARG ;;
	p) P=$OPTARG ;;
	*) echo "usage: $0 [-n DELTAS] [-r ROUNDS] [-p THREADS]" >&2; exit 2 ;;
	esac
done
T=$(mktemp -d /var/tmp/vp-bench-stamp-XXXXXX)
LOOP=
cleanup() {
	mountpoint -q "$T/xfs" 2>/dev/null && umount "$T/xfs"
	[[ -n $LOOP ]] && losetup -d "$LOOP"
	rm -rf "$T"
}
trap cleanup EXIT
min() { awk 'NR == 1 || $1 < m { m = $1 } END { print m }'; }

# An XFS with reflink=1 on a loop device, large enough for N unshared deltas.
truncate -s $(((N * 3 + 1024) / 1024 + 2))G "$T/xfs.img"
mkfs.xfs -q -m reflink=1 "$T/xfs.img"
LOOP=$(losetup -f --show "$T/xfs.img")
mkdir "$T/xfs"
mount "$LOOP" "$T/xfs"

for fs in ext4 xfs; do
	dir=$T/$fs-tier
	[[ $fs == xfs ]] && dir=$T/xfs/tier
	mkdir -p "$dir"
	qemu-img create -q -f qcow2 "$dir/base.qcow2" 20G
	: >"$T/$fs.write"
	: >"$T/$fs.stamp"
	: >"$T/$fs.dd"
	for r in $(seq 1 "$R"); do
		for m in write stamp; do
			read -r secs bytes < <("$B" -d "$dir" -b "$dir/base.qcow2" -m $m -n "$N" -p "$P")
			echo "$secs" >>"$T/$fs.$m"
		done
		if [[ $fs == ext4 ]]; then
			t0=$(date +%s.%N)
			dd if=/dev/zero of="$dir/dd.out" bs=1M count=$((bytes / 1048576)) conv=fdatasync status=none
			t1=$(date +%s.%N)
			rm -f "$dir/dd.out"
			echo "$t1 - $t0" | bc -l >>"$T/$fs.dd"
		fi
	done
	w=$(min <"$T/$fs.write")
	s=$(min <"$T/$fs.stamp")
	printf '%-5s %d deltas, one vp_qcow2_create each (before)   %8.3f s   (runs: %s)\n' "$fs" "$N" "$w" "$(tr '\n' ' ' <"$T/$fs.write")"
	printf '%-5s %d deltas, stamped (now)                       %8.3f s   (runs: %s)\n' "$fs" "$N" "$s" "$(tr '\n' ' ' <"$T/$fs.stamp")"
	printf '%-5s ratio before/now = %.1f\n' "$fs" "$(echo "$w / $s" | bc -l)"
	if [[ $fs == ext4 ]]; then
		d=$(min <"$T/$fs.dd")
		printf '%-5s dd of the same %d MiB, conv=fdatasync            %8.3f s   (runs: %s)\n' "$fs" \
			$((bytes / 1048576)) "$d" "$(tr '\n' ' ' <"$T/$fs.dd" | xargs printf '%.3f ')"
		printf '%-5s ratio stamped/dd = %.2f (at most 1.10: within 10%% of the disk'"'"'s sequential write)\n' \
			"$fs" "$(echo "$s / $d" | bc -l)"
	fi
done
