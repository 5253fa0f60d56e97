#!/usr/bin/env bash
# test_detach.sh: `vdipool detach` against the real libvirtd and qemu-img with the tiny guest's image:
# linked clones become standalone with their content kept (check, compare with the content before),
# the base can be removed once every user is detached, apply and a rollout leave detached clones
# alone, reset links one again, a running clone is stopped and started again, and kill -9 after the
# mark and after the flatten (before its rename) leave a usable clone that the next detach finishes.
set -uo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# POOL, T, SPEC, tiny@1 in $T/store; on exit the pool is destroyed, then cleanup_hook removes the
# domains a killed detach left behind (lib.sh)
guest_setup dt
echo "== setup in $T (${SECONDS}s)"
STORE=$T/store
DELTAS=$STORE/deltas/$POOL

cleanup_hook() { remove_domains "^$POOL-"; }

spec() { # COUNT VERSION
	cat >"$SPEC" <<EOF
pool: { name: $POOL }
base: { name: tiny, version: "$2" }
storage:
  tiers: [ { name: local, driver: dir, path: $STORE } ]
clones: { count: $1, name: "$POOL-{index}" }
domain: { template: server, memory: 128M, network: none, start: false }
rollout: { shutdown_timeout: 3s }
EOF
}

# no_backing is lib.sh's.
disk() { echo "$DELTAS/$POOL-$1.qcow2"; }
linked() { qemu-img info --output=json "$1" | grep -q '"backing-filename"'; }
marked() { [[ $(virsh metadata "$POOL-$1" urn:vdipool:1 2>/dev/null) == *'detached="yes"'* ]]; }
# The clone's content as it was before the detach (a standalone copy taken then).
same_content() { qemu-img compare -q -f qcow2 -F qcow2 "$T/pre-$1.qcow2" "$(disk "$1")"; }
whole() { # N: usable: a clean image with the content it had before
	qemu-img check -q "$(disk "$1")" && same_content "$1"
}

BASE1=$STORE/bases/tiny/1/disk.qcow2
spec 4 1
expect "apply makes 4 linked clones" 0 "Applied 4 clones" -- "$CLI" apply "$SPEC"
# Each clone writes something of its own into its delta (as a guest would), then its content is kept.
for i in 1 2 3 4; do
	qemu-io -f qcow2 -c "write -P $((0x10 + i)) $((i * 1048576)) 64k" "$(disk "$i")" >/dev/null
	qemu-img convert -f qcow2 -O qcow2 "$(disk "$i")" "$T/pre-$i.qcow2"
done
expect "base rm is refused while linked clones use it" 1 "$POOL-" -- "$CLI" --root "$STORE" base rm tiny@1

echo "== detach one clone (${SECONDS}s)"
expect "an unknown clone is refused (exit 2), naming it" 2 "'nope' is not a clone of pool" -- \
	"$CLI" detach "$SPEC" nope
expect "detach $POOL-1" 0 "Detached $POOL-1" -- "$CLI" detach "$SPEC" "$POOL-1"
check "its disk has no backing file now" no_backing "$(disk 1)"
check "its disk is whole: qemu-img check, same content as before" whole 1
check "its metadata says detached" marked 1
check "its disk is still 0600" test "$(stat -c %a "$(disk 1)")" == 600
expect "again: detached already" 0 "$POOL-1: detached already" -- "$CLI" detach "$SPEC" "$POOL-1"
expect "apply leaves it alone (plan empty)" 0 "" -- "$CLI" plan --detailed-exitcode "$SPEC"

echo "== kill -9 after the mark, before the flatten (${SECONDS}s)"
VDIPOOL_TEST_CRASH_DETACH=marked "$CLI" detach "$SPEC" "$POOL-2" >/dev/null 2>&1
rc=$?
check "detach was killed (exit $rc)" test $rc -eq 137
check "$POOL-2 is marked, its disk still linked and whole" bash -c \
	"$(declare -f marked linked whole disk same_content); POOL=$POOL DELTAS=$DELTAS T=$T; marked 2 && linked \$(disk 2) && whole 2"
expect "apply leaves the half-detached clone alone" 0 "" -- "$CLI" plan --detailed-exitcode "$SPEC"
expect "its base stays pinned by its disk's chain" 1 "$POOL-2" -- "$CLI" --root "$STORE" base rm tiny@1

