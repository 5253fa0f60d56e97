#!/usr/bin/env bash
# test_pool.sh: plan/apply/status/destroy/reset against the real libvirtd: a 20-clone pool, no-op
# re-apply, scaling 20 -> 25 -> 10, a foreign domain refused, kill -9 at five points, destroy.
set -uo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

POOL=itp$$
T=$(mktemp -d /var/tmp/vp-pool-XXXXXX)
chmod 755 "$T"
SPEC=$T/pool.yaml
DELTAS=$T/store/deltas/$POOL

cleanup() {
	for d in $(virsh -q list --all --name 2>/dev/null | grep "^$POOL-\|^vptest-foreign-$$"); do
		virsh -q destroy "$d" >/dev/null 2>&1
		virsh -q undefine "$d" >/dev/null 2>&1
	done
	rm -rf "$T"
}
trap cleanup EXIT


spec() { # spec COUNT [START]
	cat >"$SPEC" <<EOF
pool:
  name: $POOL
base:
  name: itbase
storage:
  tiers:
    - name: local
      driver: dir
      path: $T/store
clones:
  count: $1
  name: "$POOL-{index:02}"
domain:
  template: server
  memory: 64M
  network: none
  start: ${2:-false}
rollout:
  shutdown_timeout: 2s
EOF
}

deltas() { find "$DELTAS" -maxdepth 1 -name '*.qcow2' 2>/dev/null | wc -l; }

