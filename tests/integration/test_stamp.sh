#!/usr/bin/env bash
# test_stamp.sh: stamped deltas against the real libvirtd and qemu-img: a pool's deltas are the
# same bytes as one written by the qcow2 writer (cmp), pass qemu-img check and compare; on ext4
# they are copies made durable in groups (strace: far fewer flushes than deltas, one fdatasync per
# written image only), on an XFS loop mount (reflink=1) reflinks that share the stamp's extents
# (filefrag: shared); a rollout stamps too; kill -9 leaves only temporaries the next apply sweeps.
set -uo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

GUEST=${VP_GUEST_DIR:-$BUILD/guest}
POOL=st$$
N=8
T=$(mktemp -d /var/tmp/vp-stamp-XXXXXX)
chmod 755 "$T"
MNT=$T/xfs
LOOP=

cleanup() {
	local s d
	for s in "$T"/*.yaml; do
		[[ -f $s ]] && "$CLI" destroy -q --yes "$s" >/dev/null 2>&1
	done
	for d in $(virsh -q list --all --name 2>/dev/null | grep "^$POOL"); do
		virsh -q undefine "$d" >/dev/null 2>&1
	done
	mountpoint -q "$MNT" 2>/dev/null && umount "$MNT"
	[[ -n $LOOP ]] && losetup -d "$LOOP" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT

spec() { # FILE POOL STORE VERSION
	cat >"$1" <<EOF
pool: { name: $2 }
base: { name: tiny, version: "$4" }
storage:
  tiers: [ { name: local, driver: dir, path: $3 } ]
clones: { count: $N, name: "$2-{index}" }
domain: { template: server, memory: 128M, network: none, start: false }
EOF
}

# deltas_ok NAME STORE POOL VERSION: every delta is clean, reads as its base, backs onto it, is
# 0600, and all are byte for byte the same (the first one of an apply is written by the qcow2
# writer, the others are stamped); no stamp or temporary is left; the plan is empty.
deltas_ok() {
	local name=$1 store=$2 pool=$3 base=$2/bases/tiny/$4/disk.qcow2 i f first bad_one=0
	first=$store/deltas/$pool/$pool-1.qcow2
	for i in $(seq 1 $N); do
		f=$store/deltas/$pool/$pool-$i.qcow2
		[[ -f $f ]] || { echo "    $f missing"; bad_one=1; continue; }
		qemu-img check -q "$f" || { echo "    $f: qemu-img check failed"; bad_one=1; }
		qemu-img compare -q -F qcow2 "$base" "$f" || { echo "    $f differs from $base"; bad_one=1; }
		[[ $(qemu-img info --output=json "$f") == *"\"backing-filename\": \"$base\""* ]] ||
			{ echo "    $f does not back onto $base"; bad_one=1; }
		[[ $(stat -c %a "$f") == 600 ]] || { echo "    $f is not 0600"; bad_one=1; }
		cmp -s "$first" "$f" || { echo "    $f differs from $first byte for byte"; bad_one=1; }
	done
	if compgen -G "$store/deltas/$pool/.*" >/dev/null; then
		echo "    left behind: $(ls -a "$store/deltas/$pool" | grep '^\.[^.]')"
		bad_one=1
	fi
	"$CLI" plan --detailed-exitcode "$T/$pool.yaml" >/dev/null 2>&1 || { echo "    plan is not empty"; bad_one=1; }
	if [[ $bad_one -eq 0 ]]; then ok "$name"; else bad "$name"; fi
}

echo "== setup in $T (${SECONDS}s)"
bash "$ROOT/scripts/libvirt-up.sh" >/dev/null 2>&1 || { bad "libvirt is up"; finish; }
bash "$ROOT/scripts/build-guest-image.sh" "$GUEST" >/dev/null 2>&1 || { bad "the guest image builds"; finish; }
command -v strace >/dev/null || apt-get install -y -q strace >/dev/null 2>&1

echo "== ext4: $N deltas, one written, the others copied from its stamp, flushed in groups (${SECONDS}s)"
E=$T/ext4
"$CLI" --root "$E" base import tiny "$GUEST/tiny.raw" --version 1 >/dev/null
spec "$T/$POOL.yaml" "$POOL" "$E" 1
if command -v strace >/dev/null; then
	strace -f -qq -e trace=fdatasync,fsync,syncfs -o "$T/strace.log" "$CLI" apply -q "$T/$POOL.yaml" >/dev/null 2>&1
	check "apply under strace" test $? -eq 0
	fds=$(grep -c 'fdatasync(' "$T/strace.log")
	sfs=$(grep -c 'syncfs(' "$T/strace.log")
	echo "    $N deltas: $fds fdatasync (qcow2 writer), $sfs syncfs (groups of copies)"
	check "the writer wrote 2 images (the first delta and the stamp), not $N: $fds fdatasync" test "$fds" -eq 2
	check "the copies were made durable in 1 to $((N - 1)) syncfs: $sfs" test "$sfs" -ge 1 -a "$sfs" -lt $N
else
	skip "flush counts: strace is missing and cannot be installed"
	"$CLI" apply -q "$T/$POOL.yaml" >/dev/null 2>&1
fi
deltas_ok "ext4: each delta is clean, its base's content, and the same bytes as the written one" "$E" "$POOL" 1
check "ext4: no extent is shared (a copy, not a reflink)" bash -c \
	"! filefrag -v '$E/deltas/$POOL/$POOL-2.qcow2' | grep -q shared"

echo "== ext4: kill -9 in the middle of a stamped apply, then apply again (${SECONDS}s)"
"$CLI" destroy -q --yes "$T/$POOL.yaml" >/dev/null
VDIPOOL_TEST_CRASH_AT="after:create delta:4" "$CLI" apply -q "$T/$POOL.yaml" >/dev/null 2>&1
rc=$?
check "apply was killed (exit $rc)" test $rc -eq 137
check "it left its stamp under a temporary name" compgen -G "$E/deltas/$POOL/.stamp-*.tmp.*"
expect "the next apply converges" 0 "Applied" -- "$CLI" apply "$T/$POOL.yaml"
deltas_ok "after the kill: every delta whole and the same bytes, the dead stamp swept" "$E" "$POOL" 1

echo "== XFS (reflink=1, a loop device): deltas are reflinks of the stamp (${SECONDS}s)"
if xfs_ready "$T/xfs.img" "$MNT"; then
	X=$MNT/store
	XP=${POOL}x
	"$CLI" --root "$X" base import tiny "$GUEST/tiny.raw" --version 1 >/dev/null
	spec "$T/$XP.yaml" "$XP" "$X" 1
	expect "apply makes $N clones on XFS" 0 "Applied $N clones" -- "$CLI" apply "$T/$XP.yaml"
	deltas_ok "XFS: each delta is clean, its base's content, and the same bytes as the written one" "$X" "$XP" 1
	shared=0
	for i in $(seq 1 $N); do
		filefrag -v "$X/deltas/$XP/$XP-$i.qcow2" | grep -q shared && shared=$((shared + 1))
	done
	check "XFS: $shared of $N deltas share their extents (all but the written one)" test $shared -ge $((N - 1))
	"$CLI" --root "$X" base import tiny "$GUEST/tiny.raw" --version 2 >/dev/null
	spec "$T/$XP.yaml" "$XP" "$X" 2
	expect "a rollout to v2 stamps the new deltas too" 0 "Applied $N clones" -- "$CLI" apply "$T/$XP.yaml"
	deltas_ok "XFS after the rollout: every delta on v2, the same bytes" "$X" "$XP" 2
	check "XFS: a rolled delta shares its extents" bash -c "filefrag -v '$X/deltas/$XP/$XP-$N.qcow2' | grep -q shared"
	check "destroy the XFS pool" "$CLI" destroy -q --yes "$T/$XP.yaml"
fi

echo "== done (${SECONDS}s)"
finish
