#!/usr/bin/env bash
# test_canary.sh: rollout.canary on the real libvirtd. A rollout to a new version first moves the
# N lowest-index clones that change, as one wave behind the health gate, and stops; with
# canary_pause: manual the rest waits (apply after apply) until `vdipool rollout continue`; with a
# duration, the first apply after it rolls the rest. A canary that fails its gate is retried by
# the next apply and the rest never moves before it passed.
set -uo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

POOL=cn$$
T=$(mktemp -d /var/tmp/vp-canary-XXXXXX)
chmod 755 "$T"
SPEC=$T/pool.yaml
STORE=$T/store

cleanup() {
	"$CLI" destroy -q --yes --purge-data "$SPEC" >/dev/null 2>&1
	rm -rf "$T"
}
trap cleanup EXIT

spec() { # spec VERSION PAUSE [HEALTH]
	cat >"$SPEC" <<YAML
pool: { name: $POOL }
base: { name: gold, version: "$1" }
storage:
  tiers: [ { name: local, driver: dir, path: $STORE } ]
clones: { count: 6, name: "$POOL-{index}" }
domain: { template: server, memory: 64M, network: none, start: false }
rollout:
  max_unavailable: 2
  canary: 2
  canary_pause: $2
YAML
	[[ -n ${3:-} ]] && printf '  health: { command: "%s", timeout: 2s }\n' "$3" >>"$SPEC"
}
backing() { qemu-img info -U --output=json "$STORE/deltas/$POOL/$1.qcow2" | sed -n 's/.*"backing-filename": ".*gold\/\([0-9]*\)\/.*/\1/p'; }
versions() { for i in 1 2 3 4 5 6; do printf '%s' "$(backing "$POOL-$i")"; done; }

bash "$ROOT/scripts/libvirt-up.sh" >/dev/null 2>&1 || { bad "libvirt is up"; finish; }
for v in 1 2 3 4; do
	truncate -s 16M "$T/gold$v.raw"
	printf 'GOLD v%s\n' "$v" | dd of="$T/gold$v.raw" conv=notrunc status=none
	"$CLI" --root "$STORE" base import gold "$T/gold$v.raw" --version "$v" >/dev/null
done

spec 1 manual
expect "apply v1 (no rollout: no canary)" 0 "Applied 6 clones" -- "$CLI" apply "$SPEC"
check "all on v1" test "$(versions)" == 111111

echo "== manual pause"
spec 2 manual
expect "plan announces the canary" 4 "canary: 2 clone(s) roll to gold@2 first ($POOL-1, ...), 4 wait" -- \
	"$CLI" plan --detailed-exitcode "$SPEC"
expect "apply rolls the canary only" 0 "Applied 2 clones" -- "$CLI" apply "$SPEC"
check "the two lowest-index clones are on v2, the rest on v1" test "$(versions)" == 221111
expect "the next apply waits for rollout continue" 0 "nothing to do" -- "$CLI" apply "$SPEC"
expect "plan says what it waits for" 0 "wait for 'vdipool rollout continue'" -- "$CLI" plan "$SPEC"
check "still 2 on v2" test "$(versions)" == 221111
expect "rollout continue rolls the rest in waves" 0 "Rolled 4 clones" -- "$CLI" rollout continue "$SPEC"
check "all on v2" test "$(versions)" == 222222
check "the canary record is gone once the rollout is done" test ! -e "$STORE/placement/$POOL.canary"
expect "rollout continue with no canary waiting exits 1" 1 "no canary is waiting" -- "$CLI" rollout continue "$SPEC"

echo "== a failing canary is retried, the rest never moves"
spec 3 manual "false"
expect "the canary's gate fails" 1 "health gate after wave 1" -- "$CLI" apply "$SPEC"
check "only the first canary clones moved" test "$(versions | cut -c3-)" == 2222
spec 3 manual "true"
expect "the next apply tries the canary again, and it passes" 0 "Applied" -- "$CLI" apply "$SPEC"
check "canary on v3, the rest on v2" test "$(versions)" == 332222

echo "== a timed pause"
"$CLI" rollout continue "$SPEC" >/dev/null
check "v3 everywhere" test "$(versions)" == 333333
spec 4 3s
expect "canary of v4" 0 "Applied 2 clones" -- "$CLI" apply "$SPEC"
expect "within the pause the rest waits" 0 "nothing to do" -- "$CLI" apply "$SPEC"
sleep 4
expect "after the pause apply rolls the rest" 0 "Applied 4 clones" -- "$CLI" apply "$SPEC"
check "all on v4" test "$(versions)" == 444444
finish
