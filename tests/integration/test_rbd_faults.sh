#!/usr/bin/env bash
# test_rbd_faults.sh: RBD tiers when things go wrong, against the throw-away Ceph of
# scripts/ceph-up.sh: tier combinations that cannot work are refused at validate time (file:line,
# the reason, nothing changed); a cluster that is down fails in seconds with the reason; kill -9
# during import, apply and rollout, then the next run repairs and no staging image, temporary
# clone or stray snapshot is left; detach flattens a clone's image in place. (Bases on a dir
# tier with data disks on RBD, which boots guests, is test_rbd_mixed.sh.)
# ctest: not beside guests. It boots none, but its vdipool processes open RBD images about 350
# times, and librbd 16.2 races under CPU load (README, "RBD under CPU load"): a TCG guest beside
# it keeps a core busy.
set -uo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

rbd_setup faults rf # lib.sh: CEPH, R, RBD_TIER, GUEST, POOL, T, SPEC and the EXIT trap

# No staging image, temporary clone, or snapshot other than each base's 'vdipool'.
clean() {
	local l snaps
	l=$("${R[@]}" ls 2>/dev/null)
	if grep -q '^\.' <<<"$l"; then
		echo "    left behind: $(grep '^\.' <<<"$l" | tr '\n' ' ')"
		return 1
	fi
	for i in $l; do
		snaps=$("${R[@]}" snap ls "$i" 2>/dev/null | awk 'NR > 1 { print $2 }' | tr '\n' ' ')
		case $i in
		base.*) [[ $snaps == "vdipool " ]] || { echo "    $i has snapshots '$snaps'"; return 1; } ;;
		*) [[ -z $snaps ]] || { echo "    $i has snapshots '$snaps'"; return 1; } ;;
		esac
	done
	[[ -z $("${R[@]}" trash ls 2>/dev/null) ]] || { echo "    the trash is not empty"; return 1; }
}

# The published names are whole: each delta.* a clone of a base snapshot, each base.* with exactly
# its snapshot 'vdipool'; temporaries (dot names) may wait for a later sweep.
# The killed import's qemu-img goes on writing the staging image on its own (only vdipool was
# killed): wait for it, as the image is busy until then (and a later sweep would take it).
orphan_done() {
	local i
	for ((i = 0; i < 300; i++)); do
		pgrep -f 'qemu-img convert.*\.import\.big' >/dev/null || return 0
		sleep 0.1
	done
}

published_ok() {
	local l snaps
	l=$("${R[@]}" ls 2>/dev/null | grep -v '^\.')
	for i in $l; do
		snaps=$("${R[@]}" snap ls "$i" 2>/dev/null | awk 'NR > 1 { print $2 }' | tr '\n' ' ')
		case $i in
		base.*) [[ $snaps == "vdipool " ]] || { echo "    $i has snapshots '$snaps'"; return 1; } ;;
		delta.*) [[ -z $snaps && -n $(parent "$i") ]] || { echo "    $i: no parent or snapshots"; return 1; } ;;
		esac
	done
	[[ $(wc -w <<<"$l") -eq $(sort -u <<<"$l" | wc -w) ]] || { echo "    a name twice: $l"; return 1; }
}

rbd_spec() { # rbd_spec COUNT [BASE_VERSION]
	cat >"$SPEC" <<EOF
pool: { name: $POOL }
base: { name: tiny${2:+, version: "$2"} }
storage:
  tiers: [ $RBD_TIER ]
  state_dir: $T/state
clones: { count: $1, name: "$POOL-{index}" }
domain: { template: server, memory: 128M, network: none, start: false }
rollout: { max_unavailable: 100% }
EOF
}

bash "$ROOT/scripts/libvirt-up.sh" >/dev/null 2>&1 || { bad "libvirt is up"; finish; }
bash "$ROOT/scripts/build-guest-image.sh" "$GUEST" >/dev/null 2>&1 || { bad "the guest image builds"; finish; }
ceph_up || finish