echo "== kill -9 after the flatten, before its rename (${SECONDS}s)"
VDIPOOL_TEST_CRASH_FLATTEN=1 "$CLI" detach "$SPEC" "$POOL-2" >/dev/null 2>&1
rc=$?
check "detach was killed (exit $rc)" test $rc -eq 137
check "the flattened copy is left under a temporary name" compgen -G "$DELTAS/$POOL-2.qcow2.flatten-*.tmp"
check "$POOL-2's disk is still the linked one, whole" bash -c \
	"$(declare -f linked whole disk same_content); POOL=$POOL DELTAS=$DELTAS T=$T; linked \$(disk 2) && whole 2"
expect "the next detach finishes it" 0 "Detached $POOL-2" -- "$CLI" detach "$SPEC" "$POOL-2"
check "$POOL-2 is standalone and whole" bash -c \
	"$(declare -f no_backing whole disk same_content); POOL=$POOL DELTAS=$DELTAS T=$T; no_backing \$(disk 2) && whole 2"
check "the dead detach's temporary was swept" bash -c "! compgen -G '$DELTAS/*.tmp*' && ! compgen -G '$DELTAS/.*tmp*'"

echo "== reset links a detached clone again; a running clone is stopped and started (${SECONDS}s)"
expect "detach $POOL-3" 0 "Detached $POOL-3" -- "$CLI" detach "$SPEC" "$POOL-3"
expect "reset $POOL-3" 0 "" -- "$CLI" reset "$SPEC" "$POOL-3"
check "after reset: a linked delta on v1 again, not marked" bash -c \
	"$(declare -f linked marked disk); POOL=$POOL DELTAS=$DELTAS; linked \$(disk 3) && ! marked 3"
qemu-io -f qcow2 -c "write -P 0x33 3M 64k" "$(disk 3)" >/dev/null
qemu-img convert -f qcow2 -O qcow2 "$(disk 3)" "$T/pre-3.qcow2"
check "virsh start $POOL-3" virsh -q start "$POOL-3"
expect "detach the running $POOL-3" 0 "Detached $POOL-3" -- "$CLI" detach "$SPEC" "$POOL-3"
check "$POOL-3 runs again" bash -c "virsh domstate $POOL-3 | grep -q running"
virsh -q destroy "$POOL-3" >/dev/null 2>&1
check "$POOL-3 is standalone, marked" bash -c \
	"$(declare -f no_backing marked disk); POOL=$POOL DELTAS=$DELTAS; no_backing \$(disk 3) && marked 3"
check "$POOL-3 is whole (the guest wrote nothing to its vda)" qemu-img check -q "$(disk 3)"

echo "== every user detached: the base can go (${SECONDS}s)"
expect "detach $POOL-4" 0 "Detached $POOL-4" -- "$CLI" detach "$SPEC" "$POOL-4"
expect "base rm tiny@1 succeeds" 0 "" -- "$CLI" --root "$STORE" base rm tiny@1
check "the base is gone" test ! -e "$BASE1"
for i in 1 2 4; do
	check "$POOL-$i is readable without its base: check, same content as before the detach" whole "$i"
done

echo "== a rollout leaves detached clones alone; new clones use the new version (${SECONDS}s)"
"$CLI" --root "$STORE" base import tiny "$GUEST/tiny.raw" --version 2 >/dev/null
spec 5 2
expect "plan: only the new clone" 4 "1 to create" -- "$CLI" plan --detailed-exitcode "$SPEC"
expect "apply" 0 "Applied 1 clone" -- "$CLI" apply "$SPEC"
check "$POOL-5 is linked to v2" bash -c \
	"qemu-img info --output=json $(disk 5) | grep -q '\"backing-filename\": \"$STORE/bases/tiny/2/disk.qcow2\"'"
for i in 1 2 4; do
	check "$POOL-$i is untouched (standalone, same content)" bash -c \
		"$(declare -f no_backing whole disk same_content); POOL=$POOL DELTAS=$DELTAS T=$T; no_backing \$(disk $i) && whole $i"
done
expect "plan is empty" 0 "" -- "$CLI" plan --detailed-exitcode "$SPEC"
expect "destroy removes detached clones too" 0 "" -- "$CLI" destroy --yes -q "$SPEC"
check "no disk is left" test ! -e "$DELTAS"

echo "== done (${SECONDS}s)"
finish
