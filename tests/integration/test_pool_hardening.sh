#!/usr/bin/env bash
# test_pool_hardening.sh: issue #10's pool items on the real libvirtd and qemu-img: a rollback after
# a failed gate moves only the clones the rollout reached, each to its own previous version; an
# interrupted rollback (kill -9) is continued by the next rollback or apply; a crash between delta
# swap and redefine is seen from the delta's real backing file; reset keeps a clone on its own
# version mid-rollout; rebased deltas keep the spec's qcow2 options; repairs go in waves; MACs are
# recorded; a namesake pool on another tier is never taken over; destroy --purge-data removes
# every data disk of the pool.
set -uo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

POOL=ph$$
T=$(mktemp -d /var/tmp/vp-hard-XXXXXX)
chmod 755 "$T"
SPEC=$T/pool.yaml
SPEC2=$T/other.yaml
STORE=$T/store
STORE2=$T/store2
DELTAS=$STORE/deltas/$POOL

cleanup() {
	for d in $(virsh -q list --all --name 2>/dev/null | grep "^$POOL-"); do
		virsh -q destroy "$d" >/dev/null 2>&1
		virsh -q undefine "$d" >/dev/null 2>&1
	done
	rm -rf "$T"
}
trap cleanup EXIT

spec() { # spec VERSION [HEALTH-COMMAND [COUNT]]
	cat >"$SPEC" <<EOF
pool: { name: $POOL }
base: { name: gold, version: "$1" }
storage:
  tiers: [ { name: local, driver: dir, path: $STORE } ]
clones: { count: ${3:-6}, name: "$POOL-{index:02}" }
delta: { cluster_size: 256K, extended_l2: true, preallocation: metadata }
data_disk: { size: 16M }
domain: { template: server, memory: 64M, network: default, start: false }
rollout:
  max_unavailable: 2
EOF
	if [[ -n ${2:-} ]]; then
		printf '  health: { command: %s, timeout: 1s }\n' "$2" >>"$SPEC"
	fi
}
clones() { seq -f "$POOL-%02g" 1 "${1:-6}"; }
backing() { qemu-img info --output=json "$DELTAS/$1.qcow2" | sed -n 's/.*"backing-filename": "\(.*\)".*/\1/p'; }
on_version() { # on_version V CLONE...: every clone's delta backs onto version V
	local v=$1 c
	shift
	for c in "$@"; do
		[[ $(backing "$c") == "$STORE/bases/gold/$v/disk.qcow2" ]] || { echo "    $c backs onto $(backing "$c")"; return 1; }
	done
}
meta() { virsh metadata "$1" urn:vdipool:1 2>&1; }
mark() { qemu-io -c "write -P 0x$2 0 64k" "$DELTAS/$1.qcow2" >/dev/null; }
marked() { qemu-io -c "read -P 0x$2 0 64k" "$DELTAS/$1.qcow2" 2>&1 | grep -q "read 65536"; }
nothing_moves() { # CLONE...: the delta still holds what mark wrote into it
	local c
	for c in "$@"; do marked "$c" 77 || { echo "    $c lost its delta"; return 1; }; done
}

bash "$ROOT/scripts/libvirt-up.sh" >/dev/null 2>&1 || { echo "libvirt is not available"; echo "0 passed, 1 failed"; exit 1; }
for v in 1 2 3; do
	truncate -s 32M "$T/gold$v.raw"
	printf 'GOLD v%s\n' "$v" | dd of="$T/gold$v.raw" conv=notrunc status=none
	"$CLI" --root "$STORE" base import gold "$T/gold$v.raw" --version "$v" >/dev/null
done

echo "== identity: MACs recorded in metadata, locally administered"
spec 1
expect "apply v1" 0 "Applied 6 clones" -- "$CLI" apply "$SPEC"
mac1=$(virsh domiflist "$POOL-01" | awk 'NR > 2 && $5 { print $5 }')
check "the MAC is locally administered unicast" grep -q '^.[26ae]:' <<<"$mac1"
check "metadata records the MAC" grep -q "mac=\"$mac1\"" <<<"$(meta "$POOL-01")"
check "metadata records the deltas tier" grep -q "tier=\"$STORE\"" <<<"$(meta "$POOL-01")"
macs=$(for c in $(clones); do virsh domiflist "$c" | awk 'NR > 2 && $5 { print $5 }'; done | sort | uniq -d)
check "no two clones share a MAC" test -z "$macs"

