#!/usr/bin/env bash
# test_up.sh: ephemeral pools: a bad --ttl and a pool up did not make are refused with nothing
# changed; an up killed before its first start still has its expiry and `down` removes all of it;
# `up -o json` gives the clone with the address its guest printed, warms the base first
# (clones.warm_base: the base resident in the page cache); an expired up pool is torn down by
# `release --expired`; domain.max_parallel_starts bounds the starts in flight (test hook log).
set -uo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# POOL, T, SPEC, tiny@1 in $T/store; on exit the pool is destroyed with its data disks (lib.sh)
guest_setup up --purge-data
REC=$T/store/placement/$POOL.expires

# spec COUNT NETWORK [EXTRA-DOMAIN-KEYS]
spec() {
	cat >"$SPEC" <<EOS
pool: { name: $POOL }
base: { name: tiny }
storage:
  tiers: [ { name: local, driver: dir, path: $T/store } ]
clones: { count: $1, name: "$POOL-{index}", warm_base: true }
data_disk: { size: 16M }
domain: { template: server, memory: 128M, network: $2${3:+, $3} }
rollout: { shutdown_timeout: 10s }
EOS
}

# nothing_left: no domain, delta, data disk or expiry record of the pool
nothing_left() {
	[[ -z $(virsh list --all --name | grep "^$POOL-") ]] &&
		[[ -z $(find "$T/store/deltas" "$T/store/data" -name "$POOL-*" 2>/dev/null) ]] && [[ ! -e $REC ]]
}

BASEIMG=$(find "$T/store/bases/tiny/1" -name 'disk.*' | head -n 1)

echo "== refused, nothing changed (${SECONDS}s)"
spec 1 default
expect "up without --ttl: exit 2" 2 "--ttl is required" -- "$CLI" up "$SPEC"
expect "up --ttl 0: exit 2, names the option and value" 2 "--ttl: expected a duration from 1s to 30 days" -- \
	"$CLI" up --ttl 0 "$SPEC"
expect "up --ttl 2x: exit 2" 2 "got '2x'; nothing was changed" -- "$CLI" up --ttl 2x "$SPEC"
expect "up --ttl 31d-ish (2678400s): exit 2" 2 "1s to 30 days" -- "$CLI" up --ttl 2678400 "$SPEC"
check "nothing was made (no domain, no record)" nothing_left
expect "down of a pool up did not make: exit 2" 2 "was not brought up by vdipool up" -- "$CLI" down "$SPEC"
expect "down --expired of such a pool: left alone, exit 0" 0 "left alone" -- "$CLI" down --expired "$SPEC"

echo "== up killed before its first start: the expiry is there, down removes everything (${SECONDS}s)"
VDIPOOL_TEST_CRASH_AT="before:start:1" "$CLI" up -q --ttl 1h "$SPEC" >/dev/null 2>&1
check "the up was killed (its clone defined, not started)" test -n "$(virsh list --all --name | grep "^$POOL-1$")"
check "the expiry record is there" grep -q '^expires=' "$REC"
expect "down --expired before the expiry: left alone" 0 "left alone" -- "$CLI" down --expired "$SPEC"
check "the clone is still there" test -n "$(virsh list --all --name | grep "^$POOL-1$")"
expect "down: exit 0" 0 "is down" -- "$CLI" down "$SPEC"
check "nothing is left: domain, delta, data disk, record" nothing_left

echo "== up -o json: the clone, its address, the expiry; the base warmed first (${SECONDS}s)"
python3 -c 'import os, sys; fd = os.open(sys.argv[1], os.O_RDONLY); os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)' "$BASEIMG"
t0=$(date +%s)
json=$("$CLI" -v up --ttl 1h --for test-job -o json --timeout 4m "$SPEC" 2>"$T/up.err")
rc=$?
check "up exits 0" test "$rc" -eq 0
[[ $rc -eq 0 ]] || sed 's/^/    /' "$T/up.err" | tail -20
check "stdout is one JSON object" json_check 'd["pool"] == "'"$POOL"'"' "$json"
check "one ready clone, named" json_check 'd["count"] == 1 and d["ready"] == 1 and d["clones"][0]["name"] == "'"$POOL"'-1" and d["clones"][0]["ready"]' "$json"
addr=$(jq -r '.clones[0].address' <<<"$json")
for _ in $(seq 20); do [[ -n $(guest_addr "$POOL-1") ]] && break; sleep 0.5; done
check "its address is the one the guest printed ($addr)" test "$addr" == "$(guest_addr "$POOL-1")"
check "how to reach it: ssh USER@$addr, host local, its URI" json_check 'd["clones"][0]["ssh"] == "ssh USER@'"$addr"'" and d["clones"][0]["host"] == "local" and d["clones"][0]["uri"] == "qemu:///system"' "$json"
check "expires about an hour from now" json_check "abs(d['expires_epoch'] - $t0 - 3600) < 120 and d['ttl_seconds'] == 3600" "$json"
check "the down command names the spec" json_check 'd["down"] == "vdipool down '"$SPEC"'"' "$json"
check "the record says who and which spec" grep -qx "by=test-job" "$REC"
check "status -o json has the pool's expiry" json_check "d['expires'] == '$(jq -r .expires <<<"$json")'" "$("$CLI" status -o json "$SPEC")"
check "-v says the base was warmed" grep -q "warmed the base on local: .* read into the page cache" "$T/up.err"
res=$(fincore -b -n -o RES "$BASEIMG" | tr -d ' ')
alloc=$(($(stat -c %b "$BASEIMG") * 512))
check "the base is resident in the page cache ($res of $alloc allocated bytes)" test "$res" -ge $((alloc * 9 / 10))

echo "== an expired up pool is torn down by release --expired (${SECONDS}s)"
out=$("$CLI" up --ttl 2s "$SPEC" 2>"$T/up.err")
check "up again (table): NAME HOST ADDRESS on stdout" test "$out" == "$POOL-1 local $addr"
check "up again: ready at once, says until when" grep -q "is up until .* (--ttl 2s): 1 of 1 clones ready" "$T/up.err"
check "the expiry moved to 2 s after now" test $(($(sed -n 's/^expires=//p' "$REC") - $(sed -n 's/^created=//p' "$REC"))) -eq 2
sleep 3
expect "release --expired tears it down" 0 "expired at" -- "$CLI" release --expired "$SPEC"
check "nothing is left" nothing_left

echo "== domain.max_parallel_starts: starts in flight at once (${SECONDS}s)"
spec 4 default "max_parallel_starts: 2"
log=$T/starts.log
# the first start keeps its slot 2 s longer, so a second start surely overlaps it
out=$(VDIPOOL_TEST_START_LOG=$log VDIPOOL_TEST_PAUSE_AT="after:start:1:2" "$CLI" up --ttl 10m --no-wait --parallel 4 "$SPEC" 2>"$T/up.err")
check "up (table) with changes: stdout has only the 4 clones, the apply's summary is on stderr" \
	test "$(grep -c "^$POOL-[1-4] local " <<<"$out")" -eq 4 -a "$(wc -l <<<"$out")" -eq 4
check "the apply's summary went to stderr" grep -q "^Applied 4 clones" "$T/up.err"
# the most begins without their end at any moment
max=$(sort -k3 -n "$log" | awk '$1 == "begin" { n++; if (n > m) m = n } $1 == "end" { n-- } END { print m + 0 }')
check "4 starts logged" test "$(grep -c '^begin ' "$log")" -eq 4
check "at most 2 in flight, and 2 reached (max $max)" test "$max" -eq 2
check "down" "$CLI" down -q "$SPEC"
check "nothing is left" nothing_left
finish
