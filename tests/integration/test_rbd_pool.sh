#!/usr/bin/env bash
# test_rbd_pool.sh: a pool of real guests on Ceph RBD, end to end through the CLI, against the
# throw-away cluster of scripts/ceph-up.sh: base import/list/verify on an rbd tier (a raw image,
# snapshot 'vdipool'); apply makes two RBD clones (data disks as plain images) that boot under
# TCG from libvirt network disks whose cephx key sits in a libvirt secret; each guest reads the
# base and its own writes; a rollout to v2 and a rollback to v1 keep identity and data; rm is
# refused while clones exist; gc removes only an unused version; destroy and gc leave no image,
# snapshot or trash entry behind.
set -uo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

rbd_setup pool rp # lib.sh: CEPH, R, RBD_TIER, GUEST, POOL, T, SPEC and the EXIT trap
QOPT=":id=vdipool:conf=$CEPH/ceph.conf:keyring=$CEPH/client.vdipool.keyring"

spec() { # spec START
	cat >"$SPEC" <<EOF
pool: { name: $POOL }
base: { name: tiny }
storage:
  tiers:
    - name: ceph
      driver: rbd
      pool: rbd
      conf: $CEPH/ceph.conf
      id: vdipool
      keyring: $CEPH/client.vdipool.keyring
  state_dir: $T/state
clones: { count: 2, name: "$POOL-{index}" }
data_disk: { size: 16M }
domain: { template: server, memory: 256M, network: none, start: $1 }
rollout: { shutdown_timeout: 60s }
EOF
}

snaps() { "${R[@]}" snap ls "$1" 2>/dev/null | awk 'NR > 1 { print $2 }' | tr '\n' ' '; }
no_temporaries() { ! "${R[@]}" ls | grep -q '^\.'; }

bash "$ROOT/scripts/libvirt-up.sh" >/dev/null 2>&1 || { bad "libvirt is up"; finish; }
bash "$ROOT/scripts/build-guest-image.sh" "$GUEST" >/dev/null 2>&1 || { bad "the guest image builds"; finish; }
bash "$ROOT/scripts/build-guest-image.sh" --marker "VDIPOOL-BASE v2 rbd" "$GUEST-rbd-v2" >/dev/null 2>&1 ||
	{ bad "the v2 guest image builds"; finish; }
ceph_up || finish
marker=$(grep -a -o -m1 'VDIPOOL-BASE v[0-9]* [A-Za-z0-9._-]*' "$GUEST/tiny.raw" | head -1)
spec true

echo "== bases on rbd: import, list, verify"
expect "base import --spec writes the base into the Ceph pool" 0 "tiny@1" -- \
	"$CLI" base import tiny "$GUEST/tiny.raw" --version 1 --spec "$SPEC"
check "the base is the image base.tiny.1" grep -q "base.tiny.1 " <<<"$(images)"
check "with its snapshot 'vdipool'" test "$(snaps base.tiny.1)" == "vdipool "
check "no staging image is left" bash -c "! grep -q '\\.import' <<<'$(images)'"
check "the stored bytes are the source's (raw, sparse regions read as zeros)" \
	cmp <("${R[@]}" export base.tiny.1@vdipool - 2>/dev/null | head -c "$(stat -c %s "$GUEST/tiny.raw")") "$GUEST/tiny.raw"
expect "importing it again is a no-op" 0 "tiny@1" -- \
	"$CLI" base import tiny "$GUEST/tiny.raw" --version 1 --spec "$SPEC"
expect "base list --spec shows it" 0 "tiny" -- "$CLI" base list --spec "$SPEC"
json=$("$CLI" -o json base list --spec "$SPEC")
check "its manifest is raw and names the image's sha256" \
	bash -c "grep -q '\"format\":\"raw\"' <<<'$json' && grep -q \"\$(sha256sum '$GUEST/tiny.raw' | cut -c1-16)\" <<<'$json'"
expect "base verify --spec hashes the RBD image" 0 "tiny@1: ok" -- "$CLI" base verify tiny@1 --spec "$SPEC"

echo "== apply: RBD clones boot as libvirt network disks"
rm -f "$LOGDIR/$POOL"-*-serial.log
check "vdipool apply provisions and starts two clones" "$CLI" apply -q "$SPEC"
for c in "$POOL-1" "$POOL-2"; do
	check "$c's disk is an RBD clone of base.tiny.1@vdipool" test "$(parent "delta.$POOL.$c")" == "rbd/base.tiny.1@vdipool"
	check "$c's data disk is a plain image" bash -c "grep -q 'data.$POOL.$c ' <<<'$(images)' && test -z '$(parent "data.$POOL.$c")'"
	xml=$(virsh dumpxml "$c")
	check "$c's vda is a network disk with protocol rbd" grep -q "protocol=.rbd. name=.rbd/delta.$POOL.$c." <<<"$xml"
	check "$c's definition carries no key" bash -c "! grep -q \"\$(awk '/key/ { print \$3 }' '$CEPH/client.vdipool.keyring')\" <<<\"\$1\"" _ "$xml"
	check "$c boots to READY" wait_ready "$c" 1
	first=$(boot_lines "$c" 1)
	check "$c read the base's marker" grep -q -x "VDIPOOL-BASE-MARKER: $marker" <<<"$first"
	check "$c wrote its own marker" grep -q -x "VDIPOOL-WROTE: VDIPOOL-CLONE $c" <<<"$first"
