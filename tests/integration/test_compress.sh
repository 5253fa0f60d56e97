#!/usr/bin/env bash
# test_compress.sh: `vdipool base import --compress` with the real qemu-img and libvirtd: the stored image is
# zlib-compressed qcow2 holding the source's content, the manifest says so and its sha256 is the
# stored file's; clones made from it by apply pass qemu-img check and read the source's data.
set -uo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

POOL=cz$$
T=$(mktemp -d /var/tmp/vp-compress-XXXXXX)
chmod 755 "$T"
STORE=$T/store
SPEC=$T/pool.yaml
B=$STORE/bases/gold
hosts_up=
cleanup() {
	[[ -n $hosts_up ]] && bash "$ROOT/scripts/test-hosts-down.sh" >/dev/null 2>&1
	for d in $(virsh -q list --all --name 2>/dev/null | grep "^$POOL-"); do
		virsh -q undefine "$d" >/dev/null 2>&1
	done
	rm -rf "$T"
}
trap cleanup EXIT

# 32 MiB with 4 MiB of program bytes at 0 and 2 MiB more at 20 MiB: compressible, not trivially.
truncate -s 32M "$T/src.raw"
cat /usr/bin/qemu-img /usr/lib/x86_64-linux-gnu/*.so* 2>/dev/null | head -c 4M | dd of="$T/src.raw" conv=notrunc status=none
head -c 2M /usr/bin/qemu-system-x86_64 | dd of="$T/src.raw" bs=1M seek=20 conv=notrunc status=none
sha() { local h; h=$(sed -n 's/^sha256=//p' "$1" 2>/dev/null); echo "${h:-none}"; }

echo "== import"
expect "import --compress" 0 "imported gold@z: qcow2 (zlib-compressed)" -- \
	"$CLI" --root "$STORE" base import gold "$T/src.raw" --version z --compress
expect "import plain" 0 "imported gold@p: qcow2," -- "$CLI" --root "$STORE" base import gold "$T/src.raw" --version p
Z=$B/z/disk.qcow2
expect "every data cluster is compressed" 0 "100.00% compressed clusters" -- qemu-img check "$Z"
expect "the plain one has none" 0 "No errors" -- bash -c "qemu-img check '$B/p/disk.qcow2' | grep -v '[1-9][0-9.]*% compressed'"
expect "zlib compression type" 0 "compression type: zlib" -- qemu-img info "$Z"
expect "same content as the source" 0 "Images are identical" -- qemu-img compare "$T/src.raw" "$Z"
check "fewer bytes stored than the plain import" \
	test "$(stat -c %b "$Z")" -lt "$(stat -c %b "$B/p/disk.qcow2")"
check "manifest: compression=zlib" grep -qx 'compression=zlib' "$B/z/manifest"
check "manifest of the plain one: no compression key" bash -c "[[ -f '$B/p/manifest' ]] && ! grep -q '^compression=' '$B/p/manifest'"
check "manifest sha256 is the stored file's" test "$(sha "$B/z/manifest")" = "$(sha256sum "$Z" | cut -d' ' -f1)"
expect "list -o json says zlib" 0 '"version":"z","format":"qcow2"' -- "$CLI" --root "$STORE" base list gold -o json
expect "list -o json compression" 0 '"compression":"zlib"' -- "$CLI" --root "$STORE" base list gold -o json
expect "verify" 0 "" -- "$CLI" --root "$STORE" base verify gold@z
expect "same content again: nothing to do" 0 "already imported with the same content" -- \
	"$CLI" --root "$STORE" base import gold "$T/src.raw" --version z --compress
expect "--compress with --format raw" 2 "compression needs the qcow2 format" -- \
	"$CLI" --root "$STORE" base import gold "$T/src.raw" --version r --compress --format raw
check "nothing left of the refused import" test ! -e "$B/r"
expect "--compress only with import" 2 "--compress goes with 'base import'" -- \
	"$CLI" --root "$STORE" base verify gold@z --compress

echo "== push sends it as it is"
export VP_TEST_HOSTS_DIR=$T/h VP_TEST_HOSTS_PORT=${VP_COMPRESS_PORT:-22950} VP_TEST_HOSTS_USER=vpcz
if bash "$ROOT/scripts/test-hosts-up.sh" 1 >"$T/up.log" 2>&1; then
	hosts_up=1
	out=$("$CLI" --root "$STORE" base push gold@z --to "vpcz1@127.0.0.1:$((VP_TEST_HOSTS_PORT + 1))" \
		--identity "$T/h/id_ed25519" --known-hosts "$T/h/known_hosts" --compress yes -o json 2>&1)
	check "push: no second deflate on the transport" grep -q 'stored compressed (zlib): sent as it is' <<<"$out"
	check "push: the session was not compressed" grep -q '"compressed":false' <<<"$out"
	sent=$(grep -o '"sent":[0-9]*' <<<"$out" | cut -d: -f2)
	check "push: sent no more than the compressed file's bytes ($sent)" test "${sent:-999999999}" -le "$(stat -c %s "$Z")"
	hz=$T/h/host1/store/bases/gold/z
	check "push: the host's copy has the same sha256 and says zlib" \
		bash -c "grep -qx 'compression=zlib' '$hz/manifest' && [[ \$(sha256sum '$hz/disk.qcow2' | cut -d' ' -f1) == \$(sed -n 's/^sha256=//p' '$B/z/manifest') ]]"
	bash "$ROOT/scripts/test-hosts-down.sh" >/dev/null 2>&1
else
	bad "test host up: $(tail -3 "$T/up.log")"
fi

echo "== clones of a compressed base"
bash "$ROOT/scripts/libvirt-up.sh" >/dev/null 2>&1 || { bad "libvirt is not available"; finish; }
cat >"$SPEC" <<EOF
pool: { name: $POOL }
base: { name: gold, version: z }
storage:
  tiers: [ { name: local, driver: dir, path: $STORE } ]
clones: { count: 3, name: "$POOL-{index}" }
domain: { template: server, memory: 64M, network: none, start: false }
EOF
expect "apply" 0 "Applied 3 clones" -- "$CLI" apply "$SPEC"
for i in 1 2 3; do
	D=$STORE/deltas/$POOL/$POOL-$i.qcow2
	check "clone $i: qemu-img check" qemu-img check -q "$D"
	expect "clone $i: backs onto the compressed base" 0 "backing file: $Z" -- qemu-img info "$D"
	expect "clone $i: reads the source's data" 0 "Images are identical" -- qemu-img compare "$T/src.raw" "$D"
done
D=$STORE/deltas/$POOL/$POOL-2.qcow2
qemu-io -f qcow2 -c 'write -P 0x5a 21M 64k' "$D" >/dev/null
check "a write lands in the clone, over compressed data" \
	bash -c "qemu-io -f qcow2 -r -c 'read -P 0x5a 21M 64k' '$D' | grep -q 'read 65536'"
qemu-img convert -O raw "$D" "$T/c2.raw"
check "around it the base's bytes still read" \
	bash -c "cmp -l '$T/c2.raw' '$T/src.raw' | awk '\$1 <= 22020096 || \$1 > 22085632 { bad++ } END { exit NR == 0 || bad }'"
check "the base is unchanged" test "$(sha "$B/z/manifest")" = "$(sha256sum "$Z" | cut -d' ' -f1)"
expect "destroy" 0 "" -- "$CLI" destroy --yes "$SPEC"

finish
