#!/usr/bin/env bash
# test_ops.sh: operating a pool: apply logs each decision to syslog (pool=, clone=, action= fields,
# read back from a syslog socket this test listens on, and from the journal when journald runs),
# --no-syslog and `syslog = off` silence it; apply --textfile writes node_exporter textfiles
# atomically; `status -o prometheus` passes `promtool check metrics`.
set -uo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

POOL=itops$$
T=$(mktemp -d /var/tmp/vp-ops-XXXXXX)
chmod 755 "$T"
SPEC=$T/pool.yaml
listener=""
cleanup() {
	[[ -n $listener ]] && kill "$listener" 2>/dev/null
	for d in $(virsh -q list --all --name 2>/dev/null | grep "^$POOL-"); do
		virsh -q destroy "$d" >/dev/null 2>&1
		virsh -q undefine "$d" >/dev/null 2>&1
	done
	rm -rf "$T"
}
trap cleanup EXIT

cat >"$SPEC" <<EOF
pool:
  name: $POOL
base:
  name: opsbase
storage:
  tiers:
    - name: local
      driver: dir
      path: $T/store
clones:
  count: 3
domain:
  memory: 64M
  network: none
  start: false
EOF
qemu-img create -q -f raw "$T/base.raw" 16M
expect "import the base" 0 "imported opsbase@1" -- "$CLI" --root "$T/store" base import opsbase "$T/base.raw" --version 1

# A syslog socket of our own (what /dev/log is), named in the configuration file.
SOCK=$T/log.sock
python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "ab", 0) as f:
    while True:
        f.write(s.recv(65536) + b"\n")
' "$SOCK" "$T/log.txt" &
listener=$!
for _ in $(seq 50); do [[ -S $SOCK ]] && break; sleep 0.1; done
mkdir -p "$T/textfile"
printf 'syslog_socket = %s\ntextfile_dir = %s\n' "$SOCK" "$T/textfile" >"$T/vdipool.conf"
export VDIPOOL_CONFIG=$T/vdipool.conf

expect "apply" 0 "Applied 3 clones" -- "$CLI" apply "$SPEC"
sleep 0.3
for i in 1 2 3; do
	check "syslog: clone $i's create with its pool, clone and action" \
		grep -qE "^<30>.* vdipool\[[0-9]+\]: pool=$POOL clone=$POOL-$i action=create result=ok" "$T/log.txt"
done
check "syslog: the apply's result" grep -qE "pool=$POOL action=apply result=ok seconds=" "$T/log.txt"

# The textfiles: both written, no temporary left, and valid for promtool.
check "textfile: the apply's metrics" grep -q "^vdipool_last_apply_success{pool=\"$POOL\"} 1$" "$T/textfile/vdipool_${POOL}_apply.prom"
check "textfile: the pool after the apply" grep -q "^vdipool_clones{pool=\"$POOL\",host=\"local\",state=\"shut off\"} 3$" "$T/textfile/vdipool_$POOL.prom"
check "textfile: no temporary left" test "$(ls -A "$T/textfile" | grep -vc '\.prom$')" -eq 0
check "promtool accepts the apply textfile" promtool check metrics <"$T/textfile/vdipool_${POOL}_apply.prom"

lines=$(wc -l <"$T/log.txt")
expect "apply --no-syslog" 0 "nothing to do" -- "$CLI" --no-syslog apply "$SPEC"
printf 'syslog = off\nsyslog_socket = %s\n' "$SOCK" >"$T/off.conf"
expect "destroy with syslog = off" 0 "" -- "$CLI" --config "$T/off.conf" destroy --yes "$SPEC"
sleep 0.3
check "syslog: nothing logged with --no-syslog or syslog = off" test "$(wc -l <"$T/log.txt")" -eq "$lines"
expect "apply again" 0 "Applied 3 clones" -- "$CLI" --no-syslog apply "$SPEC"

# bash completion: clone names come from `vdipool status` of the pool file on the line.
names=$(cd "$T" && PATH=$(dirname "$CLI"):$PATH bash -c 'source "$1"; COMP_WORDS=(vdipool reset "$2" "");
	COMP_CWORD=3; _vdipool; printf "%s\n" "${COMPREPLY[@]}"' _ "$ROOT/dist/bash-completion/vdipool" "$SPEC")
check "completion: clone names of the pool ($(echo $names))" test "$(echo $names)" = "$POOL-1 $POOL-2 $POOL-3"

out=$("$CLI" status -o prometheus "$SPEC")
check "status -o prometheus: clones by host and state" grep -q "^vdipool_clones{pool=\"$POOL\",host=\"local\",state=\"shut off\"} 3$" <<<"$out"
check "status -o prometheus: base versions in use" grep -q "^vdipool_base_clones{pool=\"$POOL\",base=\"opsbase@1\"} 3$" <<<"$out"
check "status -o prometheus: rollout progress" grep -q "^vdipool_rollout_progress_ratio{pool=\"$POOL\"} 1$" <<<"$out"
check "status -o prometheus: bytes per tier" grep -q "^vdipool_bytes{pool=\"$POOL\",host=\"local\",tier=\"local\",kind=\"base\"} [1-9]" <<<"$out"
pt=$(promtool check metrics <<<"$out" 2>&1)
check "promtool check metrics accepts status -o prometheus${pt:+: $pt}" test -z "$pt"
mkdir -p "$T/tf2"
expect "status --textfile" 0 "CLONE" -- "$CLI" status --textfile "$T/tf2" "$SPEC"
check "status --textfile wrote the pool" test -s "$T/tf2/vdipool_$POOL.prom"
expect "status --textfile needs an absolute path" 2 "--textfile: must be an absolute path" -- "$CLI" status --textfile rel "$SPEC"

# The journal, when journald runs here: the same fields through /dev/log.
if [[ -S /run/systemd/journal/dev-log ]] && journalctl -n 1 >/dev/null 2>&1; then
	printf 'syslog_socket = /dev/log\n' >"$T/journal.conf"
	expect "destroy logged to the journal" 0 "" -- "$CLI" --config "$T/journal.conf" destroy --yes "$SPEC"
	sleep 1
	check "journalctl shows the decisions" bash -c "journalctl -t vdipool --since '-2min' | grep -q 'pool=$POOL clone=$POOL-1 action=remove'"
else
	skip "no journald on this machine (no /run/systemd/journal/dev-log): the syslog socket above stands in for it"
fi

echo "test_ops: $pass passed, $fail failed, $skipped skipped"
((fail == 0))
