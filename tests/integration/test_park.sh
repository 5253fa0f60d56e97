#!/usr/bin/env bash
# test_park.sh: parked spares (clones.parked) with real guests: apply boots spares until ready and
# saves them to disk (libvirt managed save); a claim restores one (the managed save exists before,
# is gone after, the guest has its address at once); a parked spare whose saved image is corrupt
# or deleted is never handed out and the next apply rebuilds it (a fresh delta, a cold boot);
# parallel claims never share a parked spare; apply --wait ready does not wait for claimed clones.
set -uo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# POOL, T, SPEC, tiny@1 in $T/store, the pool destroyed on exit (lib.sh)
guest_setup prk
SAVE_DIR=${VP_LIBVIRT_SAVE_DIR:-/var/lib/libvirt/qemu/save}

cat >"$SPEC" <<EOS
pool: { name: $POOL }
base: { name: tiny }
storage:
  tiers: [ { name: local, driver: dir, path: $T/store } ]
clones: { count: 2, spares: 2, parked: 2, name: "$POOL-{index}" }
domain: { template: server, memory: 256M, network: default }
rollout: { shutdown_timeout: 30s }
EOS

# json_get, claimed_by (with --config here: the persistent definition), fresh_boots and
# parallel_claims are lib.sh's.
managed_save() { virsh dominfo "$1" 2>/dev/null | awk -F': *' '/^Managed save/ { print $2 }'; }
save_file() { echo "$SAVE_DIR/$1.save"; }
state() { virsh domstate "$1" 2>/dev/null | head -1; }
status_states() { "$CLI" status -o json "$SPEC" | python3 -c 'import json, sys
print(" ".join(c["name"] + "=" + c["state"] for c in json.load(sys.stdin)["clones"]))'; }
C1=$POOL-1 C2=$POOL-2

echo "== apply boots 2 spares until ready, then parks them (managed save)"
t0=$SECONDS
expect "apply parks both" 0 "Parked: 2 of 2 spares saved to disk" -- "$CLI" apply "$SPEC"
echo "    apply with 2 spares booted and parked: $((SECONDS - t0)) s"
check "both shut off with a managed save" test "$(state "$C1")/$(managed_save "$C1")/$(state "$C2")/$(managed_save "$C2")" \
	== "shut off/yes/shut off/yes"
check "the saved images are in libvirt's save directory" test -s "$(save_file "$C1")" -a -s "$(save_file "$C2")"
check "status -o json: both parked ($(status_states))" test "$(status_states)" == "$C1=parked $C2=parked"
expect "status table counts them" 0 "0 running, 2 parked" -- "$CLI" status "$SPEC"
expect "a second apply keeps them parked (nothing started)" 0 "nothing to do" -- "$CLI" apply "$SPEC"
check "still parked" test "$(managed_save "$C1")/$(managed_save "$C2")" == "yes/yes"
expect "a snapshot of a parked spare is refused (its saved memory belongs to the disk)" 1 "is parked" -- \
	"$CLI" snapshot "$SPEC" "$C1" try
check "  and nothing changed: still parked, no snapshot" test "$(managed_save "$C1")" == yes -a ! -e "$(dirname "$(virsh domblklist "$C1" | awk '$1 == "vda" { print $2 }')")/$C1.snap/try.qcow2"
expect "apply --wait ready does not wait for parked spares" 0 "2 parked" -- "$CLI" apply --wait ready --timeout 20s "$SPEC"

echo "== a corrupt and a deleted saved image: never handed out, rebuilt by the next apply"
size=$(stat -c %s "$(save_file "$C1")")
truncate -s $((size / 2)) "$(save_file "$C1")"
dd if=/dev/urandom of="$(save_file "$C1")" bs=1M count=1 seek=1 conv=notrunc status=none
rm -f "$(save_file "$C2")"
boots1=$(fresh_boots "$C1") boots2=$(fresh_boots "$C2")
out=$("$CLI" claim --for bad --timeout 3s --no-refill "$SPEC" 2>&1)
rc=$?
check "the claim fails (exit 1): no parked spare could be restored" test $rc -eq 1
check "it says so for both" grep -q "parked spare $C1 was not handed out: .*load of migration failed" <<<"$out"
check "  (the deleted one: booted afresh, stopped)" grep -q "parked spare $C2 was not handed out: .*no saved state left" <<<"$out"
check "  (printable text only)" test "$(tr -d '[:print:]\n' <<<"$out" | wc -c)" -eq 0
check "neither is running nor handed out to 'bad'" test "$(state "$C1")/$(state "$C2")/$(claimed_by "$C1" --config)/$(claimed_by "$C2" --config)" \
	== "shut off/shut off/vdipool-rebuild/vdipool-rebuild"
check "no managed save left on either" test "$(managed_save "$C1")/$(managed_save "$C2")" == "no/no" -a ! -e "$(save_file "$C1")"
t0=$SECONDS
expect "apply rebuilds both" 0 "rebuilding $C1: a parked spare whose saved state could not be restored" -- "$CLI" apply "$SPEC"
echo "    rebuild (fresh deltas, cold boots) and park again: $((SECONDS - t0)) s"
check "both booted from a fresh delta" test "$(fresh_boots "$C1")" -gt "$boots1" -a "$(fresh_boots "$C2")" -gt "$boots2"
check "both unclaimed and parked again" test "$(claimed_by "$C1" --config)$(claimed_by "$C2" --config)/$(managed_save "$C1")/$(managed_save "$C2")" == "/yes/yes"

echo "== a claim restores a parked spare: ready with its address, its saved image used once"
t0=$(date +%s.%N)
json=$("$CLI" claim -o json --for job-1 --no-refill "$SPEC")
rc=$?
t1=$(date +%s.%N)
c=$(json_get name "$json")
check "claim exits 0 with a clone ($c)" test $rc -eq 0 -a -n "$c"
echo "    claim from a parked spare: $(python3 -c "print(round($t1 - $t0, 2))") s"
check "json: resumed, an address in 192.168.122.0/24" python3 -c '
import json, sys; d = json.loads(sys.argv[1])
assert d["resumed"] is True and d["address"].startswith("192.168.122."), d' "$json"
check "it runs, restored, not booted ($(virsh domstate --reason "$c"))" test "$(virsh domstate --reason "$c")" == "running (restored)"
check "its managed save is gone (restored once), no file left" test "$(managed_save "$c")" == no -a ! -e "$(save_file "$c")"
check "claimed by job-1, in the persistent and the live definition" test "$(claimed_by "$c" --config)" == job-1 \
	-a "$(virsh metadata "$c" urn:vdipool:1 | grep -c 'by="job-1"')" -eq 1
r=$("$CLI" status -o json "$SPEC" | python3 -c 'import json, sys
print([c["ready"] for c in json.load(sys.stdin)["clones"] if c["name"] == sys.argv[1]][0])' "$c")
check "status: it is ready ($r)" test "$r" == True
other=$C1; [[ $c == "$C1" ]] && other=$C2

echo "== parallel claims with one parked spare left: exactly one gets it"
ok_n=$(parallel_claims 4 4s)
check "one of 4 parallel claims succeeded ($ok_n)" test "$ok_n" -eq 1
check "it got the parked spare ($(cat "$T"/par.?))" test "$(cat "$T"/par.?)" == "$other"
check "claimed once, by the winner" test "$(claimed_by "$other" --config)" == "par-$(grep -l "$other" "$T"/par.? | sed 's/.*par\.//')"
check "restored, no managed save left" test "$(state "$other")/$(managed_save "$other")" == "running/no"

echo "== apply --wait ready does not wait for a claimed clone its holder shut down"
virsh destroy "$c" >/dev/null
sed -i 's/spares: 2, parked: 2/spares: 0, parked: 0/' "$SPEC" # nothing new to boot: 2 clones, both claimed
t0=$SECONDS
out=$("$CLI" apply --wait ready --timeout 60s "$SPEC" 2>&1)
rc=$?
check "apply --wait ready exits 0 ($rc)" test $rc -eq 0
check "it says the claimed clone was not waited for" grep -q "1 claimed and not ready" <<<"$out"
check "the claimed clone was left shut off" test "$(state "$c")" == "shut off"
check "  and it took no wait ($((SECONDS - t0)) s)" test $((SECONDS - t0)) -lt 20

check "destroy takes parked and claimed clones" "$CLI" destroy -q --yes "$SPEC"
check "no domain and no saved image of the pool is left" test "$(virsh list --all --name | grep -c "^$POOL-")" -eq 0 \
	-a "$(ls "$SAVE_DIR" | grep -c "^$POOL-")" -eq 0
finish