echo "== tier combinations that cannot work are refused at validate time"
cat >"$T/bad1.yaml" <<EOF
pool: { name: $POOL }
base: { name: tiny }
storage:
  tiers:
    - { name: fast, driver: dir, path: $T/store }
    - $RBD_TIER
  bases: fast
  deltas: ceph
clones: { count: 1 }
EOF
expect "rbd deltas on dir bases: refused with the reason and the line" 2 "bad1.yaml:8" -- "$CLI" validate "$T/bad1.yaml"
expect "... naming RBD snapshots as the reason" 2 "RBD" -- "$CLI" validate "$T/bad1.yaml"
sed -e 's/bases: fast/bases: ceph/' -e 's/deltas: ceph/deltas: fast/' "$T/bad1.yaml" >"$T/bad2.yaml"
expect "qcow2 deltas on rbd bases: refused" 2 "cannot be backed by an RBD snapshot" -- "$CLI" validate "$T/bad2.yaml"
expect "apply of it changes nothing" 2 "bad2.yaml" -- "$CLI" apply "$T/bad2.yaml"
check "nothing was created in the Ceph pool" test -z "$(images)"
sed -e "s|keyring: $CEPH/client.vdipool.keyring|keyring: relative.keyring|" "$T/bad2.yaml" >"$T/bad3.yaml"
expect "a relative keyring path: refused with its key" 2 "keyring" -- "$CLI" validate "$T/bad3.yaml"

echo "== a cluster that is down fails in seconds"
sed -e 's/^mon host = .*/mon host = [v2:127.0.0.1:9,v1:127.0.0.1:9]/' "$CEPH/ceph.conf" >"$T/down.conf"
rbd_spec 1
sed -e "s|conf: $CEPH/ceph.conf|conf: $T/down.conf|" "$SPEC" >"$T/down.yaml"
t0=$SECONDS
expect "plan against a down cluster exits 1 with the reason" 1 "cannot connect to the Ceph cluster" -- "$CLI" plan "$T/down.yaml"
check "... within 30 s ($((SECONDS - t0)) s)" test $((SECONDS - t0)) -lt 30
t0=$SECONDS
expect "base list against it too" 1 "cannot connect" -- "$CLI" base list --spec "$T/down.yaml"
check "... within 30 s ($((SECONDS - t0)) s)" test $((SECONDS - t0)) -lt 30

echo "== kill -9 during an import, then the next import repairs"
head -c 48M /dev/urandom >"$T/big.raw"
"$CLI" base import big "$T/big.raw" --version 1 --spec "$SPEC" >/dev/null 2>&1 &
imp=$!
for _ in $(seq 200); do grep -q '\.import\.big' <<<"$(images)" && break; sleep 0.05; done
staged=$(images)
kill -9 $imp 2>/dev/null
wait $imp 2>/dev/null
orphan_done
check "the killed import had a staging image ($staged)" grep -q '\.import\.big' <<<"$staged"
check "no half-imported version is published" bash -c "! grep -q 'base.big.1' <<<'$(images)'"
expect "the next import succeeds" 0 "big@1" -- "$CLI" base import big "$T/big.raw" --version 1 --spec "$SPEC"
# (the killed import's staging image may stay watched by its killed qemu-img for up to 30 s: a
# later sweep takes it; the end of this test checks that nothing at all is left)
check "and publishes nothing half-made" published_ok
check "the published image has the source's bytes" \
	cmp <("${R[@]}" export base.big.1@vdipool - 2>/dev/null) "$T/big.raw"
"$CLI" base rm big@1 --spec "$SPEC" >/dev/null
check "base rm of an unused version removes image and snapshot" bash -c "! grep -q base.big <<<'$(images)'"