echo "== a rebase keeps the spec's qcow2 options"
spec 2
expect "roll out v2" 0 "Applied 6 clones" -- "$CLI" apply "$SPEC"
info=$(qemu-img info --output=json "$DELTAS/$POOL-04.qcow2")
check "rebased delta: 256K clusters, extended L2" \
	test "$(grep -c '"cluster-size": 262144\|"extended-l2": true' <<<"$info")" -eq 2
check "rebased delta is preallocated (metadata)" \
	test "$(qemu-img map --output=json "$DELTAS/$POOL-04.qcow2" | grep -c '"data": false')" -ge 1
check "every delta on v2" on_version 2 $(clones)
check "the MAC survived the rollout" test "$(virsh domiflist "$POOL-01" | awk 'NR > 2 && $5 { print $5 }')" == "$mac1"

echo "== rollback after a failed gate moves only the clones the rollout reached"
spec 3 "[sh, -c, 'test \"\$VDIPOOL_CLONE\" != $POOL-01']"
for c in $(clones); do mark "$c" 77; done
expect "the gate stops the rollout after wave 1" 1 "health gate after wave 1 of 3 failed" -- "$CLI" apply "$SPEC"
check "wave 1 is on v3" on_version 3 "$POOL-01" "$POOL-02"
check "the rest is untouched on v2" on_version 2 "$POOL-03" "$POOL-04" "$POOL-05" "$POOL-06"
spec 3
expect "rollback moves the 2 clones of wave 1" 0 "Rolled back 2 clones" -- "$CLI" rollback "$SPEC"
check "every clone is on v2 again" on_version 2 $(clones)
check "untouched clones kept their deltas (not rebased)" nothing_moves "$POOL-03" "$POOL-04" "$POOL-05" "$POOL-06"
check "the rolled-back clone records v2, left v3" grep -q 'version="2" image=.* previous="3"' <<<"$(meta "$POOL-01")"
check "no rollback record is left" test ! -e "$STORE/deltas/.$POOL.rollback"
expect "a second rollback has nothing to do (exit 1, a state conflict)" 1 "nothing to roll back" -- "$CLI" rollback "$SPEC"

echo "== an interrupted rollback is continued, never turned around"
spec 3
expect "roll out v3" 0 "Applied 6 clones" -- "$CLI" apply "$SPEC"
# Killed after the 5th swap: 01-04 back on v2, 05 swapped but not redefined, 06 untouched.
VDIPOOL_TEST_CRASH_AT="after:rebase:5" "$CLI" rollback -q --parallel 1 "$SPEC" >/dev/null 2>&1
check "rollback was killed (exit $?)" test $? -eq 137
check "the rollback is on record" test -f "$STORE/deltas/.$POOL.rollback"
check "05's delta is on v2 while its domain says v3" grep -q 'version="3"' <<<"$(meta "$POOL-05")"
expect "a reset meanwhile" 0 "Reset 1 clone" -- "$CLI" reset "$SPEC" "$POOL-01"
check "keeps 01 on v2 and the rollback on record" bash -c "$(declare -f backing on_version); STORE=$STORE DELTAS=$DELTAS on_version 2 $POOL-01 && test -f $STORE/deltas/.$POOL.rollback"
expect "plan continues the rollback" 4 "rollback: back to the version it left" -- "$CLI" plan --detailed-exitcode "$SPEC"
expect "plan sees 05's real backing" 4 "rebase, define (delta backs onto another base than its domain records) gold@3 -> gold@2" -- "$CLI" plan --detailed-exitcode "$SPEC"
expect "the next rollback finishes it" 0 "Rolled back 2 clones" -- "$CLI" rollback "$SPEC"
check "every clone is on v2" on_version 2 $(clones)
check "05 records v2, left v3" grep -q 'version="2" image=.* previous="3"' <<<"$(meta "$POOL-05")"
check "the record is gone" test ! -e "$STORE/deltas/.$POOL.rollback"

echo "== apply continues an interrupted rollback too, then rolls forward"
expect "roll out v3 again" 0 "Applied 6 clones" -- "$CLI" apply "$SPEC"
VDIPOOL_TEST_CRASH_AT="after:define:2" "$CLI" rollback -q --parallel 1 "$SPEC" >/dev/null 2>&1
check "rollback was killed (exit $?)" test $? -eq 137
expect "apply continues the rollback" 0 "Applied 4 clones" -- "$CLI" apply "$SPEC"
check "every clone is on v2" on_version 2 $(clones)
# A finished rollback whose record was not removed (killed at the very end) holds nothing back.
printf 'vdipool-rollback=1\nbase=gold\nfrom=3\n' >"$STORE/deltas/.$POOL.rollback"
expect "the next apply rolls forward as the spec says" 0 "Applied 6 clones" -- "$CLI" apply "$SPEC"
check "every clone is on v3" on_version 3 $(clones)
check "the stale record is gone" test ! -e "$STORE/deltas/.$POOL.rollback"

