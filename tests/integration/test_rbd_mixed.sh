#!/usr/bin/env bash
# test_rbd_mixed.sh: bases on a fast dir tier, data disks on RBD, against the throw-away Ceph of
# scripts/ceph-up.sh: apply makes qcow2 deltas on the dir tier and data disks as RBD images, each
# domain gets a file disk and an rbd network disk and boots with both; destroy keeps the data
# disks (user data), and only gc --purge-orphaned-data removes them.
set -uo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

rbd_setup mixed rx # lib.sh: CEPH, R, RBD_TIER, GUEST, POOL, T, SPEC and the EXIT trap

bash "$ROOT/scripts/libvirt-up.sh" >/dev/null 2>&1 || { bad "libvirt is up"; finish; }
bash "$ROOT/scripts/build-guest-image.sh" "$GUEST" >/dev/null 2>&1 || { bad "the guest image builds"; finish; }
ceph_up || finish

echo "== bases on a fast dir tier, data disks on RBD"
cat >"$T/mixed.yaml" <<EOF
pool: { name: ${POOL} }
base: { name: tiny }
storage:
  tiers:
    - { name: fast, driver: dir, path: $T/store }
    - $RBD_TIER
  bases: fast
  deltas: fast
clones: { count: 2, name: "${POOL}-{index}" }
data_disk: { size: 32M, tier: ceph }
domain: { template: server, memory: 128M, network: none, start: true }
EOF
"$CLI" --root "$T/store" base import tiny "$GUEST/tiny.raw" --version 1 >/dev/null
expect "validate accepts it" 0 "" -- "$CLI" validate "$T/mixed.yaml"
rm -f "$LOGDIR/${POOL}"-*-serial.log
expect "apply makes qcow2 deltas on dir and data disks on RBD" 0 "Applied 2 clones" -- "$CLI" apply "$T/mixed.yaml"
for c in "${POOL}-1" "${POOL}-2"; do
	check "$c's delta is a qcow2 file on the dir tier" test -f "$T/store/deltas/${POOL}/$c.qcow2" -o -f "$T/store/${POOL}/$c.qcow2" -o -n "$(find "$T/store" -name "$c.qcow2")"
	check "$c's data disk is an RBD image of 32 MiB" \
		bash -c "\"\${@}\" info 'data.${POOL}.$c' | grep -q 'size 32 MiB'" _ "${R[@]}"
	xml=$(virsh dumpxml "$c")
	check "$c: vda is a file, vdb an rbd network disk" \
		bash -c "grep -q \"<source file=\" <<<\"\$1\" && grep -q \"protocol='rbd' name='rbd/data.${POOL}.$c'\" <<<\"\$1\"" _ "$xml"
	check "$c boots with both disks" wait_ready "$c" 1
done
check "destroy the mixed pool" "$CLI" destroy -q --yes "$T/mixed.yaml"
check "its data disks are kept on RBD (user data)" test "$(images | grep -o "data.${POOL}" | wc -l)" -eq 2
expect "gc --purge-orphaned-data removes them" 0 "removed" -- \
	"$CLI" gc "$T/mixed.yaml" --purge-orphaned-data --yes
check "then no data disk is left" bash -c "! grep -q 'data.${POOL}' <<<'$(images)'"

finish
