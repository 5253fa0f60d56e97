#!/usr/bin/env bash
# test_claim.sh: claims with real guests on libvirt's `default` network: a claim hands out a ready
# clone with its address and records it in the domain's metadata; spares are refilled; 8 parallel
# claims never share a clone; release resets the clone (a fresh delta, the guest boots from a pristine
# disk) and makes it a spare; an expired claim is released by apply; kill -9 during a claim.
set -uo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# POOL, T, SPEC, tiny@1 in $T/store, the pool destroyed on exit (lib.sh)
guest_setup clm

# spec COUNT SPARES
spec() {
	cat >"$SPEC" <<EOS
pool: { name: $POOL }
base: { name: tiny }
storage:
  tiers: [ { name: local, driver: dir, path: $T/store } ]
clones: { count: $1, spares: $2, name: "$POOL-{index}" }
domain: { template: server, memory: 256M, network: default }
rollout: { shutdown_timeout: 30s }
EOS
}

# json_get, claimed_by (here: of the live definition), domains, fresh_boots and parallel_claims
# are lib.sh's.
# claimed_count: how many of the pool's clones are claimed
claimed_count() {
	local n=0 d
	for d in $(virsh list --all --name | grep "^$POOL-"); do
		[[ -n $(claimed_by "$d") ]] && n=$((n + 1))
	done
	echo $n
}


echo "== a pool of 2 with 1 spare, ready"
spec 2 1
expect "apply --wait ready" 0 "Ready: 2 of 2" -- "$CLI" apply --wait ready --timeout 4m "$SPEC"

echo "== claim hands out a ready clone with its address, recorded in its metadata"
t0=$(date +%s.%N)
json=$("$CLI" claim -o json --for job-1 --ttl 1h --no-refill "$SPEC")
rc=$?
t1=$(date +%s.%N)
check "claim exits 0" test $rc -eq 0
c1=$(json_get name "$json")
a1=$(json_get address "$json")
check "it names a clone of the pool ($c1)" grep -q "^$POOL-[12]$" <<<"$c1"
check "with an address in 192.168.122.0/24 ($a1)" grep -Eq '^192\.168\.122\.[0-9]+$' <<<"$a1"
check "json: claimed_by, claimed_until, base, host" python3 -c '
import json, sys; d = json.loads(sys.argv[1])
assert d["claimed_by"] == "job-1" and d["claimed_until"].endswith("Z") and d["base"] == "tiny@1" and d["host"] == "local", d' "$json"
echo "    claim took $(python3 -c "print(round($t1 - $t0, 2))") s from a running spare"
check "virsh metadata shows the claim by job-1" test "$(claimed_by "$c1")" == job-1
check "the claim is in the persistent definition too" bash -c "virsh dumpxml --inactive $c1 | grep -q 'claim by=\"job-1\"'"
out=$("$CLI" plan "$SPEC")
check "plan: 1 claimed, 2 wanted" grep -q "Claims: 1 claimed (left alone until released), 1 spare kept beside them: 2 clones wanted" <<<"$out"

echo "== a rollout-like change leaves the claimed clone alone"
sed -i 's/memory: 256M/memory: 288M/' "$SPEC"
out=$("$CLI" plan "$SPEC")
check "plan shows the claimed clone as claimed" grep -q "= $c1 *claimed *(claimed: left alone until released)" <<<"$out"
sed -i 's/memory: 288M/memory: 256M/' "$SPEC"

echo "== the second claim refills: a third clone is made in the background"
c2=$("$CLI" -q claim --for job-2 --ttl 1h "$SPEC")
check "claim 2 exits 0 with another clone ($c2)" test -n "$c2" -a "$c2" != "$c1"
for _ in $(seq 60); do (($(domains) >= 3)) && break; sleep 1; done
check "the background apply made a third clone" test "$(domains)" -eq 3
json=$("$CLI" claim -o json --for job-3 --timeout 3m --no-refill "$SPEC")
c3=$(json_get name "$json")
check "claim 3 waits for the new spare to be ready ($c3)" test "$c3" == "$POOL-3"
check "3 claims recorded" test "$(claimed_count)" -eq 3

echo "== release resets the clone to a pristine delta and makes it a spare"
uuid=$(virsh domuuid "$c1")
boots=$(fresh_boots "$c1")
addr_lines() { tr -d '\r' <"$LOGDIR/$1-serial.log" | grep -c '^VDIPOOL-ADDR'; }
n_addr=$(addr_lines "$c1")
t0=$(date +%s.%N)
expect "release CLONE (its spec found through the claim)" 0 "Released 1 clone" -- "$CLI" release "$c1"
t1=$(date +%s.%N)
echo "    release (forced off, fresh delta, defined, started) took $(python3 -c "print(round($t1 - $t0, 2))") s"
check "no claim in its metadata" test -z "$(claimed_by "$c1")"
check "same UUID" test "$(virsh domuuid "$c1")" == "$uuid"
check "it runs again" bash -c "virsh domstate $c1 | grep -q running"
for _ in $(seq 90); do (($(fresh_boots "$c1") > boots)) && break; sleep 1; done
check "it booted from a fresh delta (the marker it wrote is gone)" test "$(fresh_boots "$c1")" -gt "$boots"
# libvirt keeps a domain's DHCP lease after it stops: right after the restart the old address is
# listed before the guest has booted. A claim must wait for a lease of this boot.
cq=$("$CLI" -q claim --for right-after --timeout 2m --no-refill "$SPEC")
t2=$(date +%s.%N)
# dnsmasq grants the lease a moment before the guest prints it on its console: allow 2 s (a
# claim of a leftover lease would come some 6 s before the guest prints anything).
for _ in $(seq 10); do (($(addr_lines "$c1") > n_addr)) && break; sleep 0.2; done
check "a claim right after the release waits for the guest's new lease ($cq)" test "$(addr_lines "$c1")" -gt "$n_addr" -o "$cq" != "$c1"
echo "    cold: release start to a claim of the restarted clone $(python3 -c "print(round($t2 - $t0, 1))") s"
n_addr=$(addr_lines "$c1")
"$CLI" -q release "$SPEC" "$cq" >/dev/null
expect "releasing it again is harmless" 0 "not claimed" -- "$CLI" release "$SPEC" "$c1"
expect "release of a stranger" 2 "" -- "$CLI" release nope-$$

