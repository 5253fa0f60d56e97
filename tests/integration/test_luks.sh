#!/usr/bin/env bash
# test_luks.sh: delta.encrypt: luks with real qemu-img, libvirtd and a TCG guest: a bad value is
# refused at its file:line:col; an encrypted clone's delta and data disk are LUKS qcow2 that
# qemu-img cannot read without their key; each key sits in a private libvirt secret named by the
# disk's LUKS UUID; the guest boots from the encrypted delta; the key is on no command line and in
# no file; reset and a rollout give a new key and drop the old secret; a delta whose key is lost
# is made again; destroy drops the delta's secret and
# keeps the kept data disk's, gc drops it once the disk is gone.
set -uo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# POOL, T, SPEC, tiny@1 in $T/store; on exit the pool is destroyed with its data disk, then
# cleanup_hook drops the disks' secrets (lib.sh)
guest_setup luks --purge-data
C=$POOL-1
DELTA=$T/store/deltas/$POOL/$C.qcow2
DATA=$T/store/data/$POOL/$C.qcow2

# secret_of PATH: the UUID of the libvirt secret whose usage is that volume ("" none).
secret_of() {
	virsh -q secret-list 2>/dev/null | awk -v p="$1" '$2 == "volume" && $3 == p { print $1 }'
}

cleanup_hook() {
	local p u
	for p in "${DELTA:-}" "${DATA:-}"; do # (not set yet if guest_setup failed)
		u=$(secret_of "$p")
		[[ -n $u ]] && virsh secret-undefine "$u" >/dev/null 2>&1
	done
}

# spec ENCRYPT [EXTRA-LINE]
spec() {
	cat >"$SPEC" <<EOS
pool: { name: $POOL }
base: { name: tiny }
storage:
  tiers: [ { name: local, driver: dir, path: $T/store } ]
clones: { count: 1, name: "$POOL-{index}" }
delta:
  encrypt: $1
data_disk: { size: 16M }
domain: { template: server, memory: 256M, network: none, accel: tcg }
rollout: { shutdown_timeout: 5s }
${2:-}
EOS
}

echo "== a bad value and impossible mixes are refused at their place"
spec lucks
expect "encrypt: lucks exits 2 at file:line:col" 2 "pool.yaml:7:12: delta.encrypt: must be 'none' or 'luks', got 'lucks'" -- \
	"$CLI" validate "$SPEC"
spec luks
sed -i "s/^clones: .*/clones: { count: 1, name: \"$POOL-{index}\", mode: full }/" "$SPEC"
expect "encrypt: luks with clones.mode full is refused" 2 "delta.encrypt: 'luks' is for linked clones" -- \
	"$CLI" validate "$SPEC"
spec luks
check "encrypt: luks validates" "$CLI" validate -q "$SPEC"

echo "== an encrypted clone: made, booted, its key only in libvirt"
if command -v strace >/dev/null; then
	# execve shows every command line; write shows the key going into its memory file.
	strace -f -qq -s 256 -e trace=execve,memfd_create,write -o "$T/strace" "$CLI" apply -q "$SPEC" >"$T/apply.out" 2>&1
else
	"$CLI" apply -q "$SPEC" >"$T/apply.out" 2>&1
fi
rc=$?
check "apply exits 0" test "$rc" -eq 0
[[ $rc -eq 0 ]] || tail -15 "$T/apply.out" | sed 's/^/    /'
for d in "$DELTA" "$DATA"; do
	info=$(qemu-img info -U "$d" 2>&1)
	check "$(basename "$(dirname "$(dirname "$d")")"): qemu-img info says encrypted, luks" \
		grep -q 'format: luks' <<<"$info"
	check "$(basename "$(dirname "$(dirname "$d")")"): encrypted: yes" grep -q '^encrypted: yes' <<<"$info"
	luuid=$(sed -n 's/^ *uuid: //p' <<<"$info")
	check "$(basename "$(dirname "$(dirname "$d")")"): the libvirt secret of the disk is its LUKS UUID ($luuid)" \
		test -n "$luuid" -a "$(secret_of "$d")" = "$luuid"
	check "$(basename "$(dirname "$(dirname "$d")")"): the domain's disk names that secret" \
		grep -q "secret type='passphrase' uuid='$luuid'" <<<"$(virsh dumpxml "$C")"
	check "$(basename "$(dirname "$(dirname "$d")")"): the secret is private (libvirt never gives its value)" \
		bash -c "! virsh secret-get-value '$luuid' >/dev/null 2>&1"
done
expect "qemu-img cannot read the delta without its key" 2 "key-secret" -- \
	qemu-img compare -U "$DELTA" "$T/store/bases/tiny/1/disk.qcow2"
expect "nor the data disk" 1 "key-secret" -- qemu-img convert -U -O raw "$DATA" "$T/plain.raw"
check "the guest boots from its encrypted delta (QEMU opens it with the secret libvirt holds)" wait_ready "$C" 1
check "the guest wrote to its encrypted delta" grep -aq "^VDIPOOL-WROTE: VDIPOOL-CLONE $C" "$LOGDIR/$C-serial.log"

