#!/usr/bin/env bash
# test_derive.sh: `vdipool base derive/seal/abandon` end to end with real qemu-img and qemu-io.
set -uo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

T=$(mktemp -d /tmp/vp-derive-XXXXXX)
export VDIPOOL_ROOT=$T/root
export TMPDIR=$T/tmp
mkdir -p "$TMPDIR"
holder=
cleanup() {
	[[ -n $holder ]] && kill "$holder" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT; [[ -n ${KEEP_T:-} ]] && trap - EXIT


B=$VDIPOOL_ROOT/bases/tiny
truncate -s 8M "$T/a.raw"
qemu-io -f raw -c 'write -P 0x11 0 1M' "$T/a.raw" >/dev/null
expect "import v1" 0 "imported tiny@v1" -- "$CLI" base import tiny "$T/a.raw" --version v1
v1sum=$(sha256sum "$B/v1/disk.qcow2" | cut -d" " -f1)

# Bad input and state conflicts.
expect "derive needs --version" 2 "--version is required" -- "$CLI" base derive tiny@v1
expect "derive bad version" 2 "invalid version '../x'" -- "$CLI" base derive tiny@v1 --version ../x
expect "derive from missing" 1 "no base 'tiny@v9'" -- "$CLI" base derive tiny@v9 --version v2
expect "derive to existing" 1 "version v1 of 'tiny' exists already" -- "$CLI" base derive tiny@v1 --version v1
expect "seal without derivation" 1 "no derivation of 'tiny@v2' in progress" -- "$CLI" base seal tiny@v2
expect "abandon without derivation" 1 "no derivation of 'tiny@v2' in progress" -- "$CLI" base abandon tiny@v2
expect "seal latest" 2 "name the version being derived" -- "$CLI" base seal tiny
expect "--tmpdir only with seal" 2 "--tmpdir goes with 'base seal'" -- "$CLI" base derive tiny@v1 --version v2 --tmpdir /tmp

# Derive, write into the maintenance delta, seal.
D=$B/.derive-v2/disk.qcow2
expect "derive" 0 "maintenance delta: $D" -- "$CLI" base derive tiny@v1 --version v2
expect "derive again" 1 "'tiny@v2' is being derived already" -- "$CLI" base derive tiny@v1 --version v2
expect "delta backs onto v1" 0 "backing file: $B/v1/disk.qcow2" -- qemu-img info "$D"
expect "delta backing format" 0 "backing file format: qcow2" -- qemu-img info "$D"
expect "list shows derivation" 0 "tiny                 v2                   v1" -- "$CLI" base list
expect "list json has no derivation" 0 '"version":"v1"' -- bash -c "'$CLI' base list -o json | grep -v '\"version\":\"v2\"'"
expect "rm parent refused" 1 "the derivation of tiny@v2 backs onto it" -- "$CLI" base rm tiny@v1
expect "gc leaves it" 0 "no base version to remove" -- "$CLI" gc --keep 1 --yes
expect "write" 0 "wrote 65536/65536 bytes" -- qemu-io -f qcow2 -c 'write -P 0x77 1M 64k' "$D"

# A VM still running on the delta holds QEMU's write lock: seal must refuse.
mkfifo "$T/fifo"
qemu-io -f qcow2 "$D" <"$T/fifo" >/dev/null 2>&1 &
holder=$!
exec 9>"$T/fifo" # keeps qemu-io waiting for commands with the image open
sleep 1
expect "seal while in use" 1 "is in use (is its VM still running?" -- "$CLI" base seal tiny@v2
exec 9>&-
wait "$holder" 2>/dev/null
holder=
expect "still deriving after refusal" 0 "" -- test -f "$D"

expect "seal" 0 "sealed tiny@v2 (parent v1)" -- "$CLI" base seal tiny@v2
expect "v2 listed" 0 "tiny                 v2" -- "$CLI" base list tiny
expect "manifest parent" 0 "parent=v1" -- cat "$B/v2/manifest"
expect "list json parent" 0 '"parent":"v1"' -- "$CLI" base list tiny -o json
expect "v2 has no backing file" 0 "" -- bash -c "! qemu-img info '$B/v2/disk.qcow2' | grep -qi backing"
expect "v2 holds the update" 0 "read 65536/65536" -- qemu-io -r -f qcow2 -c 'read -P 0x77 1M 64k' "$B/v2/disk.qcow2"
expect "v2 holds v1's content" 0 "read 1048576/1048576" -- qemu-io -r -f qcow2 -c 'read -P 0x11 0 1M' "$B/v2/disk.qcow2"
expect "v2 zero elsewhere" 0 "read 65536/65536" -- qemu-io -r -f qcow2 -c 'read -P 0 2M 64k' "$B/v2/disk.qcow2"
expect "v1 unchanged" 0 "$v1sum" -- sha256sum "$B/v1/disk.qcow2"
expect "v1 still without update" 0 "read 65536/65536" -- qemu-io -r -f qcow2 -c 'read -P 0 1M 64k' "$B/v1/disk.qcow2"
expect "verify v2" 0 "tiny@v2: ok" -- "$CLI" base verify tiny@v2
expect "verify v1" 0 "tiny@v1: ok" -- "$CLI" base verify tiny@v1
expect "maintenance files gone" 0 "" -- bash -c "! ls -A '$B' | grep -q derive"
expect "no temp files left" 0 "" -- bash -c "[[ -z \$(ls -A '$TMPDIR') ]]"
expect "v2 read-only" 0 "444" -- stat -c %a "$B/v2/disk.qcow2"
expect "seal twice" 1 "no derivation of 'tiny@v2' in progress" -- "$CLI" base seal tiny@v2
expect "derive to sealed" 1 "version v2 of 'tiny' exists already" -- "$CLI" base derive tiny@v1 --version v2

# Derive from latest, then abandon (both spellings).
expect "derive latest" 0 "deriving tiny@v3 from tiny@v2" -- "$CLI" base derive tiny --version v3
expect "abort" 0 "abandoned the derivation of tiny@v3" -- "$CLI" base derive --abort tiny@v3
expect "abort removed it" 0 "" -- test ! -e "$B/.derive-v3"
expect "abort twice" 1 "no derivation of 'tiny@v3' in progress" -- "$CLI" base derive --abort tiny@v3
expect "derive v3 again" 0 "deriving tiny@v3" -- "$CLI" base derive tiny@v2 --version v3
# gc must keep the version an open derivation backs onto, even when it is not among the newest.
truncate -s 8M "$T/newer.raw"
printf 'newer' | dd of="$T/newer.raw" conv=notrunc status=none
expect "import a newer version" 0 "imported tiny@v9" -- "$CLI" base import tiny "$T/newer.raw" --version v9
# (with libvirt: without it gc removes nothing at all)
expect "gc keeps the derivation's parent" 0 "" -- "$CLI" gc --keep 1 --yes
expect "v2 is still there" 0 "tiny@v2: ok" -- "$CLI" base verify tiny@v2
expect "abandon" 0 "abandoned the derivation of tiny@v3" -- "$CLI" base abandon tiny@v3
expect "v3 never published" 1 "no base 'tiny@v3'" -- "$CLI" base verify tiny@v3
expect "list clean" 0 "" -- bash -c "! '$CLI' base list | grep -q DERIVING"
# examples/refresh.sh with `apply` stubbed (no libvirt here): imports a changed
# image once, skips unchanged content; its gc keeps what an open derivation needs.
SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
REAL_CLI=$(cd "$(dirname "$CLI")" && pwd)/$(basename "$CLI")
cat >"$T/vdipool-stub" <<STUB
#!/usr/bin/env bash
if [[ \$1 == apply ]]; then echo "stub apply \$2"; exit 0; fi
exec "$REAL_CLI" "\$@"
STUB
chmod +x "$T/vdipool-stub"
export VDIPOOL="$T/vdipool-stub" VDIPOOL_REFRESH_NAME=tiny VDIPOOL_REFRESH_SPEC=$T/pool.yaml
export VDIPOOL_REFRESH_LOCK=$T/refresh.lock VDIPOOL_REFRESH_KEEP=5
cp "$T/a.raw" "$T/build.raw"
qemu-io -f raw -c 'write -P 0x22 3M 64k' "$T/build.raw" >/dev/null
touch -d '2026-11-24 08:00:00 UTC' "$T/build.raw"
export VDIPOOL_REFRESH_IMAGE=$T/build.raw
expect "refresh imports" 0 "imported tiny@2026.11.24-080000" -- bash "$SRC/examples/refresh.sh"
expect "refresh applies" 0 "stub apply $T/pool.yaml" -- bash "$SRC/examples/refresh.sh"
expect "refresh unchanged" 0 "has the content of the newest version of tiny; not importing" -- bash "$SRC/examples/refresh.sh"
touch "$T/build.raw"
expect "refresh same content, new mtime" 0 "not importing" -- bash "$SRC/examples/refresh.sh"
expect "refresh gc" 0 "no base version to remove" -- bash "$SRC/examples/refresh.sh"
"$CLI" base derive tiny@v2 --version v4 >/dev/null 2>&1
expect "refresh with a derivation open" 0 "stub apply" -- env VDIPOOL_REFRESH_KEEP=0 bash "$SRC/examples/refresh.sh"
expect "its gc kept the derivation's parent" 0 "tiny@v2: ok" -- "$CLI" base verify tiny@v2
"$CLI" base abandon tiny@v4 >/dev/null 2>&1
exec 8>"$T/refresh.lock"
flock 8
expect "refresh locked" 0 "another refresh holds" -- bash "$SRC/examples/refresh.sh"
exec 8>&-
VDIPOOL_REFRESH_IMAGE=$T/nope.raw expect "refresh no image" 1 "no image at $T/nope.raw" -- bash "$SRC/examples/refresh.sh"
expect "help" 0 "vdipool base seal NAME@V2" -- "$CLI" base --help

# --domain: a maintenance domain to boot the delta; seal waits for it to be shut off, then removes it.
if virsh -c qemu:///system version >/dev/null 2>&1; then
	chmod 755 "$T"
	DOM=vdipool-derive-tiny-v5
	expect "derive --domain" 0 "maintenance domain: $DOM" -- "$CLI" base derive tiny@v2 --version v5 --domain
	expect "the domain boots the maintenance delta" 0 "$B/.derive-v5/disk.qcow2" -- virsh -q domblklist "$DOM"
	if [[ $(virsh net-info default 2>/dev/null | awk '/^Active:/ { print $2 }') == yes ]]; then
		virsh -q start "$DOM" >/dev/null
		expect "seal refused while it runs" 1 "maintenance domain '$DOM' is running" -- "$CLI" base seal tiny@v5
		virsh -q destroy "$DOM" >/dev/null
	fi
	expect "seal after shutdown" 0 "sealed tiny@v5 (parent v2)" -- "$CLI" base seal tiny@v5
	expect "seal removed the domain" 1 "" -- virsh -q dominfo "$DOM"
	expect "derive --domain again" 0 "maintenance domain: vdipool-derive-tiny-v6" -- "$CLI" base derive tiny@v5 --version v6 --domain
	expect "abandon removes the domain" 0 "removed the maintenance domain vdipool-derive-tiny-v6" -- "$CLI" base abandon tiny@v6
	expect "it is gone" 1 "" -- virsh -q dominfo vdipool-derive-tiny-v6
	expect "--domain only with derive" 2 "--domain goes with 'base derive'" -- "$CLI" base seal tiny@v6 --domain
fi

finish