echo "== kill -9 during apply, then apply repairs"
"$CLI" base import tiny "$GUEST/tiny.raw" --version 1 --spec "$SPEC" >/dev/null
# An import killed again: the next apply (not only the next import) takes its staging image.
"$CLI" base import big "$T/big.raw" --version 2 --spec "$SPEC" >/dev/null 2>&1 &
imp=$!
for _ in $(seq 200); do grep -q '\.import\.big' <<<"$(images)" && break; sleep 0.05; done
kill -9 $imp 2>/dev/null
wait $imp 2>/dev/null
orphan_done
rbd_spec 2
expect "an apply after a killed import" 0 "Applied 2 clones" -- "$CLI" apply "$SPEC"
check "was not stopped by it, and nothing is published half-made" published_ok
crash() { # crash NAME COUNT POINT
	rbd_spec "$2"
	VDIPOOL_TEST_CRASH_AT=$3 "$CLI" apply -q --parallel 1 "$SPEC" >/dev/null 2>&1
	local rc=$?
	check "$1: apply was killed (exit $rc)" test $rc -eq 137
	expect "$1: next apply converges" 0 "Applied" -- "$CLI" apply "$SPEC"
	check "$1: $2 clones, each an RBD clone of the base" \
		test "$(for i in $(seq "$2"); do parent "delta.$POOL.$POOL-$i"; done | grep -c 'rbd/base.tiny.1@vdipool')" -eq "$2"
	check "$1: nothing left behind" clean
}
crash "after a clone, before its domain" 6 "after:create delta:3"
crash "before a define" 8 "before:define:2"
crash "after an undefine, before the clone goes" 3 "after:undefine:2"

echo "== kill -9 at random moments of rollouts, then apply repairs"
"$CLI" base import tiny "$GUEST/tiny.raw" --version 2 --spec "$SPEC" >/dev/null
rbd_spec 6 1
"$CLI" apply -q "$SPEC" >/dev/null 2>&1
kills=0
for round in 1 2 3 4; do
	v=$((round % 2 + 1))
	rbd_spec 6 "$v"
	"$CLI" apply -q --parallel 2 "$SPEC" >/dev/null 2>&1 &
	pid=$!
	sleep "0.$((RANDOM % 5 + 1))"
	kill -9 $pid 2>/dev/null && kills=$((kills + 1))
	wait $pid 2>/dev/null
	expect "round $round: the next apply converges on v$v" 0 "" -- "$CLI" apply -q "$SPEC"
	n=$(for i in 1 2 3 4 5 6; do parent "delta.$POOL.$POOL-$i"; done | grep -c "rbd/base.tiny.$v@vdipool")
	check "round $round: all 6 clones are on v$v ($n)" test "$n" -eq 6
	check "round $round: no clone, image or snapshot is published half-made" published_ok
done
check "at least 2 of 4 rollouts were killed mid-way ($kills)" test "$kills" -ge 2
# A killed process's watch on an image it had open outlives it until the OSD times it out (30 s):
# until then librbd refuses to remove that image, and sweep leaves it for later. After that, the
# next run takes every temporary.
sleep 32
expect "an apply after the watches timed out" 0 "" -- "$CLI" apply -q "$SPEC"
check "then nothing is left behind" clean

echo "== detach on RBD: the clone's image is flattened in place and keeps its name"
v1=$(parent "delta.$POOL.$POOL-1")
expect "detach $POOL-1" 0 "Detached $POOL-1" -- "$CLI" detach "$SPEC" "$POOL-1"
check "its image has no parent now (was $v1)" test -z "$(parent "delta.$POOL.$POOL-1")"
check "its metadata says detached" \
	bash -c "virsh metadata '$POOL-1' urn:vdipool:1 2>/dev/null | grep -q 'detached=\"yes\"'"
check "the other clones keep their parent" test "$(parent "delta.$POOL.$POOL-2")" = "$v1"
expect "apply leaves the detached clone alone (plan: no change)" 0 "" -- \
	"$CLI" plan --detailed-exitcode "$SPEC"
check "nothing is left behind by the flatten" clean
check "destroy" "$CLI" destroy -q --yes "$SPEC"
expect "gc removes both versions" 0 "removed 2" -- "$CLI" gc "$SPEC" --keep 0 --yes
check "the Ceph pool is empty" test -z "$(images)"
check "nothing left in the trash" clean
finish
