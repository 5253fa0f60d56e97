#!/usr/bin/env bash
# bench_rbd.sh: N RBD clones of one base three ways in the same run, on a throw-away single-node
# Ceph of its own: the `rbd clone` CLI (one process per clone, as a shell loop does), a bare librbd
# loop (rbd_clone3, the plugin's features, one connection), and vdipool's rbd plugin delta_create
# (the op `vdipool apply` calls per clone; the headline figure). Prints clones/s of each and the
# ratios vdipool/CLI and vdipool/bare; every image it made is gone at the end (checked).
# Usage: tests/bench/bench_rbd.sh [-n CLONES] [-r ROUNDS] [-a SPEC]
#   (env BENCH_N, BENCH_ROUNDS; defaults 100 and 1; Release build in $VP_BUILD_DIR, default build-rel)
#   -a SPEC  also time `vdipool apply` and `destroy` of SPEC against this cluster;
#            tests/bench/bench_rbd_apply.yaml is the 300-clone one
# Shares the machine with the integration tests: run it as
#   flock -o /tmp/vp-itest.lock bash tests/bench/bench_rbd.sh
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${VP_BUILD_DIR:-$ROOT/build-rel}
BENCH=$BUILD/bench/bench_rbd_clone
CLI=${VDIPOOL_CLI:-$BUILD/bin/vdipool}
N=${BENCH_N:-100} R=${BENCH_ROUNDS:-1} SPEC=
while getopts n:r:a: o; do
	case $o in
	n) N=$OPTARG ;;
	r) R=$OPTARG ;;
	a) SPEC=$OPTARG ;;
	*) echo "usage: $0 [-n CLONES] [-r ROUNDS] [-a SPEC]" >&2; exit 2 ;;
	esac
done
[[ -x $BENCH ]] || { echo "bench_rbd: no $BENCH (build with librbd-dev, librados-dev)" >&2; exit 2; }
export VP_CEPH_DIR=/tmp/vp-ceph-bench VP_CEPH_PORT=3360
export VDIPOOL_PLUGIN_PATH=$BUILD/plugins VDIPOOL_TEMPLATE_PATH=$ROOT/templates CI=1
RUN=$VP_CEPH_DIR
FEATURES=layering,exclusive-lock,object-map,fast-diff,deep-flatten
T=$(mktemp -d /var/tmp/vp-bench-rbd-XXXXXX)
cleanup() {
	# The cephx secret apply defined for this throw-away cluster (its usage names the fsid).
	fsid=$(awk '/^fsid/ { print $3 }' "$VP_CEPH_DIR/ceph.conf" 2>/dev/null || true)
	if [[ -n $fsid ]]; then
		virsh secret-list 2>/dev/null | awk -v f="$fsid" '$0 ~ f { print $1 }' |
			while read -r u; do virsh secret-undefine "$u" >/dev/null 2>&1; done
	fi
	bash "$ROOT/scripts/ceph-down.sh" >/dev/null 2>&1 || true
	rm -rf "$T"
}
trap cleanup EXIT
now() { date +%s.%N; }
secs() { echo "$2 - $1" | bc -l; }

bash "$ROOT/scripts/ceph-up.sh" >"$T/ceph-up.log" 2>&1 || { cat "$T/ceph-up.log" >&2; exit 1; }
CONF=$RUN/ceph.conf KEY=$RUN/client.vdipool.keyring
rbd=(rbd -c "$CONF" --id vdipool --keyring "$KEY" -p rbd)
bench() { "$BENCH" -c "$CONF" -k "$KEY" "$@"; }

# 64 MiB raw, 12 MiB of it written, imported the product's way (vp_store_import: stage,
# qemu-img convert to rbd:, hash, commit): base.bench.1@vdipool.
qemu-img create -q -f raw "$T/base.raw" 64M
for i in 0 1 2; do qemu-io -f raw -c "write -P $((i + 7)) $((i * 20))M 4M" "$T/base.raw" >/dev/null; done
bench import "$T/base.raw" >"$T/import.log"
bench -n 10 bare >/dev/null  # warm-up: the first requests of a fresh OSD are slower

