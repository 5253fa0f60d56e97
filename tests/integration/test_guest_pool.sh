#!/usr/bin/env bash
# test_guest_pool.sh: a real guest end to end through vdipool: the tiny golden image is imported,
# `vdipool apply` provisions two linked clones that boot under TCG; each reads the base's marker
# and writes its own; after a restart each sees only its own write; the base is unchanged.
set -uo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# POOL, T, SPEC, tiny@1 in $T/store, the pool destroyed on exit (lib.sh)
guest_setup gp

spec() { # spec START
	cat >"$SPEC" <<EOF
pool: { name: $POOL }
base: { name: tiny }
storage:
  tiers: [ { name: local, driver: dir, path: $T/store } ]
clones: { count: 2, name: "$POOL-{index}" }
data_disk: { size: 16M }
domain: { template: server, memory: 256M, network: none, start: $1 }
rollout: { shutdown_timeout: 60s }
EOF
}

# boot_lines NAME N (the lines of the clone's Nth boot) is lib.sh's.

marker=$(grep -a -o -m1 'VDIPOOL-BASE v[0-9]* [A-Za-z0-9._-]*' "$GUEST/tiny.raw" | head -1)
check "the golden image carries a base marker" test -n "$marker"
BASE_IMG=$T/store/bases/tiny/1/disk.qcow2
base_sum=$(sha256sum "$BASE_IMG" | cut -d' ' -f1)

spec true
check "vdipool apply provisions and starts two clones" "$CLI" apply -q "$SPEC"
for c in "$POOL-1" "$POOL-2"; do
	check "$c boots to READY" wait_ready "$c" 1
	first=$(boot_lines "$c" 1)
	check "$c read the base's marker" grep -q -x "VDIPOOL-BASE-MARKER: $marker" <<<"$first"
	check "$c found no clone marker on its fresh delta" grep -q -x "VDIPOOL-CLONE-MARKER: (none)" <<<"$first"
	check "$c wrote its own marker" grep -q -x "VDIPOOL-WROTE: VDIPOOL-CLONE $c" <<<"$first"
done
out=$("$CLI" status "$SPEC")
check "status shows both running" grep -q "2 wanted; 2 running" <<<"$out"

spec false
check "apply with start: false shuts them down gracefully" "$CLI" apply -q "$SPEC"
for c in "$POOL-1" "$POOL-2"; do
	qemu-io -c "write -P 0x33 0 64k" "$T/store/data/$POOL/$c.qcow2" >/dev/null
done
spec true
check "apply starts them again" "$CLI" apply -q "$SPEC"
for c in "$POOL-1" "$POOL-2"; do
	other=$POOL-1
	[[ $c == "$POOL-1" ]] && other=$POOL-2
	check "$c boots again" wait_ready "$c" 2
	second=$(boot_lines "$c" 2)
	check "$c sees its own marker" grep -q -x "VDIPOOL-CLONE-MARKER: VDIPOOL-CLONE $c" <<<"$second"
	check "$c does not see the other clone's write" bash -c "! grep -q 'VDIPOOL-CLONE $other\$' <<<\"\$1\"" _ "$second"
	check "$c still reads the base's marker" grep -q -x "VDIPOOL-BASE-MARKER: $marker" <<<"$second"
done
echo "== roll the running pool to a new golden image (base: latest)"
bash "$ROOT/scripts/build-guest-image.sh" --marker "VDIPOOL-BASE v2 rollout" "$GUEST-v2" >/dev/null 2>&1 ||
	{ bad "the v2 guest image builds"; finish; }
"$CLI" --root "$T/store" base import tiny "$GUEST-v2/tiny.raw" --version 2 >/dev/null
check "apply rolls both running clones to v2" "$CLI" apply -q "$SPEC"
for c in "$POOL-1" "$POOL-2"; do
	check "$c boots on v2" wait_ready "$c" 3
	third=$(boot_lines "$c" 3)
	check "$c reads v2's marker" grep -q -x "VDIPOOL-BASE-MARKER: VDIPOOL-BASE v2 rollout" <<<"$third"
	check "$c is still itself (SMBIOS serial)" grep -q "VDIPOOL-IDENTITY: id=$c " <<<"$third"
done
spec false
"$CLI" apply -q "$SPEC" >/dev/null 2>&1
for c in "$POOL-1" "$POOL-2"; do
	check "$c's data disk still holds its data" \
		bash -c "qemu-io -r -c 'read -P 0x33 0 64k' '$T/store/data/$POOL/$c.qcow2' | grep -q 'read 65536'"
done
check "the v1 base image is byte-for-byte unchanged" test "$(sha256sum "$BASE_IMG" | cut -d' ' -f1)" == "$base_sum"
check "destroy" "$CLI" destroy -q --yes "$SPEC"
finish
