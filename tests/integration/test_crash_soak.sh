#!/usr/bin/env bash
# test_crash_soak.sh: a seeded, randomized kill -9 soak. apply, rollouts (base v1 <-> v2), rollback,
# reset and gc are killed at random moments (at least VP_SOAK_KILLS times, default 50), each kill
# followed by an apply that must succeed. Afterwards every clone is whole: its domain points at an
# existing delta, `qemu-img check` is clean, the backing chain resolves to a stored base, its data
# disk still holds what was written to it; there is no orphan delta and no leftover temporary
# anywhere in the store; the bases' SHA-256 are unchanged. The seed is printed (VP_SOAK_SEED=N
# replays a run).
set -uo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SEED=${VP_SOAK_SEED:-$(( (RANDOM << 15) | RANDOM ))}
KILLS=${VP_SOAK_KILLS:-50}
POOL=soak$$
N=6
T=$(mktemp -d /var/tmp/vp-soak-XXXXXX)
chmod 755 "$T"
SPEC=$T/pool.yaml
STORE=$T/store
echo "seed: $SEED (replay with VP_SOAK_SEED=$SEED)"
RANDOM=$SEED

cleanup() {
	"$CLI" destroy -q --yes --purge-data "$SPEC" >/dev/null 2>&1
	rm -rf "$T"
}
trap cleanup EXIT

spec() { # spec VERSION
	cat >"$SPEC" <<EOF
pool: { name: $POOL }
base: { name: soakbase, version: "$1" }
storage:
  tiers: [ { name: local, driver: dir, path: $STORE } ]
clones: { count: $N, name: "$POOL-{index}" }
data_disk: { size: 8M }
domain: { template: server, memory: 64M, network: none, start: false, accel: tcg }
rollout: { max_unavailable: 2 }
EOF
}

# Two base versions with different content (raw, 64 MiB, a few written regions).
for v in 1 2; do
	qemu-img create -q -f raw "$T/b$v.raw" 64M
	qemu-io -f raw -c "write -P 0x$v$v 0 1M" -c "write -P 0x5$v 32M 256k" "$T/b$v.raw" >/dev/null
	"$CLI" --root "$STORE" base import soakbase "$T/b$v.raw" --version "$v" >/dev/null || { bad "import v$v"; finish; }
done
declare -A base_sum
for v in 1 2; do base_sum[$v]=$(sha256sum "$STORE/bases/soakbase/$v/disk.qcow2" | cut -d' ' -f1); done

spec 1
check "initial apply" "$CLI" apply -q "$SPEC"
# Each clone's data disk gets its own pattern; it must survive everything below.
for i in $(seq 1 $N); do
	qemu-io -f qcow2 -c "write -P $((0x10 + i)) 0 64k" "$STORE/data/$POOL/$POOL-$i.qcow2" >/dev/null
done

# run_and_kill OP CMD...: starts CMD and kills it with SIGKILL at a random moment within how long
# OP last took to run through (so the kill lands inside it, not after it); returns 1 for a real
# kill, 0 when it had finished first (and then learns its duration).
declare -A took
run_and_kill() {
	local op=$1 t0 span delay pid
	shift
	span=${took[$op]:-150}
	t0=$(date +%s%N)
	"$@" >/dev/null 2>&1 &
	pid=$!
	delay=$((RANDOM % span))
	sleep "$(printf '%d.%03d' $((delay / 1000)) $((delay % 1000)))"
	if kill -9 "$pid" 2>/dev/null; then
		wait "$pid" 2>/dev/null
		return 1
	fi
	wait "$pid" 2>/dev/null
	took[$op]=$(( ($(date +%s%N) - t0) / 1000000 + 1 ))
	return 0
}

