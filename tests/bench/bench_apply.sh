#!/usr/bin/env bash
# bench_apply.sh: `vdipool apply` of an N-clone pool (define only, preallocated metadata, 20 GiB
# base) against a Nova-style loop (`qemu-img create` + `virsh define` per clone) in the same run,
# plus `vdipool plan` on the unchanged pool. Prints one line per figure and the ratios.
# Usage: tests/bench/bench_apply.sh [-n CLONES] [-q LOOP_CLONES]   (defaults 1000 and 1000)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${VP_BUILD_DIR:-$ROOT/build}
CLI=$BUILD/bin/vdipool
N=1000
Q=
while getopts "n:q:" o; do
	case $o in
	n) N=$OPTARG ;;
	q) Q=$OPTARG ;;
	*) echo "usage: $0 [-n CLONES] [-q LOOP_CLONES]" >&2; exit 2 ;;
	esac
done
Q=${Q:-$N}
export VDIPOOL_PLUGIN_PATH=$BUILD/plugins VDIPOOL_TEMPLATE_PATH=$ROOT/templates CI=1
POOL=bench$$
T=$(mktemp -d /var/tmp/vp-bench-XXXXXX)
cleanup() {
	"$CLI" destroy -q --yes "$T/pool.yaml" >/dev/null 2>&1 || true
	for d in $(virsh -q list --all --name | grep "^nova$$-"); do virsh -q undefine "$d" >/dev/null; done
	rm -rf "$T"
}
trap cleanup EXIT
now() { date +%s.%N; }
secs() { echo "$2 - $1" | bc -l; }

bash "$ROOT/scripts/libvirt-up.sh" >/dev/null
qemu-img create -q -f qcow2 "$T/base.qcow2" 20G
"$CLI" --root "$T/store" base import bench "$T/base.qcow2" --version 1 >/dev/null
BASE=$T/store/bases/bench/1/disk.qcow2
cat >"$T/pool.yaml" <<EOF
pool: { name: $POOL }
base: { name: bench, version: "1" }
storage:
  tiers: [ { name: local, driver: dir, path: $T/store } ]
clones: { count: $N, name: "$POOL-{index:04}" }
delta: { cluster_size: 128K, extended_l2: true, preallocation: metadata }
domain: { template: server, memory: 256M, network: none, start: false }
EOF

# The KVM probe (domain.accel: auto) runs once per host and base version and is cached; it is
# timed on its own, then the apply is what every later apply of a pool costs.
chmod 755 "$T"
tp=$(now)
"$CLI" plan "$T/pool.yaml" >/dev/null 2>&1
probe=$(secs "$tp" "$(now)")
t0=$(now)
"$CLI" apply -q "$T/pool.yaml"
t1=$(now)
"$CLI" plan --detailed-exitcode "$T/pool.yaml" >/dev/null
t2=$(now)
apply=$(secs "$t0" "$t1")
plan=$(secs "$t1" "$t2")
per_clone=$(du -k -s "$T/store/deltas/$POOL" | cut -f1)
"$CLI" destroy -q --yes "$T/pool.yaml"

# The usual path (OpenStack Nova, terraform-provider-libvirt): one qemu-img and one define each.
mkdir -p "$T/nova"
sed -e "s|<name>template</name>|<name>NAME</name>|" "$ROOT/templates/server.xml" |
	sed -e "s|<devices>|<devices><disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='DISK'/><target dev='vda' bus='virtio'/></disk>|" \
		-e "s|<domain type='kvm'>|<domain type='qemu'>|" -e "/<cpu /d" >"$T/nova.xml.in"
t3=$(now)
for i in $(seq -w 1 "$Q"); do
	qemu-img create -q -f qcow2 -b "$BASE" -F qcow2 -o cluster_size=128k,extended_l2=on,preallocation=metadata \
		"$T/nova/nova$$-$i.qcow2"
	sed -e "s|NAME|nova$$-$i|; s|DISK|$T/nova/nova$$-$i.qcow2|" "$T/nova.xml.in" >"$T/nova.xml"
	virsh -q define "$T/nova.xml" >/dev/null
done
t4=$(now)
loop=$(secs "$t3" "$t4")
loop_n=$(echo "$loop * $N / $Q" | bc -l)

printf 'apply %d clones (define only, 20 GiB base, preallocated)   %8.2f s  (%.2f ms/clone)\n' "$N" "$apply" "$(echo "$apply * 1000 / $N" | bc -l)"
printf 'plan on the unchanged %d-clone pool                        %8.3f s\n' "$N" "$plan"
printf 'first plan on a new base (KVM probe, once per host+version) %8.2f s\n' "$probe"
printf 'qemu-img create + virsh define loop, %d clones             %8.2f s  (%.2f ms/clone)\n' "$Q" "$loop" "$(echo "$loop * 1000 / $Q" | bc -l)"
printf 'disk per delta (vdipool)                                   %8d KiB\n' "$((per_clone / N))"
printf 'ratio loop/vdipool apply = %.1f\n' "$(echo "$loop_n / $apply" | bc -l)"
