#!/usr/bin/env bash
# test_store_gc.sh: what gc and base rm keep, against the real libvirtd: snapshot chains, network
# disks, other tiers, no libvirt, gc and base rm racing apply (store lock), orphaned data disks.
set -uo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

P=vpsg$$
T=$(mktemp -d /var/tmp/vp-store-gc-XXXXXX)
chmod 755 "$T"
R=$T/store
export VDIPOOL_ROOT=$R

cleanup() {
	for d in $(virsh -q list --all --name 2>/dev/null | grep "^$P-"); do
		virsh -q destroy "$d" >/dev/null 2>&1
		virsh -q undefine "$d" --snapshots-metadata >/dev/null 2>&1
	done
	rm -rf "$T"
}
trap cleanup EXIT
[[ -n ${VP_KEEP:-} ]] && trap - EXIT

raw() { truncate -s "$2M" "$1" && printf '%s' "$3" | dd of="$1" conv=notrunc status=none; }

# define NAME DISK-XML: a minimal domain that is never started.
define() {
	cat >"$T/$1.xml" <<EOF
<domain type='qemu'><name>$1</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>
<os><type arch='x86_64'>hvm</type></os><devices>$2</devices></domain>
EOF
	virsh -q define "$T/$1.xml" >/dev/null
}

for v in v1 v2 v3; do raw "$T/$v.raw" 4 "$v"; "$CLI" base import sg "$T/$v.raw" --version "$v" >/dev/null; done
V1=$R/bases/sg/v1/disk.qcow2

# 1. A domain whose disk was snapshotted (--disk-only): its delta is a backing layer now.
mkdir -p "$R/deltas/$P"
qemu-img create -q -f qcow2 -F qcow2 -b "$V1" "$R/deltas/$P/snap.qcow2"
define "$P-snap" "<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='$R/deltas/$P/snap.qcow2'/><target dev='vda' bus='virtio'/></disk>"
check "snapshot --disk-only" virsh -q snapshot-create-as "$P-snap" s1 --disk-only --no-metadata \
	--diskspec "vda,file=$T/overlay.qcow2"
expect "domain now on the overlay" 0 "$T/overlay.qcow2" -- virsh -q domblklist "$P-snap"
expect "rm refused: in the chain" 1 "cannot remove base 'sg@v1': 1 domain records it as base or rollback version: $P-snap (or has it in a disk's backing chain)" -- "$CLI" base rm sg@v1
expect "rm names the domain" 1 "$P-snap" -- "$CLI" base rm sg@v1
expect "gc keeps the backing delta" 0 "" -- bash -c "! '$CLI' gc --keep 0 | grep -q 'snap.qcow2'"
expect "gc --yes" 0 "removed" -- "$CLI" gc --keep 0 --yes
check "delta kept" test -f "$R/deltas/$P/snap.qcow2"
expect "v1 kept" 0 "sg@v1: ok" -- "$CLI" base verify sg@v1
expect "v2 removed (nothing uses it)" 1 "no base 'sg@v2'" -- "$CLI" base verify sg@v2
expect "v3 removed (keep 0: only what is used stays)" 1 "no base 'sg@v3'" -- "$CLI" base verify sg@v3
"$CLI" base import sg "$T/v3.raw" --version v3 >/dev/null

# 2. A disk vdipool cannot read pins everything.
define "$P-nbd" "<disk type='network' device='disk'><driver name='qemu' type='raw'/><source protocol='nbd' name='x'><host name='localhost' port='10809'/></source><target dev='vda' bus='virtio'/></disk>"
expect "gc refuses: network disk" 1 "domain '$P-nbd' has a network disk that vdipool cannot read" -- "$CLI" gc --keep 0 --yes
expect "rm refuses: network disk" 1 "network disk" -- "$CLI" base rm sg@v3
virsh -q undefine "$P-nbd" >/dev/null

# 3. No libvirt: nothing is removed.
NOVIRT="qemu+unix:///system?socket=$T/none.sock"
expect "gc without libvirt" 1 "cannot connect to libvirt" -- "$CLI" gc --keep 0 --yes --connect "$NOVIRT"
expect "rm without libvirt" 1 "cannot connect to libvirt" -- "$CLI" base rm sg@v3 --connect "$NOVIRT"

# 4. A spec with its deltas on another tier: plan records the tier, --root gc sees its deltas.
cat >"$T/two.yaml" <<EOF
pool:
  name: $P-two
base:
  name: sg
  version: v3
storage:
  tiers:
    - name: gold
      driver: dir
      path: $R
    - name: fast
      driver: dir
      path: $T/fast
  bases: gold
  deltas: fast