echo "== a crash between delta swap and redefine: the real backing file counts"
spec 2
VDIPOOL_TEST_CRASH_AT="after:rebase:1" "$CLI" apply -q --parallel 1 "$SPEC" >/dev/null 2>&1
check "apply was killed (exit $?)" test $? -eq 137
check "01's delta is on v2, its domain says v3" test "$(on_version 2 "$POOL-01" && meta "$POOL-01" | grep -c 'version="3"')" == 1
spec 3
printf -v line '  ~ %-20s %-8s %s' "$POOL-01" rebase "rebase, define (delta backs onto another base than its domain records) -> gold@3"
expect "with the spec back on v3, plan still rebases 01" 4 "$line" -- "$CLI" plan --detailed-exitcode "$SPEC"
expect "apply repairs it" 0 "Applied 1 clone" -- "$CLI" apply "$SPEC"
check "01 is on v3 again" on_version 3 "$POOL-01"
expect "nothing left to do" 0 "No changes" -- "$CLI" plan --detailed-exitcode "$SPEC"

echo "== reset in the middle of a rollout keeps the clone on its own version"
spec 2 "[sh, -c, 'test \"\$VDIPOOL_CLONE\" != $POOL-01']"
expect "a gate failure leaves the pool mixed" 1 "health gate after wave 1" -- "$CLI" apply "$SPEC"
check "05 is still on v3" on_version 3 "$POOL-05"
mark "$POOL-05" 66
expect "reset 05" 0 "Reset 1 clone" -- "$CLI" reset "$SPEC" "$POOL-05"
check "05 has a fresh delta" bash -c "qemu-io -c 'read -P 0 0 64k' '$DELTAS/$POOL-05.qcow2' | grep -q 'read 65536'"
check "05 is on v3 still (not moved outside the waves)" on_version 3 "$POOL-05"
check "05's metadata says v3" grep -q 'version="3"' <<<"$(meta "$POOL-05")"
spec 2
expect "apply finishes the rollout" 0 "Applied" -- "$CLI" apply "$SPEC"
check "every clone on v2" on_version 2 $(clones)

echo "== repairs respect max_unavailable"
for c in 02 03 04 05; do virsh -q undefine "$POOL-$c" >/dev/null; done
out=$("$CLI" apply "$SPEC" 2>&1)
check "apply repairs (exit $?)" test $? -eq 0
check "in waves of 2" grep -qx "Wave 1/2: $POOL-02 $POOL-03" <<<"$out"
check "then the next 2" grep -qx "Wave 2/2: $POOL-04 $POOL-05" <<<"$out"
check "the MACs came back unchanged" test "$(virsh domiflist "$POOL-01" | awk 'NR > 2 && $5 { print $5 }')" == "$mac1"

