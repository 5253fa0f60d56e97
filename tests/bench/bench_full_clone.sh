#!/usr/bin/env bash
# bench_full_clone.sh: what full clones cost: vdipool apply of CLONES full clones (reflink on XFS, data
# extents only on ext4) against linked clones (apply's own cost), coreutils cp (which reflinks or
# skips holes by itself) and dd (byte for byte, holes read and written as zeros), on a base of
# VP_BENCH_GIB GiB virtual with VP_BENCH_DATA_MIB MiB of data.
# Needs root (an XFS loop mount) and libvirtd (apply defines the clones, shut off). Usage:
#   bash tests/bench/bench_full_clone.sh [CLONES]
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${VP_BUILD_DIR:-$ROOT/build}
CLI=${VDIPOOL_CLI:-$BUILD/bin/vdipool}
export VDIPOOL_PLUGIN_PATH=${VDIPOOL_PLUGIN_PATH:-$BUILD/plugins}
export VDIPOOL_TEMPLATE_PATH=${VDIPOOL_TEMPLATE_PATH:-$ROOT/templates}
export CI=1
N=${1:-4}
GIB=${VP_BENCH_GIB:-2}
DATA=${VP_BENCH_DATA_MIB:-256}
POOL=bfc$$
T=$(mktemp -d /var/tmp/vp-bench-full-XXXXXX)
chmod 755 "$T"
LOOP=

cleanup() {
	for s in "$T"/*.yaml; do [[ -f $s ]] && "$CLI" destroy -q --yes "$s" >/dev/null 2>&1; done
	mountpoint -q "$T/xfs" 2>/dev/null && umount "$T/xfs"
	[[ -n $LOOP ]] && losetup -d "$LOOP"
	rm -rf "$T"
}
trap cleanup EXIT

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
used() { sync; df -B1 --output=used "$1" | tail -1; }
mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }

# A base with data in 1 MiB pieces spread over the disk, holes between them.
truncate -s "${GIB}G" "$T/base.raw"
step=$((GIB * 1024 / DATA))
for i in $(seq 0 $((DATA - 1))); do
	dd if=/dev/urandom of="$T/base.raw" bs=1M count=1 seek=$((i * step)) conv=notrunc status=none
done

truncate -s $((GIB * (N + 2) + 1))G "$T/xfs.img"
mkfs.xfs -q -m reflink=1 "$T/xfs.img"
LOOP=$(losetup -f --show "$T/xfs.img")
mkdir "$T/xfs"
mount "$LOOP" "$T/xfs"

spec() { # FILE POOL STORE MODE
	cat >"$1" <<EOF
pool: { name: $2 }
base: { name: bench }
storage: { tiers: [ { name: t, driver: dir, path: $3 } ] }
clones: { count: $N, mode: $4 }
domain: { template: server, memory: 64M, network: none, start: false }
EOF
}

echo "base: ${GIB} GiB virtual, ${DATA} MiB of data; $N clones each"
printf '%-34s %10s %14s\n' "method" "seconds" "MiB used"
for fs in ext4 xfs; do
	dir=$T/$fs-store
	[[ $fs == xfs ]] && dir=$T/xfs/store
	"$CLI" --root "$dir" base import bench "$T/base.raw" --version 1 >/dev/null
	base=$dir/bases/bench/1/disk.qcow2
	cat "$base" >/dev/null # every method starts from a warm page cache
	# linked first: apply's own cost (defines, the accelerator) without copying anything
	for mode in linked full; do
		u0=$(used "$dir")
		spec "$T/$fs-$mode.yaml" "$POOL${fs:0:1}${mode:0:1}" "$dir" "$mode"
		t0=$(now)
		"$CLI" apply -q --parallel 1 "$T/$fs-$mode.yaml" >/dev/null
		sync
		t1=$(now)
		printf '%-34s %10s %14s\n' "vdipool apply, $mode, $fs" "$(secs "$t0" "$t1")" \
			"$(mib $(($(used "$dir") - u0)))"
		"$CLI" destroy -q --yes "$T/$fs-$mode.yaml" >/dev/null
	done
	mkdir -p "$dir/cp"
	for how in "cp" "dd bs=4M"; do
		u0=$(used "$dir")
		t0=$(now)
		for i in $(seq 1 "$N"); do
			if [[ $how == cp ]]; then cp "$base" "$dir/cp/c$i"; else dd if="$base" of="$dir/cp/c$i" bs=4M status=none; fi
		done
		sync
		t1=$(now)
		printf '%-34s %10s %14s\n' "$how, $fs" "$(secs "$t0" "$t1")" "$(mib $(($(used "$dir") - u0)))"
		rm -f "$dir"/cp/c*
	done
done
