#!/usr/bin/env bash
# test_fleet_rebalance.sh: a host added to a pool gets only new clones; `vdipool rebalance` moves
# clones to it when asked: shown first, then carried out in waves; each moved clone keeps its
# UUID, MAC and the bytes of its persistent data disk (copied through SFTP and checked by
# SHA-256 on the new host), gets a fresh delta on a base pushed to the new host, and its old
# host keeps nothing of it. A move cut after the old host let go of the clone is finished by the
# next apply, which copies the data disk before making the clone (never an empty one).
# Hosts are scripts/test-hosts-up.sh's (see test_fleet.sh).
set -uo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[[ $(id -u) -eq 0 ]] || { skip "test_fleet_rebalance needs root (users, namespaces)"; finish; }

GUEST=${VP_GUEST_DIR:-$BUILD/guest}
POOL=rb$$
T=$(mktemp -d /var/tmp/vp-rebalance-XXXXXX)
chmod 755 "$T"
export VP_TEST_HOSTS_DIR=$T/hosts VP_TEST_HOSTS_PORT=${VP_REBALANCE_PORT:-22700} VP_TEST_HOSTS_USER=vprb
RUN=$VP_TEST_HOSTS_DIR
SPEC=$T/pool.yaml
CTL=$T/ctl
mkdir -p "$CTL"

ctl() {
	unshare -m --propagation private sh -c 'mount --bind "$1" /var/lib/vdipool && shift && exec "$@"' \
		_ "$CTL" "$CLI" "$@"
}
cleanup() {
	ctl destroy -q --yes --purge-data "$SPEC" >/dev/null 2>&1
	bash "$ROOT/scripts/test-hosts-down.sh" >/dev/null 2>&1
	rm -rf "$T"
}
trap cleanup EXIT

bash "$ROOT/scripts/build-guest-image.sh" "$GUEST" >/dev/null 2>&1 || { bad "the guest image builds"; finish; }
bash "$ROOT/scripts/test-hosts-up.sh" 3 >"$T/hosts-up.log" 2>&1 || { bad "three test hosts come up"; tail -20 "$T/hosts-up.log"; finish; }
mapfile -t HOSTS <"$RUN/hosts"

spec() { # spec NHOSTS
	{
		cat <<YAML
pool: { name: $POOL }
base: { name: tiny }
storage:
  tiers: [ { name: local, driver: dir, path: /var/lib/vdipool/t } ]
clones: { count: 6, name: "$POOL-{index}" }
data_disk: { size: 16M }
domain: { template: server, memory: 128M, vcpus: 1, network: none, start: false, accel: tcg }
rollout: { max_unavailable: 2 }
hosts:
YAML
		for ((n = 1; n <= $1; n++)); do
			read -r _ user port _ uri <<<"${HOSTS[$((n - 1))]}"
			cat <<YAML
  - name: h$n
    uri: "$uri"
    ssh: { user: $user, port: $port, host: 127.0.0.1, identity: $RUN/id_ed25519, known_hosts: $RUN/known_hosts }
YAML
		done
	} >"$SPEC"
}
store() { echo "$RUN/host$1/store/t"; }
clones_on() { ls "$(store "$1")/deltas/$POOL" 2>/dev/null | grep -c '\.qcow2$'; }
uri_of() { read -r _ _ _ _ u <<<"${HOSTS[$(($1 - 1))]}"; echo "$u"; }

ctl --root /var/lib/vdipool/t base import tiny "$GUEST/tiny.raw" --version 1 >/dev/null || { bad "import"; finish; }
spec 2
expect "apply on two hosts" 0 "Applied 6 clones" -- ctl apply "$SPEC"
check "3 clones on each of h1, h2" test "$(clones_on 1) $(clones_on 2)" == "3 3"
# Each clone's data disk gets its own bytes, to recognise after the move.
declare -A UUID
for n in 1 2; do
	for d in "$(store "$n")/data/$POOL"/*.qcow2; do
		c=$(basename "$d" .qcow2)
		qemu-io -c "write -P 0x$((${c##*-} + 16)) 0 1M" "$d" >/dev/null
		UUID[$c]=$(virsh -c "$(uri_of "$n")" domuuid "$c" 2>/dev/null)
	done
done

spec 3
out=$(ctl plan "$SPEC" 2>&1)
check "adding h3 changes nothing: clones stay where they are" grep -q "No changes" <<<"$out"
check "plan shows h3 with no clones" grep -q "^Host h3 (.*): 0 clones" <<<"$out"
expect "rebalance shows two moves to h3 and moves nothing" 4 "2 moves" -- ctl rebalance "$SPEC"
check "nothing moved without --yes" test "$(clones_on 3)" == 0
expect "rebalance --yes moves them" 0 "Moved 2 clones" -- ctl rebalance --yes "$SPEC"
check "2 clones on each host now" test "$(clones_on 1) $(clones_on 2) $(clones_on 3)" == "2 2 2"
check "h3 received the base" test -e "$(store 3)/bases/tiny/1/disk.qcow2"
for d in "$(store 3)/data/$POOL"/*.qcow2; do
	c=$(basename "$d" .qcow2)
	check "$c kept its data disk's bytes" bash -c "qemu-io -r -c 'read -P 0x$((${c##*-} + 16)) 0 1M' '$d' | grep -q 'read 1048576'"
	check "$c kept its UUID" test "$(virsh -c "$(uri_of 3)" domuuid "$c")" == "${UUID[$c]}"
	check "$c is gone from its old host, data disk included" \
		test ! -e "$(store 1)/data/$POOL/$c.qcow2" -a ! -e "$(store 2)/data/$POOL/$c.qcow2" -a ! -e "$(store 1)/deltas/$POOL/$c.qcow2" -a ! -e "$(store 2)/deltas/$POOL/$c.qcow2"
done
expect "then the pool is balanced" 0 "nothing to move" -- ctl rebalance "$SPEC"
expect "and apply has nothing to do" 0 "nothing to do" -- ctl apply "$SPEC"

echo "== a move cut after the old host let go: the next apply copies the data, then makes the clone"
# Cut by hand where a kill would: the record says the clone moves h1 -> h2, h1 no longer has it.
victim=$(ls "$(store 1)/deltas/$POOL" | sed -n '1s/\.qcow2$//p')
idx=${victim##*-}
qemu-io -c "write -P 0x77 0 1M" "$(store 1)/data/$POOL/$victim.qcow2" >/dev/null
virsh -c "$(uri_of 1)" undefine "$victim" >/dev/null
rm -f "$(store 1)/deltas/$POOL/$victim.qcow2"
sed -i "s/^$victim $idx h1\$/$victim $idx h2 from=h1/" "$CTL/t/placement/$POOL.hosts"
check "the record says the move is under way" grep -q "^$victim $idx h2 from=h1" "$CTL/t/placement/$POOL.hosts"
expect "apply finishes the move" 0 "Applied" -- ctl apply "$SPEC"
check "$victim is on h2 with the data it had on h1" \
	bash -c "qemu-io -r -c 'read -P 0x77 0 1M' '$(store 2)/data/$POOL/$victim.qcow2' | grep -q 'read 1048576'"
check "its old data disk is gone from h1" test ! -e "$(store 1)/data/$POOL/$victim.qcow2"
check "the record is settled" grep -q "^$victim $idx h2\$" "$CTL/t/placement/$POOL.hosts"
expect "destroy --purge-data" 0 "Destroyed" -- ctl destroy --yes --purge-data "$SPEC"
finish
