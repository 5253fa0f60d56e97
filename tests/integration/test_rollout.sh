#!/usr/bin/env bash
# test_rollout.sh: a 10-clone pool rolls from base v1 to v2 in waves of 3 on the real libvirtd:
# wave order, deltas on v2, identity and data disks kept; a failing health gate halts the rollout
# with later waves untouched; the next apply continues; rollback returns all to v1; kill -9 mid-wave.
set -uo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

POOL=rt$$
T=$(mktemp -d /var/tmp/vp-rollout-XXXXXX)
chmod 755 "$T"
SPEC=$T/pool.yaml
STORE=$T/store

cleanup() {
	"$CLI" destroy -q --yes --purge-data "$SPEC" >/dev/null 2>&1
	rm -rf "$T"
}
trap cleanup EXIT

spec() { # spec VERSION [HEALTH-COMMAND]
	cat >"$SPEC" <<EOF
pool: { name: $POOL }
base: { name: gold, version: "$1" }
storage:
  tiers: [ { name: local, driver: dir, path: $STORE } ]
clones: { count: 10, name: "$POOL-{index:02}" }
data_disk: { size: 16M }
domain: { template: server, memory: 64M, network: default, start: false }
rollout:
  max_unavailable: 3
EOF
	if [[ -n ${2:-} ]]; then
		printf '  health: { command: %s, timeout: 2s }\n' "$2" >>"$SPEC"
	fi
}
clones() { seq -f "$POOL-%02g" 1 10; }
backing() { qemu-img info --output=json "$STORE/deltas/$POOL/$1.qcow2" | sed -n 's/.*"backing-filename": "\(.*\)".*/\1/p'; }
on_version() { # on_version V CLONE...: every clone's delta backs onto version V
	local v=$1 c
	shift
	for c in "$@"; do [[ $(backing "$c") == "$STORE/bases/gold/$v/disk.qcow2" ]] || { echo "    $c backs onto $(backing "$c")"; return 1; }; done
}

bash "$ROOT/scripts/libvirt-up.sh" >/dev/null 2>&1 || { echo "libvirt is not available"; echo "0 passed, 1 failed"; exit 1; }
for v in 1 2; do
	truncate -s 32M "$T/gold$v.raw"
	printf 'GOLD v%s\n' "$v" | dd of="$T/gold$v.raw" conv=notrunc status=none
	"$CLI" --root "$STORE" base import gold "$T/gold$v.raw" --version "$v" >/dev/null
done

spec 1
expect "apply v1" 0 "Applied 10 clones" -- "$CLI" apply "$SPEC"
declare -A uuid mac
for c in $(clones); do
	uuid[$c]=$(virsh domuuid "$c")
	mac[$c]=$(virsh domiflist "$c" | awk 'NR > 2 && $5 { print $5 }')
	qemu-io -c "write -P 0x42 0 64k" "$STORE/data/$POOL/$c.qcow2" >/dev/null
done

echo "== v1 -> v2 in waves of 3, a health gate failing in wave 2"
spec 2 "[sh, -c, 'test \"\$VDIPOOL_CLONE\" != $POOL-05 && test -n \"\$VDIPOOL_UUID\"']"
expect "plan shows 10 rebases in 4 waves" 4 "gold@1 -> gold@2, wave 4/4" -- "$CLI" plan --detailed-exitcode "$SPEC"
expect "the health gate stops the rollout after wave 2" 1 "health gate after wave 2 of 4 failed" -- "$CLI" apply "$SPEC"
check "waves 1-2 moved to v2" on_version 2 "$POOL-01" "$POOL-02" "$POOL-03" "$POOL-04" "$POOL-05" "$POOL-06"
check "waves 3-4 untouched on v1" on_version 1 "$POOL-07" "$POOL-08" "$POOL-09" "$POOL-10"
expect "status shows the mixed pool" 0 "gold@1" -- "$CLI" status "$SPEC"

echo "== the next apply continues"
spec 2
out=$("$CLI" apply "$SPEC" 2>&1)
rc=$?
check "apply finishes the rollout (exit $rc)" test $rc -eq 0
check "only the clones still on v1 move, in two waves of 3 and 1" \
	grep -q -x "Wave 1/2: $POOL-07 $POOL-08 $POOL-09" <<<"$out"
