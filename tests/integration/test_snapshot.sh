#!/usr/bin/env bash
# test_snapshot.sh: `vdipool snapshot` / `revert` on defined clones with the real libvirtd, qemu-img
# and qemu-io: data written after a snapshot is gone after a revert, rm keeps what the disk reads,
# the depth limit, bad names, a running clone, plan/gc/base rm with a snapshot chain under a
# disk, a rollout refused while a clone has snapshots, the sweep after an interrupted snapshot,
# and destroy removing the snapshot images.
set -uo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

POOL=sn$$
T=$(mktemp -d /var/tmp/vp-snap-XXXXXX)
chmod 755 "$T"
SPEC=$T/pool.yaml
STORE=$T/store
DELTAS=$STORE/deltas/$POOL
C1=$POOL-01
C2=$POOL-02
D1=$DELTAS/$C1.qcow2

# (its own gold base, no guest image: lib.sh's guest_setup does not fit; remove_domains is lib.sh's)
cleanup() {
	remove_domains "^$POOL-"
	rm -rf "$T"
}
trap cleanup EXIT

spec() { # spec VERSION
	cat >"$SPEC" <<EOF
pool: { name: $POOL }
base: { name: gold, version: "$1" }
storage:
  tiers: [ { name: local, driver: dir, path: $STORE } ]
clones: { count: 2, name: "$POOL-{index:02}" }
delta: { max_depth: 3 }
domain: { template: server, memory: 64M, network: none, start: false }
EOF
}
put() { qemu-io -f qcow2 -c "write -P 0x$2 $3 64k" "$D1" >/dev/null; }   # put CLONE-IGNORED PATTERN OFFSET
has() { qemu-io -f qcow2 -r -c "read -P 0x$1 $2 64k" "$D1" 2>&1 | grep -q "read 65536"; } # has PATTERN OFFSET
names() { "$CLI" snapshot ls "$SPEC" "$1" -o json | grep -o '"name":"[^"]*"' | cut -d'"' -f4 | tr '\n' ' '; }

bash "$ROOT/scripts/libvirt-up.sh" >/dev/null 2>&1 || { echo "libvirt is not available"; echo "0 passed, 1 failed"; exit 1; }
for v in 1 2; do
	truncate -s 32M "$T/gold$v.raw"
	printf 'GOLD v%s\n' "$v" | dd of="$T/gold$v.raw" conv=notrunc status=none
	"$CLI" --root "$STORE" base import gold "$T/gold$v.raw" --version "$v" >/dev/null
done
spec 1
expect "apply" 0 "Applied 2 clones" -- "$CLI" apply "$SPEC"

echo "== take, list, revert, remove"
put x 11 0
put x 66 1M
expect "snapshot a" 0 "took snapshot 'a' of $C1" -- "$CLI" snapshot "$SPEC" "$C1" a
check "a is the old disk, the disk an overlay on it" \
	bash -c "qemu-img info '$D1' | grep -q 'backing file: $DELTAS/$C1.snap/a.qcow2'"
put x 22 0
expect "snapshot create b" 0 "took snapshot 'b'" -- "$CLI" snapshot create "$SPEC" "$C1" b
put x 33 0
check "ls: a, b oldest first" test "$(names "$C1")" = "a b "
expect "ls table" 0 "SNAPSHOT" -- "$CLI" snapshot ls "$SPEC" "$C1"
expect "ls of a clone without" 0 "$C2 has no snapshots" -- "$CLI" snapshot ls "$SPEC" "$C2"
expect "depth limit" 1 "a snapshot would put 4 images under its disk, more than delta.max_depth (3)" -- \
	"$CLI" snapshot "$SPEC" "$C1" c
expect "bad name" 2 "invalid snapshot name 'Bad_1'" -- "$CLI" snapshot "$SPEC" "$C1" Bad_1
expect "not a clone" 2 "'nope' is not a clone of pool '$POOL'" -- "$CLI" snapshot "$SPEC" nope a
expect "duplicate name" 1 "has a snapshot 'b' already" -- "$CLI" snapshot "$SPEC" "$C1" b
expect "revert to unknown" 1 "has no snapshot 'zz' (it has 'a', 'b')" -- "$CLI" revert "$SPEC" "$C1" zz
expect "revert over a later snapshot needs --yes" 2 "removes the snapshots taken after it ('b')" -- \
	"$CLI" snapshot revert "$SPEC" "$C1" a
