#!/usr/bin/env bash
# test_full_clones.sh: clones.mode full and delta.size against the real libvirtd, qemu-img and the tiny
# guest: standalone copies (check, compare, no backing file) on ext4, a guest booting from one with its
# base moved away, a rollout to v2 and a rollback, kill -9 in the middle of a copy, disks larger than
# the base (linked and full), a smaller one refused, and reflinked copies on an XFS loop mount.
set -uo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

LOOP=
# POOL, T, tiny@1 in $T/store; on exit $SPEC's pool is destroyed, then cleanup_hook, then the
# pool's serial logs and T go (lib.sh)
guest_setup fc
echo "== setup in $T"
STORE=$T/store
SPEC=$T/full.yaml
DELTAS=$STORE/deltas/$POOL
MNT=$T/xfs

cleanup_hook() {
	local s
	# Every pool first (the XFS one's disks are on the mount), then the mount and the loop device.
	for s in "$T"/*.yaml; do
		[[ -f $s ]] && "$CLI" destroy -q --yes "$s" >/dev/null 2>&1
	done
	remove_domains "^$POOL"
	[[ -f $T/away.qcow2 ]] && mv "$T/away.qcow2" "$T/store/bases/tiny/1/disk.qcow2"
	[[ -n ${MNT:-} ]] && mountpoint -q "$MNT" 2>/dev/null && umount "$MNT"
	[[ -n $LOOP ]] && losetup -d "$LOOP" 2>/dev/null
	rm -f "$LOGDIR/$POOL"*-serial.log # the other pools' too: ${POOL}w, ${POOL}x, ...
}

# spec FILE POOL COUNT VERSION STORE [DELTA-SIZE] [MODE]
spec() {
	cat >"$1" <<EOF
pool: { name: $2 }
base: { name: tiny, version: "$4" }
storage:
  tiers: [ { name: local, driver: dir, path: $5 } ]
clones: { count: $3, name: "$2-{index}", mode: ${7:-full} }
domain: { template: server, memory: 256M, network: none, start: false }
rollout: { shutdown_timeout: 5s }
EOF
	[[ -n ${6:-} ]] && printf 'delta:\n  size: %s\n' "$6" >>"$1"
	return 0
}

# domains, no_backing and boot_lines are lib.sh's.
same_as() { qemu-img compare -q -f qcow2 -F qcow2 "$1" "$2"; }

# full_ok NAME BASE-IMAGE COUNT: every clone's disk is a clean standalone copy of the base, every
# domain has its disk, no temporary is left, and the plan is empty.
full_ok() {
	local name=$1 base=$2 n=$3 i f bad_one=0
	for i in $(seq 1 "$n"); do
		f=$DELTAS/$POOL-$i.qcow2
		[[ -f $f ]] || { echo "    $f missing"; bad_one=1; continue; }
		no_backing "$f" || { echo "    $f has a backing file"; bad_one=1; }
		qemu-img check -q "$f" || { echo "    $f: qemu-img check failed"; bad_one=1; }
		same_as "$base" "$f" || { echo "    $f differs from $base"; bad_one=1; }
	done
	[[ $(domains) -eq $n ]] || { echo "    $(domains) domains, want $n"; bad_one=1; }
	if compgen -G "$DELTAS/.*tmp*" >/dev/null; then
		echo "    temporaries left: $(ls -a "$DELTAS" | grep tmp)"
		bad_one=1
	fi
	"$CLI" plan --detailed-exitcode "$SPEC" >/dev/null 2>&1 || { echo "    plan is not empty"; bad_one=1; }
	if [[ $bad_one -eq 0 ]]; then ok "$name"; else bad "$name"; fi
}

bash "$ROOT/scripts/build-guest-image.sh" --marker "VDIPOOL-BASE v2 full" "$GUEST-v2" >/dev/null 2>&1 ||
	{ bad "the v2 guest image builds"; finish; }
marker=$(grep -a -o -m1 'VDIPOOL-BASE v[0-9]* [A-Za-z0-9._-]*' "$GUEST/tiny.raw" | head -1)
BASE1=$STORE/bases/tiny/1/disk.qcow2
base_alloc=$(($(stat -c %b "$BASE1") * 512))
rm -f "$LOGDIR/$POOL"*-serial.log

echo "== three full clones on ext4 (a sparse copy)"
spec "$SPEC" "$POOL" 3 1 "$STORE"
expect "plan prices full clones at the base's allocated bytes" 4 "to write (full clones" -- \
	"$CLI" plan --detailed-exitcode "$SPEC"
expect "apply makes 3 full clones" 0 "Applied 3 clones" -- "$CLI" apply "$SPEC"
full_ok "each is a clean standalone copy of the base (check, compare, no backing), plan empty" "$BASE1" 3
alloc=$(($(stat -c %b "$DELTAS/$POOL-1.qcow2") * 512))
check "the copy skipped the base's holes ($alloc bytes allocated, base $base_alloc)" \
	test "$alloc" -le $((base_alloc + 1048576))
check "the disk is 0600" test "$(stat -c %a "$DELTAS/$POOL-1.qcow2")" == 600
expect "status counts full copies, not a saving" 0 "in full copies +" -- "$CLI" status "$SPEC"
expect "base list counts no delta backing onto the base" 0 "" -- "$CLI" --root "$STORE" base list tiny
expect "base rm is refused: the clones' domains record the base (metadata pin)" 1 "$POOL-" -- \
	"$CLI" --root "$STORE" base rm tiny@1

echo "== a guest boots from a full clone while its base is moved away"
mv "$BASE1" "$T/away.qcow2"
check "virsh start $POOL-1 without the base file" virsh -q start "$POOL-1"
check "$POOL-1 boots to READY" wait_ready "$POOL-1" 1
check "$POOL-1 read the base's marker from its own copy" grep -q -x "VDIPOOL-BASE-MARKER: $marker" \
	<<<"$(boot_lines "$POOL-1" 1)"
virsh -q destroy "$POOL-1" >/dev/null 2>&1
mv "$T/away.qcow2" "$BASE1"
check "the base is unchanged" "$CLI" --root "$STORE" base verify tiny@1

echo "== rollout of full clones to v2, then rollback"
"$CLI" --root "$STORE" base import tiny "$GUEST-v2/tiny.raw" --version 2 >/dev/null
BASE2=$STORE/bases/tiny/2/disk.qcow2
spec "$SPEC" "$POOL" 3 2 "$STORE"
expect "plan: 3 to rebase" 4 "3 to rebase" -- "$CLI" plan --detailed-exitcode "$SPEC"
expect "apply rolls the full clones to v2" 0 "Applied 3 clones" -- "$CLI" apply "$SPEC"
full_ok "each disk is now a fresh standalone copy of v2" "$BASE2" 3
check "the domain records v1 as the version to roll back to" \
	bash -c "virsh metadata $POOL-2 urn:vdipool:1 | grep -q 'previous=\"1\"'"
check "virsh start $POOL-2" virsh -q start "$POOL-2"
check "$POOL-2 boots on v2" wait_ready "$POOL-2" 1
check "$POOL-2 reads v2's marker" grep -q -x "VDIPOOL-BASE-MARKER: VDIPOOL-BASE v2 full" <<<"$(boot_lines "$POOL-2" 1)"
virsh -q destroy "$POOL-2" >/dev/null 2>&1
expect "rollback" 0 "" -- "$CLI" rollback "$SPEC"
for i in 1 2 3; do
	check "$POOL-$i is a standalone copy of v1 again" bash -c "$(declare -f no_backing same_as); no_backing '$DELTAS/$POOL-$i.qcow2' && same_as '$BASE1' '$DELTAS/$POOL-$i.qcow2'"
done
spec "$SPEC" "$POOL" 3 1 "$STORE"
full_ok "pinned back to v1: consistent" "$BASE1" 3

echo "== kill -9 in the middle of a copy, then apply repairs"
spec "$SPEC" "$POOL" 5 1 "$STORE"
VDIPOOL_TEST_CRASH_COPY=1 "$CLI" apply -q --parallel 1 "$SPEC" >/dev/null 2>&1
rc=$?
check "apply was killed mid-copy (exit $rc)" test $rc -eq 137
check "it left a half copy under a temporary name" compgen -G "$DELTAS/.$POOL-*.qcow2.tmp.*"
check "and no disk under the clone's name" test ! -e "$DELTAS/$POOL-4.qcow2"
expect "the next apply converges" 0 "Applied" -- "$CLI" apply "$SPEC"
full_ok "after the kill: every copy complete, no temporary left" "$BASE1" 5
spec "$SPEC" "$POOL" 6 1 "$STORE"
VDIPOOL_TEST_CRASH_AT="after:create delta:1" "$CLI" apply -q --parallel 1 "$SPEC" >/dev/null 2>&1
rc=$?
check "apply killed after a copy, before its domain (exit $rc)" test $rc -eq 137
expect "the next apply makes that copy again and defines it" 0 "Applied" -- "$CLI" apply "$SPEC"
full_ok "after the second kill: consistent" "$BASE1" 6

echo "== kill -9 in the middle of a rollout's copy: the old disk stays whole"
spec "$SPEC" "$POOL" 6 2 "$STORE"
VDIPOOL_TEST_CRASH_COPY=1 "$CLI" apply -q --parallel 1 "$SPEC" >/dev/null 2>&1
rc=$?
check "the rollout was killed mid-copy (exit $rc)" test $rc -eq 137
whole=1
for i in $(seq 1 6); do
	f=$DELTAS/$POOL-$i.qcow2
	{ same_as "$BASE1" "$f" || same_as "$BASE2" "$f"; } && no_backing "$f" || { whole=0; echo "    $f is broken"; }
done
check "every clone's disk is still a whole copy of v1 or v2" test $whole -eq 1
expect "the next apply finishes the rollout" 0 "Applied" -- "$CLI" apply "$SPEC"
full_ok "after the rollout's kill: every disk a copy of v2, no temporary" "$BASE2" 6

echo "== linked clones switched to full are made again as copies"
spec "$T/sw.yaml" "${POOL}w" 1 1 "$STORE" "" linked
"$CLI" apply -q "$T/sw.yaml" >/dev/null 2>&1
spec "$T/sw.yaml" "${POOL}w" 1 1 "$STORE" "" full
expect "plan says why" 4 "a linked delta; clones.mode is full" -- "$CLI" plan --detailed-exitcode "$T/sw.yaml"
expect "apply" 0 "Applied 1 clone" -- "$CLI" apply "$T/sw.yaml"
check "the disk is now standalone" no_backing "$STORE/deltas/${POOL}w/${POOL}w-1.qcow2"
check "destroy the switched pool" "$CLI" destroy -q --yes "$T/sw.yaml"

echo "== disks larger than the base: delta.size"
vsize=$(qemu-img info --output=json "$BASE1" | sed -n 's/.*"virtual-size": \([0-9]*\).*/\1/p')
big=$((vsize + 32 * 1048576))
for mode in linked full; do
	p=${POOL}${mode:0:1}
	spec "$T/$mode.yaml" "$p" 1 1 "$STORE" "$big" "$mode"
	expect "$mode: apply with delta.size $big" 0 "Applied 1 clone" -- "$CLI" apply "$T/$mode.yaml"
	f=$STORE/deltas/$p/$p-1.qcow2
	check "$mode: qemu-img check" qemu-img check -q "$f"
	check "$mode: qemu-img info shows the new virtual size" \
		bash -c "qemu-img info --output=json '$f' | grep -q '\"virtual-size\": $big,'"
	check "$mode: past the base's end reads zeros" \
		bash -c "qemu-io -r -f qcow2 -c 'read -P 0 $vsize 32M' '$f' | grep -q 'read 33554432'"
	check "$mode: the base's part is the base" qemu-img compare -q -F qcow2 "$BASE1" "$f"
	if [[ $mode == linked ]]; then
		check "linked: the resized delta backs onto the base" \
			bash -c "qemu-img info --output=json '$f' | grep -q '\"backing-filename\": \"$BASE1\"'"
	else
		check "full: no backing file" no_backing "$f"
	fi
	check "$mode: plan is empty after apply" bash -c "\"$CLI\" plan --detailed-exitcode '$T/$mode.yaml' >/dev/null 2>&1"
	check "$mode: destroy" "$CLI" destroy -q --yes "$T/$mode.yaml"
done
spec "$T/small.yaml" "${POOL}m" 1 1 "$STORE" 32M
expect "a disk smaller than the base is refused at plan with the key's position" 2 \
	"small.yaml:9:9: delta.size: must be at least the base's virtual size" -- "$CLI" plan "$T/small.yaml"
expect "and at apply, before anything is made" 2 "delta.size: must be at least" -- "$CLI" apply "$T/small.yaml"
check "nothing was made" test ! -e "$STORE/deltas/${POOL}m"

echo "== reflinked full clones on XFS (a loop device)"
if xfs_ready "$T/xfs.img" "$MNT"; then
	XSTORE=$MNT/store
	XP=${POOL}x
	"$CLI" --root "$XSTORE" base import tiny "$GUEST/tiny.raw" --version 1 >/dev/null
	XBASE=$XSTORE/bases/tiny/1/disk.qcow2
	xalloc=$(($(stat -c %b "$XBASE") * 512))
	sync
	used0=$(df -B1 --output=used "$MNT" | tail -1)
	spec "$T/xfs.yaml" "$XP" 4 1 "$XSTORE"
	xout=$("$CLI" -vv apply "$T/xfs.yaml" 2>&1)
	check "apply makes 4 full clones on XFS" grep -q "Applied 4 clones" <<<"$xout"
	check "-vv says they were copied by reflink" grep -q "debug: full clone '.*$XP-1.qcow2' of '.*' by reflink" <<<"$xout"
	sync
	used1=$(df -B1 --output=used "$MNT" | tail -1)
	all_same=1
	for i in 1 2 3 4; do
		f=$XSTORE/deltas/$XP/$XP-$i.qcow2
		no_backing "$f" && qemu-img check -q "$f" && same_as "$XBASE" "$f" || all_same=0
	done
	check "each is a clean standalone copy of the base" test $all_same -eq 1
	check "its extents are shared with the base (filefrag: shared)" \
		bash -c "filefrag -v '$XSTORE/deltas/$XP/$XP-1.qcow2' | grep -q shared"
	echo "    df grew by $((used1 - used0)) bytes for 4 copies of a base of $xalloc allocated bytes"
	check "df grew by less than one copy" test $((used1 - used0)) -lt "$xalloc"
	check "destroy the XFS pool" "$CLI" destroy -q --yes "$T/xfs.yaml"
fi

finish