if [[ -f $T/strace ]]; then
	keys=$(grep -E 'write\([0-9]+, "[A-Za-z0-9+/]{43}=", 44' "$T/strace" | sed -E 's/.*"(.{44})".*/\1/' | sort -u)
	check "strace saw the 2 keys go into memory files" test "$(wc -l <<<"$keys")" -eq 2 -a -n "$keys"
	# One line per PATH entry execvp tried; the argv (with its temporary's name) tells the runs apart.
	creates=$(grep -o '\["qemu-img", "create"[^]]*\]' "$T/strace" | grep 'encrypt.format=luks' | sort -u)
	check "2 qemu-img create with encrypt.format=luks ran" test "$(grep -c . <<<"$creates")" -eq 2
	check "each got its key as secret,file=/proc/self/fd/N" \
		test "$(grep -c '"secret,id=vpsec0,file=/proc/self/fd/[0-9]*"' <<<"$creates")" -eq 2
	check "no command line carries data= or a key" \
		bash -c "! grep 'execve(' '$T/strace' | grep -qF -e 'data=' $(printf -- "-e %q " $keys)"
	check "no file under the tier holds a key in clear" \
		bash -c "! grep -rqsF $(printf -- "-e %q " $keys) '$T/store'"
else
	skip "strace is not installed: the key's path (command lines, files) is not traced"
fi
check "no temporary is left beside the disks" test -z "$(find "$T/store/deltas" "$T/store/data" -name '.*tmp*')"

echo "== reset: a new key, the old secret gone"
old=$(secret_of "$DELTA")
check "reset exits 0" "$CLI" reset -q "$SPEC" "$C"
new=$(secret_of "$DELTA")
check "the delta has a new secret" test -n "$new" -a "$new" != "$old"
check "the old secret is gone" bash -c "! virsh secret-dumpxml '$old' >/dev/null 2>&1"
check "the new LUKS UUID is the new secret" grep -q "uuid: $new" <<<"$(qemu-img info -U "$DELTA")"
check "the reset guest boots again" wait_ready "$C" 2

echo "== a rollout to a new base version: a new encrypted delta, a new key"
"$CLI" --root "$T/store" base import tiny "$GUEST/tiny.raw" --version 2 >/dev/null
old=$(secret_of "$DELTA")
data_sec=$(secret_of "$DATA")
check "apply rolls the clone to tiny@2" "$CLI" apply -q "$SPEC"
info=$(qemu-img info -U "$DELTA" 2>&1)
check "the delta backs onto tiny@2" grep -q "backing file: .*/bases/tiny/2/" <<<"$info"
check "and is encrypted" grep -q 'format: luks' <<<"$info"
new=$(secret_of "$DELTA")
check "with a new secret, the old one gone" \
	bash -c "[[ -n '$new' && '$new' != '$old' ]] && ! virsh secret-dumpxml '$old' >/dev/null 2>&1"
check "the data disk keeps its key" test "$(secret_of "$DATA")" = "$data_sec"
check "the rolled guest boots again" wait_ready "$C" 3

echo "== a delta whose key libvirt lost (a kill between its rename and its secret) is made again"
lost=$(secret_of "$DELTA")
virsh secret-undefine "$lost" >/dev/null
expect "plan shows the clone's delta to be made again" 4 "$C" -- "$CLI" plan --detailed-exitcode "$SPEC"
check "apply exits 0" "$CLI" apply -q "$SPEC"
new=$(secret_of "$DELTA")
check "the delta has a secret again, a new one" test -n "$new" -a "$new" != "$lost"
check "it is the delta's LUKS UUID" grep -q "uuid: $new" <<<"$(qemu-img info -U "$DELTA")"
check "the guest boots from the new delta" wait_ready "$C" 4

echo "== detach and snapshots of an encrypted clone are refused, nothing changed"
virsh destroy "$C" >/dev/null 2>&1
sum0=$(sha256sum "$DELTA" | cut -c1-64)
expect "detach is refused (exit 3), naming the reason" 3 "encrypted disks (delta.encrypt: luks)" -- \
	"$CLI" detach "$SPEC" "$C"
expect "a snapshot is refused (exit 3), naming the reason" 3 "encrypted disks (delta.encrypt: luks)" -- \
	"$CLI" snapshot "$SPEC" "$C" try
check "the delta is unchanged, no snapshot directory" test "$(sha256sum "$DELTA" | cut -c1-64)" == "$sum0" -a ! -e "${DELTA%.qcow2}.snap"

echo "== destroy: the delta's secret goes; the kept data disk keeps its own until --purge-data"
data_sec=$(secret_of "$DATA")
check "destroy exits 0" "$CLI" destroy -q --yes "$SPEC"
check "no secret for the removed delta" test -z "$(secret_of "$DELTA")"
check "the kept data disk keeps its secret" test -n "$data_sec" -a "$(secret_of "$DATA")" = "$data_sec"
rm -f "$DATA"
out=$("$CLI" --root "$T/store" gc --yes 2>&1)
check "gc --yes removes the secret of a LUKS disk removed by hand" \
	bash -c "[[ -z \"\$(virsh -q secret-list | grep -F '$DATA')\" ]]"
check "and says so" grep -q "removed 1 libvirt secret of LUKS disks that are gone" <<<"$out"
check "destroy --purge-data exits 0" "$CLI" destroy -q --yes --purge-data "$SPEC"
check "no secret of the pool is left" test -z "$(virsh -q secret-list | grep -F "$T/")"

finish
