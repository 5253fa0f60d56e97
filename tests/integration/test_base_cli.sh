#!/usr/bin/env bash
# test_base_cli.sh: `vdipool base import/list/verify/rm` and `vdipool gc` end to end (exit codes, messages, refusals without libvirt).
set -uo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

T=$(mktemp -d /tmp/vp-base-cli-XXXXXX)
export VDIPOOL_ROOT=$T/root
trap 'rm -rf "$T"' EXIT

raw() { # raw FILE MIB TAG
	truncate -s "$2M" "$1" && printf '%s' "$3" | dd of="$1" conv=notrunc status=none
}

raw "$T/a.raw" 8 one
raw "$T/b.raw" 8 two
raw "$T/c.raw" 8 three
printf 'hello' >"$T/text.img"
qemu-img create -q -f qcow2 -F raw -b "$T/a.raw" "$T/backed.qcow2"

expect "help" 0 "vdipool base import tiny" -- "$CLI" base --help
expect "import" 0 "imported tiny@v1: qcow2, 8.0 MiB virtual" -- "$CLI" base import tiny "$T/a.raw" --version v1
expect "import same again" 0 "already imported with the same content; nothing to do" -- "$CLI" base import tiny "$T/a.raw" --version v1
expect "import other content" 1 "version v1 exists already with other content" -- "$CLI" base import tiny "$T/b.raw" --version v1
expect "import v2 raw" 0 "imported tiny@v2: raw" -- "$CLI" base import tiny "$T/b.raw" --version v2 --format raw
expect "import v3" 0 "imported tiny@v3" -- "$CLI" base import tiny "$T/c.raw" --version v3
expect "no version" 2 "--version is required" -- "$CLI" base import tiny "$T/a.raw"
expect "bad version" 2 "invalid version" -- "$CLI" base import tiny "$T/a.raw" --version "../x"
expect "bad name" 2 "cannot import base 'Tiny@v9': invalid name" -- "$CLI" base import Tiny "$T/a.raw" --version v9
expect "not an image" 2 "is not a disk image" -- "$CLI" base import tiny "$T/text.img" --version v9
expect "backing file" 2 "has a backing file" -- "$CLI" base import tiny "$T/backed.qcow2" --version v9
expect "list" 0 "tiny                 v3" -- "$CLI" base list
expect "list json" 0 '"version":"v2","format":"raw"' -- "$CLI" base list tiny -o json
expect "verify" 0 "tiny@v1: ok (sha256 " -- "$CLI" base verify tiny@v1
expect "verify latest" 0 "tiny@v3: ok" -- "$CLI" base verify tiny@latest
expect "verify missing" 1 "no base 'tiny@v7'" -- "$CLI" base verify tiny@v7

# A delta backing onto v1, the way the dir plugin writes them.
mkdir -p "$VDIPOOL_ROOT/deltas/p1"
qemu-img create -q -f qcow2 -F qcow2 -b "$VDIPOOL_ROOT/bases/tiny/v1/disk.qcow2" "$VDIPOOL_ROOT/deltas/p1/c1.qcow2"
expect "list clones" 0 "1  default" -- "$CLI" base list tiny
expect "rm referenced" 1 "cannot remove base 'tiny@v1': 1 delta backs onto it: $VDIPOOL_ROOT/deltas/p1/c1.qcow2" -- "$CLI" base rm tiny@v1
expect "gc dry run" 0 "would remove base tiny@v2" -- "$CLI" gc --keep 1
# Without a reachable libvirt, a delta no domain seems to use is only a candidate, and nothing is removed.
NOVIRT="qemu+unix:///system?socket=$T/no-libvirt.sock"
expect "gc candidates" 0 "orphan candidates (domains not known; kept)" -- "$CLI" gc --keep 1 --connect "$NOVIRT"
expect "gc says why" 0 "cannot connect to libvirt" -- "$CLI" gc --keep 1 --connect "$NOVIRT"
expect "gc refuses without libvirt" 1 "cannot connect to libvirt" -- "$CLI" gc --keep 1 --yes --connect "$NOVIRT"
expect "rm refuses without libvirt" 1 "cannot connect to libvirt" -- "$CLI" base rm tiny@v2 --connect "$NOVIRT"
expect "gc refused keeps" 0 "tiny@v2: ok" -- "$CLI" base verify tiny@v2
# gc keeps 2 by default (the spec's documented default): v2, v3 stay.
expect "gc default keep 2" 0 "no base version to remove (keeping the newest 2" -- "$CLI" gc
expect "gc dry run keeps" 0 "tiny@v2: ok" -- "$CLI" base verify tiny@v2
expect "gc kept delta (dry run)" 0 "" -- test -f "$VDIPOOL_ROOT/deltas/p1/c1.qcow2"
# With libvirt: v2 goes, v1 stays (a delta backs onto it), and the delta no domain uses goes too.
expect "gc yes" 0 "removed 2 (base versions and orphaned disks)" -- "$CLI" gc --keep 1 --yes
expect "gc removed v2" 1 "no base 'tiny@v2'" -- "$CLI" base verify tiny@v2
expect "gc kept v1 (referenced)" 0 "tiny@v1: ok" -- "$CLI" base verify tiny@v1
expect "gc removed the orphan" 1 "" -- test -f "$VDIPOOL_ROOT/deltas/p1/c1.qcow2"
expect "rm" 0 "removed base tiny@v1" -- "$CLI" base rm tiny@v1

# Tamper with v3: verify must fail.
img=$VDIPOOL_ROOT/bases/tiny/v3/disk.qcow2
chmod u+w "$img"
printf 'X' | dd of="$img" bs=1 seek=300000 conv=notrunc status=none
expect "verify tampered" 1 "is corrupted: its sha256 is" -- "$CLI" base verify tiny@v3
expect "no leftovers" 0 "" -- bash -c "! ls -A '$VDIPOOL_ROOT/bases' | grep -q '^\.'"
expect "plugins" 0 "linked-clone" -- "$CLI" plugins

finish