check "refused revert changed nothing" has 33 0
expect "revert b" 0 "reverted $C1 to snapshot 'b'" -- "$CLI" snapshot revert "$SPEC" "$C1" b
check "what was written after b is gone" has 22 0
check "b and a stay" test "$(names "$C1")" = "a b "
put x 44 0
expect "revert --yes a (alias)" 0 "the snapshots taken after it were removed" -- "$CLI" revert --yes "$SPEC" "$C1" a
check "back to what a holds" has 11 0
check "b is gone (list and file)" bash -c "[[ '$(names "$C1")' == 'a ' && ! -e '$DELTAS/$C1.snap/b.qcow2' ]]"
put x 55 0
expect "snapshot b2" 0 "took snapshot 'b2'" -- "$CLI" snapshot "$SPEC" "$C1" b2
expect "rm a" 0 "removed snapshot 'a' of $C1" -- "$CLI" snapshot rm "$SPEC" "$C1" a
check "rm: the disk still reads what a held" has 66 1M
check "rm: and what came after" has 55 0
check "rm: the image is gone, b2 stays" bash -c "[[ '$(names "$C1")' == 'b2 ' && ! -e '$DELTAS/$C1.snap/a.qcow2' ]]"
check "qemu-img check of the chain" qemu-img check -q "$D1"
expect "rm unknown" 1 "has no snapshot 'a'" -- "$CLI" snapshot rm "$SPEC" "$C1" a
expect "usage" 2 "expected POOL.yaml CLONE NAME" -- "$CLI" snapshot rm "$SPEC" "$C1"

echo "== an interrupted snapshot is swept, the chain is left"
ln "$D1" "$DELTAS/$C1.snap/half.qcow2"                      # killed between link and overlay
cp --sparse=always "$DELTAS/$C1.snap/b2.qcow2" "$DELTAS/$C1.snap/stray.qcow2" # revert killed before its sweep
check "ls shows the chain only" test "$(names "$C1")" = "b2 "
check "the leftovers are gone" bash -c "[[ ! -e '$DELTAS/$C1.snap/half.qcow2' && ! -e '$DELTAS/$C1.snap/stray.qcow2' ]]"
check "the disk still reads its data" has 55 0

echo "== the world sees the clone on its base"
expect "plan: nothing to change" 0 "" -- "$CLI" plan --detailed-exitcode "$SPEC"
expect "status: on gold@1, chain depth 3" 0 '"chain_depth":3' -- bash -c "'$CLI' status '$SPEC' -o json | tr '{' '\n' | grep '\"$C1\"'"
expect "base rm refused" 1 "" -- "$CLI" --root "$STORE" base rm gold@1
virsh -q undefine "$C1" >/dev/null
virsh -q undefine "$C2" >/dev/null
expect "without domains: base rm still refused (the disk backs onto it through b2)" 1 "$C1.qcow2" -- \
	"$CLI" --root "$STORE" base rm gold@1
expect "apply defines it again on the same disk" 0 "Applied" -- "$CLI" apply "$SPEC"
check "the snapshot survived" test "$(names "$C1")" = "b2 "
expect "gc keeps v1" 0 "" -- "$CLI" --root "$STORE" gc --keep 0 --yes
check "v1 is still there" test -f "$STORE/bases/gold/1/manifest"
"$CLI" --root "$STORE" base import gold "$T/gold2.raw" --version 2 >/dev/null   # gc took it

echo "== a running clone is refused; it boots on the chain"
if out=$(virsh -q start "$C1" 2>&1); then
	ok "the clone starts on a snapshot chain"
	expect "snapshot of a running clone" 1 "is running: shut it down first" -- "$CLI" snapshot "$SPEC" "$C1" r
	expect "revert of a running clone" 1 "is running" -- "$CLI" revert "$SPEC" "$C1" b2
	virsh -q destroy "$C1" >/dev/null 2>&1
else
	bad "the clone starts on a snapshot chain: $out"
fi

echo "== rollout and reset refuse a clone with snapshots"
spec 2
expect "rollout refused" 1 "clone '$C1' has snapshots ('b2' among them)" -- "$CLI" apply "$SPEC"
check "nothing moved: $C2 still on v1" bash -c "qemu-img info '$DELTAS/$C2.qcow2' | grep -q 'gold/1/disk.qcow2'"
expect "reset refused" 1 "has snapshots" -- "$CLI" reset "$SPEC" "$C1"
check "reset changed nothing" has 55 0
expect "rm b2" 0 "removed snapshot 'b2'" -- "$CLI" snapshot rm "$SPEC" "$C1" b2
check "no snapshot directory left" test ! -e "$DELTAS/$C1.snap"
expect "rollout goes through" 0 "Applied" -- "$CLI" apply "$SPEC"
check "$C1 on v2" bash -c "qemu-img info '$D1' | grep -q 'gold/2/disk.qcow2'"

echo "== destroy removes the snapshot images"
expect "snapshot on v2" 0 "took snapshot 'keep'" -- "$CLI" snapshot "$SPEC" "$C2" keep
expect "destroy" 0 "" -- "$CLI" destroy --yes "$SPEC"
check "no deltas, no snapshots left" test ! -e "$DELTAS"

finish
