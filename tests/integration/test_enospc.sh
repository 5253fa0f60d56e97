#!/usr/bin/env bash
# test_enospc.sh: a full disk mid-apply and mid-import (small tmpfs tiers) leaves nothing half-made
# and says why: every delta that exists is complete and belongs to a defined clone, no temporary
# is left, and once there is room the next apply finishes the pool. An import that runs out of
# space leaves no version and no staging directory behind.
set -uo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

POOL=nospc$$
T=$(mktemp -d /var/tmp/vp-enospc-XXXXXX)
chmod 755 "$T"
SPEC=$T/pool.yaml
SMALL=$T/small
mkdir -p "$SMALL" "$T/bases"

cleanup() {
	"$CLI" destroy -q --yes --purge-data "$SPEC" >/dev/null 2>&1
	mountpoint -q "$SMALL" && umount "$SMALL"
	rm -rf "$T"
}
trap cleanup EXIT

if ! mount -t tmpfs -o size=4M,mode=0755 vp-enospc "$SMALL" 2>/dev/null; then
	skip "cannot mount a tmpfs here (not root, or no mount permission): ENOSPC is not tested"
	finish
fi

# A 4 GiB (sparse) base: a preallocated extended-L2 delta of it is about 0.6 MiB of metadata, so
# 4 MiB holds a few deltas and not the 12 wanted.
qemu-img create -q -f qcow2 "$T/base.qcow2" 4G
"$CLI" --root "$T/bases" base import nospc "$T/base.qcow2" --version 1 >/dev/null || { bad "import"; finish; }
cat >"$SPEC" <<EOF
pool: { name: $POOL }
base: { name: nospc }
storage:
  tiers:
    - { name: fast, path: $T/bases }
    - { name: small, path: $SMALL }
  bases: fast
  deltas: small
clones: { count: 12, name: "$POOL-{index}" }
domain: { template: server, memory: 64M, network: none, start: false, accel: tcg }
EOF

expect "apply on a full tier fails and says why" 1 "No space left on device" -- "$CLI" apply "$SPEC"
ndeltas=$(find "$SMALL/deltas/$POOL" -name "$POOL-*.qcow2" 2>/dev/null | wc -l)
ndoms=$(virsh -c qemu:///system list --all --name | grep -c "^$POOL-")
echo "   $ndeltas deltas and $ndoms domains made before the disk was full"
check "some clones were made, not all" test "$ndeltas" -gt 0 -a "$ndeltas" -lt 12
half=0
for d in "$SMALL/deltas/$POOL/$POOL"-*.qcow2; do
	[[ -e $d ]] || continue
	qemu-img check -q "$d" >/dev/null 2>&1 || { half=$((half + 1)); echo "    not whole: $d"; }
done
check "every delta on the tier is whole (qemu-img check)" test "$half" -eq 0
check "no temporary left on the full tier" test -z "$(find "$SMALL" -name '.*tmp*' | head -1)"
check "every defined clone points at a delta that exists" bash -c '
	for c in $(virsh -c qemu:///system list --all --name | grep "^$1-"); do
		f=$(virsh -c qemu:///system domblklist "$c" | awk "\$1 == \"vda\" { print \$2 }")
		[[ -f $f ]] || { echo "    $c -> $f"; exit 1; }
	done' _ "$POOL"

mount -o remount,size=64M "$SMALL"
check "with room again, apply finishes the pool" "$CLI" apply -q "$SPEC"
check "12 clones" test "$(virsh -c qemu:///system list --all --name | grep -c "^$POOL-")" -eq 12
check "destroy" "$CLI" destroy -q --yes "$SPEC"

echo "== import onto a full tier"
mount -o remount,size=2M "$SMALL"
qemu-img create -q -f raw "$T/big.raw" 16M
qemu-io -f raw -c "write -P 0x61 0 12M" "$T/big.raw" >/dev/null
expect "import onto a full tier fails and says why" 1 "No space left on device" -- \
	"$CLI" --root "$SMALL" base import big "$T/big.raw" --version 1
check "no version was published" test ! -e "$SMALL/bases/big/1"
check "no staging directory is left" test -z "$(find "$SMALL/bases" -maxdepth 1 -name '.import-*' | head -1)"
finish