echo "== a clone defined by an older vdipool (no MAC, no tier in its metadata) keeps its MAC"
legacy=$(python3 -c '
import hashlib, sys
h = hashlib.sha256(("vdipool:%s/%s" % (sys.argv[1], sys.argv[2])).encode()).digest()
print("52:54:00:%02x:%02x:%02x" % (h[16], h[17], h[18]))' "$POOL" "$POOL-03")
virsh dumpxml --inactive "$POOL-03" | sed -e "s|<mac address='[^']*'/>|<mac address='$legacy'/>|" \
	-e 's| tier="[^"]*"||' -e '/<vdipool:identity /d' >"$T/old.xml"
virsh -q define "$T/old.xml" >/dev/null
check "the old-style clone has the legacy MAC and no recorded one" \
	bash -c "virsh domiflist $POOL-03 | grep -q '$legacy' && ! virsh metadata $POOL-03 urn:vdipool:1 | grep -q 'mac=\|tier='"
expect "it is still ours: nothing to do" 0 "No changes" -- "$CLI" plan --detailed-exitcode "$SPEC"
sed -i 's/memory: 64M/memory: 96M/' "$SPEC"
expect "a definition update reaches every clone" 0 "Applied 6 clones" -- "$CLI" apply "$SPEC"
check "the old clone kept its MAC" bash -c "virsh domiflist $POOL-03 | grep -q '$legacy'"
check "and its metadata records it now" grep -q "mac=\"$legacy\"" <<<"$(meta "$POOL-03")"
check "the other clones kept theirs" test "$(virsh domiflist "$POOL-01" | awk 'NR > 2 && $5 { print $5 }')" == "$mac1"

echo "== a namesake pool on another tier is never taken over"
truncate -s 32M "$T/other.raw"
"$CLI" --root "$STORE2" base import gold "$T/other.raw" --version 2 >/dev/null
sed "s|path: $STORE|path: $STORE2|" "$SPEC" >"$SPEC2"
expect "apply of the namesake refuses" 1 "belongs to another pool named '$POOL' whose deltas lie on another storage tier" -- "$CLI" apply "$SPEC2"
expect "status of the namesake shows the clash" 0 "conflict" -- "$CLI" status "$SPEC2"
expect "destroy of the namesake finds nothing of its own" 0 "nothing to destroy" -- "$CLI" destroy --yes "$SPEC2"
check "the first pool's domains still point at its own deltas" \
	bash -c "virsh dumpxml $POOL-03 | grep -q \"source file='$DELTAS/$POOL-03.qcow2'\""
check "nothing was created on the other tier" test ! -e "$STORE2/deltas/$POOL"

echo "== destroy --purge-data removes every data disk of the pool"
spec 2 "" 4
expect "scale down to 4 (2 removed, 4 back to 64M)" 0 "Applied 6 clones" -- "$CLI" apply "$SPEC"
check "05 and 06 left their data disks" test -f "$STORE/data/$POOL/$POOL-05.qcow2" -a -f "$STORE/data/$POOL/$POOL-06.qcow2"
expect "plain destroy" 0 "Destroyed 4 clones" -- "$CLI" destroy --yes "$SPEC"
check "data disks are kept by a plain destroy" test "$(ls "$STORE/data/$POOL" | wc -l)" -eq 6
expect "destroy --purge-data removes them all" 0 "Destroyed 6 clones" -- "$CLI" destroy --yes --purge-data "$SPEC"
check "no data disk left" test ! -e "$STORE/data/$POOL"
check "no delta left" test ! -e "$DELTAS"

echo "== a new clone whose UUID another domain has gets another"
uuid01=$(python3 -c '
import hashlib, sys, uuid
u = bytearray(hashlib.sha256(("vdipool:%s/%s" % (sys.argv[1], sys.argv[2])).encode()).digest()[:16])
u[6] = (u[6] & 0x0f) | 0x50
u[8] = (u[8] & 0x3f) | 0x80
print(uuid.UUID(bytes=bytes(u)))' "$POOL" "$POOL-01")
cat >"$T/squatter.xml" <<EOF
<domain type='qemu'><name>$POOL-x-squatter</name><uuid>$uuid01</uuid><memory unit='MiB'>32</memory>
<os><type arch='x86_64' machine='pc'>hvm</type></os></domain>
EOF
virsh -q define "$T/squatter.xml" >/dev/null
spec 2 "" 1
expect "apply defines the clone anyway" 0 "Applied 1 clone" -- "$CLI" apply "$SPEC"
check "with another UUID" test "$(virsh domuuid "$POOL-01")" != "$uuid01"
check "the other domain keeps its own" test "$(virsh domuuid "$POOL-x-squatter")" == "$uuid01"
"$CLI" destroy -q --yes --purge-data "$SPEC" >/dev/null 2>&1

echo "== state conflicts exit 1, not 2"
spec 2 "" 1
"$CLI" apply -q "$SPEC" >/dev/null 2>&1
spec 3 "" 1
expect "roll 01 out to v3" 0 "Applied 1 clone" -- "$CLI" apply "$SPEC"
M2=$STORE/bases/gold/2/manifest
cp "$M2" "$T/manifest.saved"
chmod u+w "$M2"
sed -i 's/^version=2$/version=9/' "$M2"
expect "rollback onto a base whose manifest is damaged exits 1" 1 "was it moved?" -- "$CLI" rollback "$SPEC"
check "nothing moved" on_version 3 "$POOL-01"
check "and no rollback was recorded" test ! -e "$STORE/deltas/.$POOL.rollback"
cp "$T/manifest.saved" "$M2"
expect "with the store repaired the rollback runs" 0 "Rolled back 1 clone" -- "$CLI" rollback "$SPEC"
"$CLI" destroy -q --yes --purge-data "$SPEC" >/dev/null 2>&1

finish
