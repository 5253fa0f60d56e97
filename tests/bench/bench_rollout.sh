#!/usr/bin/env bash
# bench_rollout.sh: rollout of an N-clone pool of defined (not running) clones to a new base
# version: total time and per clone, with the waves the spec's max_unavailable makes.
# Usage: tests/bench/bench_rollout.sh [-n CLONES] [-u MAX_UNAVAILABLE]   (defaults 200 and 25%)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${VP_BUILD_DIR:-$ROOT/build}
CLI=$BUILD/bin/vdipool
N=200
U='"25%"'
while getopts "n:u:" o; do
	case $o in
	n) N=$OPTARG ;;
	u) U=$OPTARG ;;
	*) echo "usage: $0 [-n CLONES] [-u MAX_UNAVAILABLE]" >&2; exit 2 ;;
	esac
done
export VDIPOOL_PLUGIN_PATH=$BUILD/plugins VDIPOOL_TEMPLATE_PATH=$ROOT/templates CI=1
POOL=roll$$
T=$(mktemp -d /var/tmp/vp-bench-rollout-XXXXXX)
trap '"$CLI" destroy -q --yes "$T/pool.yaml" >/dev/null 2>&1 || true; rm -rf "$T"' EXIT
now() { date +%s.%N; }

bash "$ROOT/scripts/libvirt-up.sh" >/dev/null
for v in 1 2; do
	qemu-img create -q -f qcow2 "$T/b$v.qcow2" 20G
	qemu-io -c "write -P $v 0 1M" "$T/b$v.qcow2" >/dev/null
	"$CLI" --root "$T/store" base import bench "$T/b$v.qcow2" --version "$v" >/dev/null
done
spec() {
	cat >"$T/pool.yaml" <<YAML
pool: { name: $POOL }
base: { name: bench, version: "$1" }
storage:
  tiers: [ { name: local, driver: dir, path: $T/store } ]
clones: { count: $N, name: "$POOL-{index:04}" }
domain: { template: server, memory: 256M, network: none, start: false }
rollout: { max_unavailable: $U }
YAML
}
spec 1
"$CLI" apply -q "$T/pool.yaml"
spec 2
waves=$("$CLI" plan -o json "$T/pool.yaml" | sed -n 's/.*"waves":\([0-9]*\).*/\1/p')
t0=$(now)
"$CLI" apply -q "$T/pool.yaml"
t1=$(now)
total=$(echo "$t1 - $t0" | bc -l)
printf 'rollout of %d defined clones to a new base version (%s waves)   %7.2f s  (%.2f ms/clone)\n' \
	"$N" "$waves" "$total" "$(echo "$total * 1000 / $N" | bc -l)"