# Every domain of the pool has its delta, every delta has its domain, no temp files, plan is empty.
consistent() {
	local name=$1 d bad_one=0 f
	for d in $(virsh -q list --all --name | grep "^$POOL-"); do
		[[ -f "$DELTAS/$d.qcow2" ]] || { echo "    domain $d points at a missing delta"; bad_one=1; }
	done
	for f in "$DELTAS"/*.qcow2; do
		[[ -e "$f" ]] || continue
		virsh -q dominfo "$(basename "$f" .qcow2)" >/dev/null 2>&1 || { echo "    orphan delta $f"; bad_one=1; }
	done
	if compgen -G "$DELTAS/.*tmp*" >/dev/null; then
		echo "    temp files left: $(ls -a "$DELTAS" | grep tmp)"
		bad_one=1
	fi
	"$CLI" plan --detailed-exitcode "$SPEC" >/dev/null 2>&1 || { echo "    plan is not empty"; bad_one=1; }
	if [[ $bad_one -eq 0 ]]; then ok "$name"; else bad "$name"; fi
}

echo "== setup: base image and store in $T"
bash "$ROOT/scripts/libvirt-up.sh" >/dev/null 2>&1 || { echo "libvirt is not available"; echo "0 passed, 1 failed"; exit 1; }
truncate -s 32M "$T/base.raw"
printf 'VDIPOOL-BASE itbase\n' | dd of="$T/base.raw" conv=notrunc status=none
expect "import the base" 0 "imported itbase@1" -- "$CLI" --root "$T/store" base import itbase "$T/base.raw" --version 1
BASE_IMG=$T/store/bases/itbase/1/disk.qcow2
base_sum=$(sha256sum "$BASE_IMG" | cut -d' ' -f1)

echo "== a 20-clone pool"
spec 20
expect "plan shows 20 creates" 4 "20 to create" -- "$CLI" plan --detailed-exitcode "$SPEC"
expect "plan json" 0 '"create":20' -- "$CLI" plan -o json "$SPEC"
expect "apply 20" 0 "Applied 20 clones" -- "$CLI" apply "$SPEC"
check "20 domains defined" test "$(domains)" -eq 20
check "20 deltas" test "$(deltas)" -eq 20
meta_ok=1 back_ok=1
for i in $(seq -w 1 20); do
	# (no `| grep -q` under pipefail: grep's early exit would fail the pipe)
	md=$(virsh metadata "$POOL-$i" urn:vdipool:1 2>&1)
	[[ "$md" == *"pool=\"$POOL\" index=\"$((10#$i))\""* ]] || { meta_ok=0; echo "    $POOL-$i: $md"; }
	info=$(qemu-img info --output=json "$DELTAS/$POOL-$i.qcow2")
	[[ "$info" == *"\"backing-filename\": \"$BASE_IMG\""* && "$info" == *'"backing-filename-format": "qcow2"'* &&
		"$info" == *'"extended-l2": true'* && "$info" == *'"cluster-size": 131072'* ]] || back_ok=0
done
check "every domain carries vdipool metadata with its pool and index" test $meta_ok -eq 1
check "every delta backs onto the base with the backing format set" test $back_ok -eq 1
check "qemu-img check of a delta is clean" qemu-img check -q "$DELTAS/$POOL-07.qcow2"
check "domain disk points at its delta" bash -c "virsh dumpxml $POOL-07 | grep -q \"source file='$DELTAS/$POOL-07.qcow2'\""
expect "re-apply is a no-op" 0 "nothing to do" -- "$CLI" apply "$SPEC"
expect "plan after apply is empty" 0 "No changes" -- "$CLI" plan --detailed-exitcode "$SPEC"
expect "status table" 0 "20 wanted; 0 running, 20 shut off, 0 missing" -- "$CLI" status "$SPEC"
expect "status json" 0 '"chain_depth":2' -- "$CLI" status -o json "$SPEC"

echo "== scale 20 -> 25 -> 10"
spec 25
expect "scale up plan" 4 "5 to create, 0 to repair, 0 to update, 0 to rebase, 0 to start, 0 to stop, 0 to remove, 20 unchanged" -- "$CLI" plan --detailed-exitcode "$SPEC"
expect "scale up" 0 "Applied 5 clones" -- "$CLI" apply "$SPEC"
check "25 domains" test "$(domains)" -eq 25
spec 10
expect "scale down plan removes the highest first" 4 "  - $POOL-25" -- "$CLI" plan --detailed-exitcode "$SPEC"
expect "scale down" 0 "Applied 15 clones" -- "$CLI" apply "$SPEC"
check "10 domains" test "$(domains)" -eq 10
check "10 deltas" test "$(deltas)" -eq 10
check "the remaining are 01..10" bash -c "virsh -q list --all --name | grep '^$POOL-' | sort | tr '\n' ' ' | grep -qx '$(printf "$POOL-%02d " $(seq 1 10))'"
consistent "consistent after scaling"

echo "== a foreign domain with a clashing name is refused"
cat >"$T/foreign.xml" <<EOF
<domain type='qemu'><name>$POOL-11</name><memory unit='MiB'>32</memory>
<os><type arch='x86_64' machine='pc'>hvm</type></os></domain>
EOF
virsh -q define "$T/foreign.xml" >/dev/null
spec 12
expect "apply refuses" 1 "domain '$POOL-11' exists and is not managed by vdipool" -- "$CLI" apply "$SPEC"
check "nothing was created" test "$(deltas)" -eq 10
check "the foreign domain is untouched" bash -c "virsh dumpxml $POOL-11 | grep -q \"<memory unit='KiB'>32768</memory>\" && ! virsh dumpxml $POOL-11 | grep -q vdipool"
virsh -q undefine "$POOL-11" >/dev/null

echo "== kill -9 at five points, then apply converges"
crash() { # crash NAME COUNT POINT
	spec "$2"
	# One worker: the crash point is then reached before the rest of the work.
	VDIPOOL_TEST_CRASH_AT=$3 "$CLI" apply -q --parallel 1 "$SPEC" >/dev/null 2>&1
	local rc=$?
	check "$1: apply was killed (exit $rc)" test $rc -eq 137
	expect "$1: next apply converges" 0 "Applied" -- "$CLI" apply "$SPEC"
	consistent "$1: no orphan file, no domain on a missing disk"
	check "$1: $2 domains" test "$(domains)" -eq "$2"
}
crash "after a delta, before its domain" 15 "after:create delta:3"
crash "before a define" 18 "before:define:2"
crash "after a define" 24 "after:define:1"
crash "after an undefine, before the delta goes" 12 "after:undefine:2"
# A writer killed mid-image leaves a temp file: simulate its corpse, then crash before the rename.
: >"$DELTAS/.$POOL-13.qcow2.tmp.999999999.0"
crash "with a dead writer's temp file" 14 "before:create delta:2"

echo "== a second apply on the same pool waits or fails clearly"
spec 16
VDIPOOL_TEST_PAUSE_AT="before:create delta:1:4" "$CLI" apply -q --parallel 1 "$SPEC" >"$T/first.log" 2>&1 &
first=$!
sleep 1.5
expect "a concurrent apply fails while the first holds the lock" 1 "pool '$POOL' is being changed by another vdipool" -- "$CLI" apply "$SPEC"
expect "with --wait it waits, then finds nothing to do" 0 "nothing to do" -- "$CLI" apply --wait "$SPEC"
wait $first
check "the first apply succeeded" test $? -eq 0
check "16 domains" test "$(domains)" -eq 16

echo "== reset gives a fresh delta, identity kept"
uuid_before=$(virsh domuuid "$POOL-03")
qemu-io -c 'write -P 0x5a 0 64k' "$DELTAS/$POOL-03.qcow2" >/dev/null
used_before=$(qemu-img map --output=json "$DELTAS/$POOL-03.qcow2" | grep -c '"data": true, "offset"')
expect "reset" 0 "Reset 1 clone" -- "$CLI" reset "$SPEC" "$POOL-03"
check "the written data is gone" bash -c "qemu-io -c 'read -P 0 0 64k' '$DELTAS/$POOL-03.qcow2' | grep -q 'read 65536'"
check "same UUID" test "$(virsh domuuid "$POOL-03")" == "$uuid_before"
check "the write had landed in the delta before the reset" test "$used_before" -ge 1
expect "reset of a stranger" 2 "'nope-1' is not a clone of pool '$POOL'" -- "$CLI" reset "$SPEC" nope-1

echo "== started clones"
spec 2 true
expect "apply with start: true" 0 "Applied" -- "$CLI" apply "$SPEC"
expect "both run" 0 "2 wanted; 2 running" -- "$CLI" status "$SPEC"
expect "re-apply keeps them running" 0 "nothing to do" -- "$CLI" apply "$SPEC"
spec 2 false
expect "start: false stops them" 0 "Applied 2 clones" -- "$CLI" apply "$SPEC"
expect "both stopped" 0 "2 wanted; 0 running, 2 shut off" -- "$CLI" status "$SPEC"

echo "== gc removes a delta no domain uses, and only that"
virsh -q undefine "$POOL-02" >/dev/null
expect "gc lists the orphan" 0 "$DELTAS/$POOL-02.qcow2" -- "$CLI" --root "$T/store" gc
check "gc without --yes removed nothing" test -f "$DELTAS/$POOL-02.qcow2"
expect "gc --yes" 0 "removed 1" -- "$CLI" --root "$T/store" gc --yes
check "the orphan is gone" test ! -e "$DELTAS/$POOL-02.qcow2"
check "the delta in use is kept" test -f "$DELTAS/$POOL-01.qcow2"
expect "apply repairs the pool" 0 "Applied 1 clone" -- "$CLI" apply "$SPEC"

echo "== destroy"
expect "destroy without --yes removes nothing" 2 "pass --yes" -- "$CLI" destroy "$SPEC"
check "still 2 domains" test "$(domains)" -eq 2
expect "destroy" 0 "Destroyed 2 clones" -- "$CLI" destroy --yes "$SPEC"
check "no domain of the pool left" test "$(domains)" -eq 0
check "no delta directory left" test ! -e "$DELTAS"
check "the base is kept and unchanged" test "$(sha256sum "$BASE_IMG" | cut -d' ' -f1)" == "$base_sum"
expect "destroy again is a no-op" 0 "nothing to destroy" -- "$CLI" destroy --yes "$SPEC"

finish
