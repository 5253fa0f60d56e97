#!/usr/bin/env bash
# test_ready.sh: `apply --wait ready` with real guests on libvirt's `default` network: two clones get
# DHCP leases, the readiness command sees each clone's name and address, `status -o json` shows the
# address the guest itself printed (VDIPOOL-ADDR), its base and since when it runs; a failing check
# is named with its output at the timeout; a pool with `network: none` is refused before anything.
set -uo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# POOL, T, SPEC, tiny@1 in $T/store, the pool destroyed on exit (lib.sh)
guest_setup rdy

# spec NETWORK [READINESS-COMMAND]
spec() {
	cat >"$SPEC" <<EOS
pool: { name: $POOL }
base: { name: tiny }
storage:
  tiers: [ { name: local, driver: dir, path: $T/store } ]
clones: { count: 2, name: "$POOL-{index}" }
domain: { template: server, memory: 256M, network: $1 }
rollout: { shutdown_timeout: 30s }
EOS
	if [[ -n ${2:-} ]]; then
		printf 'readiness:\n  command: %s\n  timeout: 10s\n' "$2" >>"$SPEC"
	fi
}

if ! grep -q '^Active: *yes' <<<"$(virsh -q net-info default 2>/dev/null)"; then
	bad "libvirt's network 'default' is active (scripts/libvirt-up.sh defines and starts it)"
	finish
fi

echo "== network none: --wait ready is refused before anything changes"
spec none
expect "apply --wait ready on network: none exits 2 with the reason" 2 "domain.network: none" -- \
	"$CLI" apply --wait ready "$SPEC"
check "nothing was made" test -z "$(virsh list --all --name | grep "^$POOL-")"

echo "== two clones on 'default' become ready"
spec default "'echo \"\$VDIPOOL_CLONE \$VDIPOOL_ADDRESS\" >> $T/checked'"
out=$("$CLI" apply -v --wait ready --timeout 4m "$SPEC" 2>&1)
rc=$?
check "apply --wait ready exits 0" test "$rc" -eq 0
check "it says both are ready" grep -q "Ready: 2 of 2 clones" <<<"$out"
check "-v names each clone as it becomes ready" test "$(grep -c "^ready: $POOL-[12] on local at 192\.168\.122\." <<<"$out")" -eq 2
[[ $rc -eq 0 ]] || printf '%s\n' "$out" | tail -20 | sed 's/^/    /'

json=$("$CLI" status -o json "$SPEC")
check "status -o json parses" json_check 'len(d["clones"]) == 2' "$json"
for i in 0 1; do
	c=$POOL-$((i + 1))
	addr=$(python3 -c 'import json, sys; print(json.loads(sys.argv[1])["clones"][int(sys.argv[2])]["addresses"][0])' "$json" $i 2>/dev/null)
	check "$c: state running" json_check "d['clones'][$i]['name'] == '$c' and d['clones'][$i]['state'] == 'running'" "$json"
	check "$c: an address in 192.168.122.0/24 ($addr)" grep -Eq '^192\.168\.122\.[0-9]+$' <<<"$addr"
	# the guest may print its lease a moment after libvirt knows it
	for _ in $(seq 20); do [[ -n $(guest_addr "$c") ]] && break; sleep 0.5; done
	check "$c: the address is the one the guest printed (VDIPOOL-ADDR: $(guest_addr "$c"))" \
		test "$addr" == "$(guest_addr "$c")"
	check "$c: base tiny@1" json_check "d['clones'][$i]['base'] == 'tiny@1'" "$json"
	check "$c: since is ISO 8601" json_check "__import__('re').match(r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$', d['clones'][$i]['since'] or '')" "$json"
	check "$c: ready" json_check "d['clones'][$i]['ready'] is True and d['clones'][$i]['ready_why'] is None" "$json"
	check "$c: the readiness command got its name and address" grep -qx "$c $addr" "$T/checked"
done
out=$("$CLI" status "$SPEC")
check "the status table is unchanged (no new columns)" grep -q "^CLONE  *HOST  *STATE  *BASE  *DELTA  *DEPTH$" <<<"$out"

echo "== an apply with nothing to do still waits (and is ready at once)"
expect "second apply --wait ready: nothing to do, ready" 0 "Ready: 2 of 2" -- \
	"$CLI" apply --wait=ready --timeout 1m "$SPEC"

echo "== a readiness check that fails: exit 1 at the timeout, naming the clones and the output"
spec default "'echo \"port 22 closed on \$VDIPOOL_ADDRESS\" >&2; exit 3'"
out=$("$CLI" apply --wait ready --timeout 6s "$SPEC" 2>&1)
rc=$?
check "apply --wait ready exits 1" test "$rc" -eq 1
check "it names $POOL-1, the check and its output" grep -q "$POOL-1: check failed: port 22 closed on 192\.168\.122\." <<<"$out"
check "it names $POOL-2 too" grep -q "$POOL-2: check failed" <<<"$out"
check "it says how many after how long" grep -q "2 of 2 clones not ready after 6s" <<<"$out"
[[ $rc -eq 1 ]] || printf '%s\n' "$out" | tail -20 | sed 's/^/    /'
json=$("$CLI" status -o json "$SPEC")
check "status -o json: not ready, with the check's output" \
	json_check "d['clones'][0]['ready'] is False and 'port 22 closed' in d['clones'][0]['ready_why']" "$json"

echo "== a clone that is shut off is named as not running"
virsh -q destroy "$POOL-2" >/dev/null 2>&1
spec default
out=$("$CLI" status -o json "$SPEC")
check "status: the shut off clone has no address, no since, not ready" \
	json_check "d['clones'][1]['state'] == 'shut off' and d['clones'][1]['addresses'] == [] and d['clones'][1]['since'] is None and d['clones'][1]['ready'] is False" "$out"

check "destroy" "$CLI" destroy -q --yes "$SPEC"
check "no domain of the pool is left" test -z "$(virsh list --all --name | grep "^$POOL-")"
finish
