#!/usr/bin/env bash
# test_pool_update.sh: a definition update of a running clone takes once. The clone keeps running
# (the new definition applies at its next start), and the next plan sees its defined state, not
# the running one: it must not plan the same update again and again. (The blank base boots no OS,
# which ignores ACPI: a short shutdown timeout keeps destroy quick.)
set -uo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

POOL=upd$$
T=$(mktemp -d /var/tmp/vp-update-XXXXXX)
chmod 755 "$T"
SPEC=$T/pool.yaml

cleanup() {
	"$CLI" destroy -q --yes "$SPEC" >/dev/null 2>&1
	rm -rf "$T"
}
trap cleanup EXIT

spec() { # spec MEMORY
	cat >"$SPEC" <<EOF2
pool: { name: $POOL }
base: { name: upd }
storage:
  tiers: [ { name: local, driver: dir, path: $T/store } ]
clones: { count: 2, name: "$POOL-{index}" }
domain: { template: server, memory: $1, network: none, start: true, accel: tcg }
rollout: { shutdown_timeout: 2s }
EOF2
}

qemu-img create -q -f raw "$T/blank.raw" 64M
"$CLI" --root "$T/store" base import upd "$T/blank.raw" --version 1 >/dev/null || { bad "import"; finish; }
spec 64M
check "apply starts two clones" "$CLI" apply -q "$SPEC"
spec 96M
expect "a memory change is a definition update of both" 0 "2 to update" -- "$CLI" plan "$SPEC"
check "apply updates them" "$CLI" apply -q "$SPEC"
for c in "$POOL-1" "$POOL-2"; do
	check "$c keeps running" test "$(virsh -c qemu:///system domstate "$c")" == running
	check "$c is defined with 96 MiB" \
		test "$(virsh -c qemu:///system dumpxml --inactive "$c" | sed -n "s/.*<memory unit='KiB'>\([0-9]*\)<.*/\1/p")" == 98304
done
expect "the next plan has nothing to do (the defined state counts)" 0 "No changes" -- "$CLI" plan "$SPEC"
check "destroy" "$CLI" destroy -q --yes "$SPEC"
finish