done
uuid=$(virsh secret-list | awk '/vdipool/ { print $1 }' | head -1)
check "vdipool defined a libvirt secret for client.vdipool" test -n "$uuid"
check "the secret is private (its value cannot be read back)" bash -c "! virsh secret-get-value '$uuid' >/dev/null 2>&1"
check "the key is on no command line" bash -c "! grep -qa \"\$(awk '/key/ { print \$3 }' '$CEPH/client.vdipool.keyring')\" /proc/[0-9]*/cmdline"
expect "base rm is refused while clones use the version" 1 "tiny@1" -- "$CLI" base rm tiny@1 --spec "$SPEC"
check "the base is still there" grep -q "base.tiny.1 " <<<"$(images)"

echo "== restart: own writes and the data disk persist"
spec false
check "apply with start: false shuts them down" "$CLI" apply -q "$SPEC"
for c in "$POOL-1" "$POOL-2"; do
	qemu-io -f raw -c "write -P 0x33 0 64k" "rbd:rbd/data.$POOL.$c$QOPT" >/dev/null
done
spec true
check "apply starts them again" "$CLI" apply -q "$SPEC"
for c in "$POOL-1" "$POOL-2"; do
	check "$c boots again" wait_ready "$c" 2
	second=$(boot_lines "$c" 2)
	check "$c sees its own marker" grep -q -x "VDIPOOL-CLONE-MARKER: VDIPOOL-CLONE $c" <<<"$second"
done

echo "== rollout to v2 by rebasing, then rollback"
expect "import v2" 0 "tiny@2" -- "$CLI" base import tiny "$GUEST-rbd-v2/tiny.raw" --version 2 --spec "$SPEC"
uuid1=$(virsh domuuid "$POOL-1")
check "apply rolls both clones to v2" "$CLI" apply -q "$SPEC"
for c in "$POOL-1" "$POOL-2"; do
	check "$c is now a clone of v2" test "$(parent "delta.$POOL.$c")" == "rbd/base.tiny.2@vdipool"
	check "$c boots on v2" wait_ready "$c" 3
	check "$c reads v2's marker" grep -q -x "VDIPOOL-BASE-MARKER: VDIPOOL-BASE v2 rbd" <<<"$(boot_lines "$c" 3)"
done
check "$POOL-1 kept its UUID" test "$(virsh domuuid "$POOL-1")" == "$uuid1"
check "rollback returns both to v1" "$CLI" rollback "$SPEC"
for c in "$POOL-1" "$POOL-2"; do
	check "$c is a clone of v1 again" test "$(parent "delta.$POOL.$c")" == "rbd/base.tiny.1@vdipool"
	check "$c boots on v1" wait_ready "$c" 4
	check "$c reads v1's marker" grep -q -x "VDIPOOL-BASE-MARKER: $marker" <<<"$(boot_lines "$c" 4)"
done
spec false
"$CLI" apply -q "$SPEC" >/dev/null 2>&1
for c in "$POOL-1" "$POOL-2"; do
	check "$c's data disk still holds its data" \
		bash -c "qemu-io -f raw -r -c 'read -P 0x33 0 64k' 'rbd:rbd/data.$POOL.$c$QOPT' | grep -q 'read 65536'"
done
check "no temporary image is left by the rebases" no_temporaries

echo "== gc and destroy leave nothing behind"
qemu-img convert -O qcow2 "$GUEST/tiny.raw" "$T/tiny.qcow2"
expect "a qcow2 source is imported too (stored raw)" 0 "tiny@3: raw" -- \
	"$CLI" base import tiny "$T/tiny.qcow2" --version 3 --spec "$SPEC"
check "its bytes are the guest's" \
	cmp <("${R[@]}" export base.tiny.3@vdipool - 2>/dev/null) "$GUEST/tiny.raw"
check "its unallocated regions were not written (rbd du: used < provisioned)" \
	bash -c "\"\${@}\" du --format json base.tiny.3@vdipool 2>/dev/null |
		python3 -c 'import json,sys; i=json.load(sys.stdin)[\"images\"][0]; sys.exit(not i[\"used_size\"] < i[\"provisioned_size\"])'" _ "${R[@]}"
expect "gc --keep 0 removes the unused v3 only" 0 "removed 1" -- "$CLI" gc "$SPEC" --keep 0 --yes
check "v3 is gone with its snapshot" bash -c "! grep -q base.tiny.3 <<<'$(images)'"
expect "gc keeps v1 (in use) and v2 (what a rollback returns to)" 0 "no base version to remove" -- \
	"$CLI" gc "$SPEC" --keep 0 --yes
check "both versions are still there" bash -c "l='$(images)'; [[ \$l == *base.tiny.2* && \$l == *base.tiny.1* ]]"
check "destroy" "$CLI" destroy -q --yes "$SPEC"
check "no clone is left" bash -c "! grep -q 'delta.$POOL' <<<'$(images)'"
check "the data disks are kept (user data)" test "$(images | grep -o "data.$POOL" | wc -l)" -eq 2
expect "gc --purge-orphaned-data then removes them and both versions" 0 "removed 4" -- \
	"$CLI" gc "$SPEC" --keep 0 --purge-orphaned-data --yes
check "the Ceph pool is empty" test -z "$(images)"
check "nothing went to the RBD trash" test -z "$("${R[@]}" trash ls 2>/dev/null)"
finish