echo "== 8 parallel claims with 1 spare ready: exactly one gets it, none twice"
"$CLI" apply --wait ready --timeout 3m "$SPEC" >/dev/null
for _ in $(seq 90); do (($(addr_lines "$c1") > n_addr)) && break; sleep 1; done # booted again
ok_n=$(parallel_claims 8 5s)
names=$(cat "$T"/par.? | sort)
check "one claim succeeded, 7 exited 1 ($ok_n succeeded)" test "$ok_n" -eq 1 -a "$(grep -l '^1$' "$T"/par.*.rc | wc -l)" -eq 7
check "no clone handed out twice" test "$(sort "$T"/par.? | uniq -d | wc -l)" -eq 0
check "it was the released clone ($names)" test "$names" == "$c1"
check "the losers say why" grep -q "no clone of pool '$POOL' was ready and unclaimed within 5s" "$T/par.1.err" "$T/par.2.err" "$T/par.3.err"
check "3 claims recorded (2 before, the winner), each once" test "$(claimed_count)" -eq 3
by=$(claimed_by "$c1")
check "the metadata names the winner ($by)" test "$(grep -l "$c1" "$T"/par.? | sed 's/.*par\.//')" == "${by#par-}"

echo "== an expired claim is released by apply"
"$CLI" release -q "$SPEC" "$c1" "$c2" >/dev/null
json=$("$CLI" claim -o json --for short --ttl 2s --no-refill "$SPEC")
cs=$(json_get name "$json")
check "claimed with --ttl 2s ($cs)" test "$(claimed_by "$cs")" == short
sleep 3
expect "apply releases it" 0 "releasing $cs: the claim of short expired" -- "$CLI" apply "$SPEC"
check "no claim left on $cs" test -z "$(claimed_by "$cs")"
expect "release --expired with none" 0 "No expired claim" -- "$CLI" release --expired "$SPEC"

echo "== kill -9 during a claim"
"$CLI" apply --wait ready --timeout 3m "$SPEC" >/dev/null
before=$(claimed_count)
VDIPOOL_TEST_CLAIM_CRASH=locked "$CLI" claim --for crash-1 --no-refill "$SPEC" >/dev/null 2>&1
check "killed with the lock held, before the mark (exit 137)" test $? -eq 137
check "nothing was claimed" test "$(claimed_count)" -eq "$before"
VDIPOOL_TEST_CLAIM_CRASH=marked "$CLI" claim --for crash-2 --no-refill "$SPEC" >/dev/null 2>&1
check "killed after the mark (exit 137)" test $? -eq 137
check "the claim it wrote survives (recorded in libvirt, not in the dead process)" test "$(claimed_count)" -eq $((before + 1))
out=$("$CLI" plan "$SPEC")
check "plan counts the dead job's claim: 2 claimed, 3 wanted" grep -q "Claims: 2 claimed .* 3 clones wanted" <<<"$out"
expect "apply makes the spare the crashed claim used up" 0 "Ready: 3 of 3" -- "$CLI" apply --wait ready --timeout 3m "$SPEC"
cn=$("$CLI" -q claim --for after-crash --timeout 2m --no-refill "$SPEC")
check "the next claim gets another clone ($cn), the lock was not left held" test -n "$cn" -a "$(claimed_by "$cn")" == after-crash
check "no clone claimed twice" test "$(claimed_count)" -eq $((before + 2))

echo "== kill -9 of the refill a claim started, then apply repairs"
expect "apply makes a spare again" 0 "Ready:" -- "$CLI" apply --wait ready --timeout 3m "$SPEC"
cr=$("$CLI" -q claim --for refill-kill --timeout 2m "$SPEC")
check "a claim with refill hands out a clone ($cr)" test -n "$cr" -a "$(claimed_by "$cr")" == refill-kill
rpid=
for _ in $(seq 50); do
	rpid=$(pgrep -f -- "-q apply --wait $SPEC" | head -1)
	[[ -n $rpid ]] && break
	sleep 0.1
done
check "the refill runs in the background (pid ${rpid:-none})" test -n "$rpid"
sleep 0.5
[[ -n $rpid ]] && kill -9 "$rpid" 2>/dev/null
for _ in $(seq 50); do kill -0 "$rpid" 2>/dev/null || break; sleep 0.1; done
expect "the next apply repairs what the killed refill left" 0 "Ready:" -- "$CLI" apply --wait ready --timeout 3m "$SPEC"
check "no temporary left in the pool's deltas" test -z "$(find "$T/store" -name '.*.tmp.*' -print -quit)"
check "the claim survived it, and no clone is claimed twice" \
	test "$(claimed_by "$cr")" == refill-kill -a "$(claimed_count)" -eq $((before + 3))

check "destroy takes claimed clones too" "$CLI" destroy -q --yes "$SPEC"
check "no domain of the pool is left" test "$(domains)" -eq 0
finish