kills=0 rounds=0 version=1 repair_failures=0
declare -A ops
while ((kills < KILLS && rounds < KILLS * 6)); do
	rounds=$((rounds + 1))
	case $((RANDOM % 5)) in
	0) op=apply; cmd=("$CLI" apply -q "$SPEC") ;;
	1) op=rollout; version=$((3 - version)); spec "$version"; cmd=("$CLI" apply -q "$SPEC") ;;
	2) op=rollback; cmd=("$CLI" rollback -q "$SPEC") ;;
	3) op=reset; cmd=("$CLI" reset -q "$SPEC" "$POOL-$((RANDOM % N + 1))" "$POOL-$((RANDOM % N + 1))") ;;
	4) op=gc; cmd=("$CLI" --root "$STORE" gc --keep 2 --yes) ;;
	esac
	if ! run_and_kill "$op" "${cmd[@]}"; then
		kills=$((kills + 1))
		ops[$op]=$((${ops[$op]:-0} + 1))
	fi
	# The next apply repairs whatever the kill left.
	if ! out=$("$CLI" apply -q --wait "$SPEC" 2>&1); then
		repair_failures=$((repair_failures + 1))
		echo "    round $rounds ($op): the repairing apply failed: $out" | head -5
	fi
done
echo "   $kills kills in $rounds rounds:$(for k in "${!ops[@]}"; do printf ' %s=%s' "$k" "${ops[$k]}"; done)"
check "at least $KILLS kills were delivered" test "$kills" -ge "$KILLS"
check "every repairing apply succeeded" test "$repair_failures" -eq 0

# A final apply and gc sweep what dead processes left; then everything must be whole. (The first
# apply may finish an interrupted rollback; the second then rolls forward as the spec says.)
"$CLI" apply -q --wait "$SPEC" >/dev/null 2>&1
"$CLI" apply -q --wait "$SPEC" >/dev/null 2>&1
"$CLI" --root "$STORE" gc --keep 2 --yes >/dev/null 2>&1
check "a last apply has nothing left to do" bash -c "'$CLI' plan --detailed-exitcode '$SPEC' >/dev/null"

clones_ok=0
for i in $(seq 1 $N); do
	c=$POOL-$i
	delta=$(virsh -c qemu:///system domblklist "$c" 2>/dev/null | awk '$1 == "vda" { print $2 }')
	data=$(virsh -c qemu:///system domblklist "$c" 2>/dev/null | awk '$1 == "vdb" { print $2 }')
	backing=$(qemu-img info -U --output=json "$delta" 2>/dev/null | sed -n 's/.*"backing-filename": "\([^"]*\)".*/\1/p')
	if [[ -n $delta && -f $delta ]] && qemu-img check -q "$delta" &&
		qemu-img info -U --backing-chain "$delta" >/dev/null 2>&1 &&
		[[ $backing == "$STORE/bases/soakbase/"[12]"/disk.qcow2" ]] &&
		qemu-io -r -f qcow2 -c "read -P $((0x10 + i)) 0 64k" "$data" | grep -q "read 65536"; then
		clones_ok=$((clones_ok + 1))
	else
		echo "    $c: delta '$delta' backing '$backing' data '$data'"
	fi
done
check "all $N clones: domain on an existing delta, check clean, chain to a stored base, data intact" \
	test "$clones_ok" -eq "$N"
deltas=$(find "$STORE/deltas" -type f -name '*.qcow2' ! -name '.*' | wc -l)
check "no orphan delta ($deltas deltas for $N clones)" test "$deltas" -eq "$N"
left=$(find "$STORE" \( -name '.*tmp*' -o -name '.remove-*' -o -name '.import-*' -o -name '*.flatten-*' \) | head -5)
check "no leftover temporary in the store${left:+ (found: $(tr '\n' ' ' <<<"$left"))}" test -z "$left"
for v in 1 2; do
	check "base v$v's SHA-256 unchanged" test "$(sha256sum "$STORE/bases/soakbase/$v/disk.qcow2" | cut -d' ' -f1)" == "${base_sum[$v]}"
done
check "destroy" "$CLI" destroy -q --yes --purge-data "$SPEC"
finish
