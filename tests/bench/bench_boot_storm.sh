#!/usr/bin/env bash
# bench_boot_storm.sh: N clones from a cold page cache to ready (`vdipool up`, each booting and
# getting its DHCP lease), three ways in the same run: cold (nothing warmed), the user's own warm-up
# (`cat BASE > /dev/null` before up) and clones.warm_base: true. Before each run the caches are
# dropped (sync; echo 3 > /proc/sys/vm/drop_caches). Prints each time, the median of R rounds, and
# the ratios against cold. Run it inside `flock /tmp/vp-itest.lock` (shared daemons).
# Usage: tests/bench/bench_boot_storm.sh [-n CLONES] [-r ROUNDS] [-s MAX_PARALLEL_STARTS] [-b BASE_IMAGE]
#   (defaults 4, 2, 4 and the tiny guest image; -b: another bootable image, e.g. a real distribution's)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${VP_BUILD_DIR:-$ROOT/build}
CLI=$BUILD/bin/vdipool
N=4 R=2 S=4 IMG=
while getopts "n:r:s:b:" o; do
	case $o in
	n) N=$OPTARG ;;
	r) R=$OPTARG ;;
	s) S=$OPTARG ;;
	b) IMG=$OPTARG ;;
	*) echo "usage: $0 [-n CLONES] [-r ROUNDS] [-s MAX_PARALLEL_STARTS] [-b BASE_IMAGE]" >&2; exit 2 ;;
	esac
done
export VDIPOOL_PLUGIN_PATH=$BUILD/plugins VDIPOOL_TEMPLATE_PATH=$ROOT/templates CI=1
POOL=storm$$
T=$(mktemp -d /var/tmp/vp-storm-XXXXXX)
chmod 755 "$T"
cleanup() {
	"$CLI" down -q "$T/pool.yaml" >/dev/null 2>&1 || "$CLI" destroy -q --yes "$T/pool.yaml" >/dev/null 2>&1 || true
	rm -f /var/log/libvirt/qemu/"$POOL"-*-serial.log
	rm -rf "$T"
}
trap cleanup EXIT

bash "$ROOT/scripts/libvirt-up.sh" >/dev/null 2>&1
if [[ -z $IMG ]]; then
	bash "$ROOT/scripts/build-guest-image.sh" "$BUILD/guest" >/dev/null
	IMG=$BUILD/guest/tiny.raw
fi
"$CLI" --root "$T/store" base import storm "$IMG" --version 1 >/dev/null
BASE=$(find "$T/store/bases/storm/1" -name 'disk.*' | head -n 1)

spec() { # spec WARM
	cat >"$T/pool.yaml" <<EOF
pool: { name: $POOL }
base: { name: storm }
storage:
  tiers: [ { name: local, driver: dir, path: $T/store } ]
clones: { count: $N, name: "$POOL-{index}", warm_base: $1 }
domain: { template: server, memory: 128M, network: default, max_parallel_starts: $S }
EOF
}

# one WAY: seconds from a cold cache to every clone ready
one() {
	local t0 t1
	spec "$([[ $1 == warm_base ]] && echo true || echo false)"
	sync
	echo 3 >/proc/sys/vm/drop_caches
	t0=$(date +%s.%N)
	[[ $1 == cat ]] && cat "$BASE" >/dev/null
	"$CLI" -v up --ttl 30m --timeout 10m -o json "$T/pool.yaml" >"$T/up.json" 2>"$T/up.err"
	t1=$(date +%s.%N)
	sed -n 's/^warmed the base on [^:]*: /    warm_base read /p' "$T/up.err" >&2
	[[ $(jq .ready "$T/up.json") == "$N" ]] || { echo "not all ready: $(cat "$T/up.json")" >&2; exit 1; }
	"$CLI" -q down "$T/pool.yaml"
	echo "$t1 - $t0" | bc -l
}

median() { sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

echo "boot storm: $N clones of $(basename "$IMG") ($(du -h --apparent-size "$BASE" | cut -f1) image, $(du -h "$BASE" | cut -f1) allocated), max_parallel_starts $S, $R rounds, caches dropped before each"
# A first pool, not counted: it pays the KVM probe (once per base version) and the first boot.
one cold >/dev/null
declare -A times
for r in $(seq "$R"); do
	# the order turns each round, so no way always runs first after a base import or a boot
	ways=(cold cat warm_base)
	for k in 0 1 2; do
		w=${ways[$(((k + r) % 3))]}
		s=$(one "$w")
		times[$w]+="$s "
		printf '  round %d %-9s %6.2f s\n' "$r" "$w" "$s"
	done
done
for w in cold cat warm_base; do
	m=$(tr ' ' '\n' <<<"${times[$w]}" | grep . | median)
	eval "med_$w=$m"
	printf '%-9s median %6.2f s to %d ready\n' "$w" "$m" "$N"
done
# shellcheck disable=SC2154
printf 'ratio cold / warm_base: %.2f   cold / cat: %.2f   cat / warm_base: %.2f\n' \
	"$(echo "$med_cold / $med_warm_base" | bc -l)" "$(echo "$med_cold / $med_cat" | bc -l)" \
	"$(echo "$med_cat / $med_warm_base" | bc -l)"