clones:
  count: 1
domain:
  template: server
  memory: 64M
  network: none
  start: false
gc:
  keep: 5
EOF
mkdir -p "$T/fast"
check "plan with two tiers" "$CLI" plan "$T/two.yaml"
expect "tier recorded" 0 "$T/fast" -- cat "$R/tiers"
mkdir -p "$T/fast/deltas/other"
qemu-img create -q -f qcow2 -F qcow2 -b "$R/bases/sg/v3/disk.qcow2" "$T/fast/deltas/other/c1.qcow2"
expect "rm refused: delta on the other tier" 1 "1 delta backs onto it: $T/fast/deltas/other/c1.qcow2" -- "$CLI" base rm sg@v3
expect "gc with the spec: its gc.keep" 0 "keeping the newest 5" -- "$CLI" gc "$T/two.yaml"

# 5. Orphaned data disks: reported, removed only with --purge-orphaned-data.
mkdir -p "$R/data/$P"
qemu-img create -q -f qcow2 "$R/data/$P/gone.qcow2" 1M
expect "orphaned data reported" 0 "$R/data/$P/gone.qcow2" -- "$CLI" gc --keep 5
expect "gc --yes keeps data" 0 "removed" -- "$CLI" gc --keep 5 --yes
check "data kept" test -f "$R/data/$P/gone.qcow2"
expect "purge" 0 "removed" -- "$CLI" gc --keep 5 --yes --purge-orphaned-data
check "data purged" test ! -e "$R/data/$P/gone.qcow2"

# 6. gc and base rm racing apply: apply holds the store shared until it is done, so gc
#    never takes a delta that apply made before it defined the domain, and rm never the base.
cat >"$T/race.yaml" <<EOF
pool:
  name: $P-r
base:
  name: sg
  version: v3
storage:
  tiers:
    - name: local
      driver: dir
      path: $R
clones:
  count: 150
  name: "$P-r-{index:03}"
domain:
  template: server
  memory: 64M
  network: none
  start: false
EOF
# --wait: a gc that takes the store first makes apply wait for it, not fail.
"$CLI" apply --wait "$T/race.yaml" >"$T/apply.log" 2>&1 &
apply=$!
refused=0 ran=0 rmref=0
while kill -0 "$apply" 2>/dev/null; do
	out=$("$CLI" gc --keep 1 --yes 2>&1) && ran=$((ran + 1))
	[[ $out == *"in use by another vdipool"* ]] && refused=$((refused + 1))
	if [[ -d $R/deltas/$P-r ]]; then
		out=$("$CLI" base rm sg@v3 2>&1) && { echo "    base rm removed v3 during apply"; rmref=-1000; }
		[[ $out == *"in use by another vdipool"* || $out == *"backs onto it"* ]] && rmref=$((rmref + 1))
	fi
done
wait "$apply"
check "apply succeeded" grep -q "150" "$T/apply.log" || tail -5 "$T/apply.log"
echo "    gc refused $refused times, ran $ran times during apply; base rm refused $rmref times"
check "gc refused while apply ran" test "$refused" -gt 0
check "base rm refused during apply" test "$rmref" -gt 0
n=0
for d in $(virsh -q list --all --name | grep "^$P-r-"); do
	[[ -f $R/deltas/$P-r/$d.qcow2 ]] && n=$((n + 1))
done

check "every clone has its delta (150)" test "$n" -eq 150
expect "base v3 kept" 0 "sg@v3: ok" -- "$CLI" base verify sg@v3

# 7. Temporaries named with the pid of a dead vdipool are swept by apply, gc and destroy.
bash -c 'exit 0' & dead=$!
wait "$dead"
temps() {
	mkdir -p "$R/bases/.remove-sg-v0-$dead" "$R/bases/.import-sg-v9-$dead"
	printf x >"$R/deltas/$P-r/.$P-r-001.qcow2.tmp.$dead.0"
	mkdir -p "$R/deltas/$P-r/$P-r-002.qcow2.flatten-$dead.tmp"
}
left() { find "$R" -name "*$dead*" | wc -l; }
temps
check "apply sweeps" "$CLI" apply "$T/race.yaml"
expect "nothing left after apply" 0 "0" -- left
temps
check "gc sweeps" "$CLI" gc --keep 5 --yes
expect "nothing left after gc" 0 "0" -- left
temps
check "destroy" "$CLI" destroy "$T/race.yaml" --yes
expect "nothing left after destroy" 0 "0" -- left
finish