tcli=0 tbare=0 tvp=0
for ((round = 1; round <= R; round++)); do
	t0=$(now)
	for ((i = 0; i < N; i++)); do
		"${rbd[@]}" clone --image-feature "$FEATURES" base.bench.1@vdipool "cli.$(printf %04d "$i")"
	done
	cli=$(secs "$t0" "$(now)")
	bench rm cli.
	bare=$(bench -n "$N" bare | awk '$1 == "bare" {print $3}')
	vp=$(bench -n "$N" vdipool | awk '$1 == "vdipool" {print $3}')
	[[ -n $bare && -n $vp ]] || { echo "bench_rbd: a loop failed" >&2; exit 1; }
	((R == 1)) || printf 'round %d: cli %.2f s, bare %.2f s, vdipool %.2f s\n' "$round" "$cli" "$bare" "$vp"
	tcli=$(echo "$tcli + $cli" | bc -l) tbare=$(echo "$tbare + $bare" | bc -l) tvp=$(echo "$tvp + $vp" | bc -l)
done

rate() { echo "$N * $R / $1" | bc -l; }
printf 'rbd clone CLI loop (one process per clone)  %6d clones %8.2f s  %8.1f clones/s\n' "$((N * R))" "$tcli" "$(rate "$tcli")"
printf 'bare librbd rbd_clone3 loop                 %6d clones %8.2f s  %8.1f clones/s\n' "$((N * R))" "$tbare" "$(rate "$tbare")"
printf 'vdipool rbd plugin delta_create             %6d clones %8.2f s  %8.1f clones/s\n' "$((N * R))" "$tvp" "$(rate "$tvp")"
printf 'ratio vdipool/CLI %.2f, vdipool/bare %.2f (clones/s)\n' "$(echo "$tcli / $tvp" | bc -l)" \
	"$(echo "$tbare / $tvp" | bc -l)"

# -a SPEC: `vdipool apply` of SPEC's clones on this cluster (define only), then `destroy`: the
# whole product path per clone (plan, rbd_clone3, stat, domain rendered with the cephx secret,
# defined). SPEC's @CEPH_CONF@, @CEPH_KEYRING@ and @BASE@ (bench@1) are filled in.
if [[ -n $SPEC ]]; then
	sed -e "s|@CEPH_CONF@|$CONF|g; s|@CEPH_KEYRING@|$KEY|g; s|@BASE@|bench@1|g; s|@STATE@|$T/state|g" \
		"$SPEC" >"$T/pool.yaml"
	"$CLI" validate "$T/pool.yaml" >"$T/validate.log" 2>&1 ||
		{ echo "bench_rbd: vdipool validate refuses $SPEC:" >&2; sed 's/^/  /' "$T/validate.log" >&2; exit 1; }
	n=$(awk '/count:/ { for (i = 1; i <= NF; i++) if ($i == "count:") { gsub(/[^0-9]/, "", $(i + 1)); print $(i + 1) } }' "$T/pool.yaml")
	t0=$(now)
	"$CLI" apply -q "$T/pool.yaml" || { echo "bench_rbd: apply failed" >&2; exit 1; }
	t1=$(now)
	"$CLI" destroy -q --yes "$T/pool.yaml" || { echo "bench_rbd: destroy failed" >&2; exit 1; }
	t2=$(now)
	a=$(secs "$t0" "$t1")
	printf 'vdipool apply, %d clones on RBD (define only)  %8.2f s  %8.1f clones/s  %6.1f ms/clone\n' \
		"$n" "$a" "$(echo "$n / $a" | bc -l)" "$(echo "1000 * $a / $n" | bc -l)"
	printf 'vdipool destroy of them                      %8.2f s\n' "$(secs "$t1" "$t2")"
fi

bench unimport
left=$("${rbd[@]}" ls | grep -E '^(cli\.|bare\.|delta\.bench\.|base\.bench\.|\.)' || true)
[[ -z $left ]] || { echo "bench_rbd: images left behind: $left" >&2; exit 1; }
echo "no bench image left ($("${rbd[@]}" ls | wc -l) images in the pool)"