check "wave 2/2 is the last clone" grep -q -x "Wave 2/2: $POOL-10" <<<"$out"
check "every delta backs onto v2" on_version 2 $(clones)
same=1
for c in $(clones); do
	[[ $(virsh domuuid "$c") == "${uuid[$c]}" ]] || { echo "    $c UUID changed"; same=0; }
	[[ $(virsh domiflist "$c" | awk 'NR > 2 && $5 { print $5 }') == "${mac[$c]}" ]] || { echo "    $c MAC changed"; same=0; }
	qemu-io -c "read -P 0x42 0 64k" "$STORE/data/$POOL/$c.qcow2" | grep -q "read 65536" || { echo "    $c data lost"; same=0; }
done
check "UUIDs, MACs and data disks survived the rollout" test $same -eq 1
md=$(virsh metadata "$POOL-01" urn:vdipool:1)
check "metadata records the new and the previous version" grep -q 'version="2" image=.* previous="1"' <<<"$md"
expect "re-apply is a no-op" 0 "nothing to do" -- "$CLI" apply "$SPEC"

echo "== a full rollout shows its waves in order"
spec 1
out=$("$CLI" apply "$SPEC" 2>&1)
check "back to v1 with one apply" test $? -eq 0
order=$(grep '^Wave [0-9]/4:' <<<"$out" | grep -v healthy)
want=$(printf 'Wave 1/4: %s-01 %s-02 %s-03\nWave 2/4: %s-04 %s-05 %s-06\nWave 3/4: %s-07 %s-08 %s-09\nWave 4/4: %s-10' \
	"$POOL" "$POOL" "$POOL" "$POOL" "$POOL" "$POOL" "$POOL" "$POOL" "$POOL" "$POOL")
check "four waves of at most 3, in index order" test "$order" == "$want"
check "each wave passed its gate before the next began" test "$(grep -c '^Wave [0-9]/4: healthy' <<<"$out")" -eq 4

echo "== rollback"
spec 2
"$CLI" apply -q "$SPEC" >/dev/null 2>&1
check "the pool is on v2" on_version 2 $(clones)
expect "rollback returns every clone to v1" 0 "Rolled back 10 clones" -- "$CLI" rollback "$SPEC"
check "every delta backs onto v1 again" on_version 1 $(clones)
expect "base rm of v1 is refused while clones use it" 1 "cannot remove base 'gold@1'" -- "$CLI" --root "$STORE" base rm gold@1
expect "base rm of v2 is refused while the rollback record names it" 1 "cannot remove base 'gold@2': 10 domains record it as base or rollback version: " -- "$CLI" --root "$STORE" base rm gold@2

echo "== gc keeps what clones use and what a rollback returns to"
truncate -s 32M "$T/gold3.raw"
printf 'GOLD v3\n' | dd of="$T/gold3.raw" conv=notrunc status=none
"$CLI" --root "$STORE" base import gold "$T/gold3.raw" --version 3 >/dev/null
expect "gc --keep 0 removes only the unreferenced v3" 0 "removed 1" -- "$CLI" --root "$STORE" gc --keep 0 --yes
expect "v1 (in use) is kept" 0 "gold@1: ok" -- "$CLI" --root "$STORE" base verify gold@1
expect "v2 (the rollback record) is kept" 0 "gold@2: ok" -- "$CLI" --root "$STORE" base verify gold@2
expect "v3 is gone" 1 "no base 'gold@3'" -- "$CLI" --root "$STORE" base verify gold@3

echo "== kill -9 in the middle of a wave, then apply finishes the rollout"
VDIPOOL_TEST_CRASH_AT="after:rebase:2" "$CLI" apply -q --parallel 1 "$SPEC" >/dev/null 2>&1
check "apply was killed mid-wave (exit $?)" test $? -ne 0
expect "the next apply finishes it" 0 "Applied" -- "$CLI" apply "$SPEC"
check "every delta backs onto v2, no clone lost" on_version 2 $(clones)
check "10 domains" test "$(virsh -q list --all --name | grep -c "^$POOL-")" -eq 10
check "no temp files" test -z "$(find "$STORE/deltas/$POOL" -name '.*tmp*')"
expect "nothing left to do" 0 "No changes" -- "$CLI" plan --detailed-exitcode "$SPEC"

finish
