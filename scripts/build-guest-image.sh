#!/usr/bin/env bash
# Builds vdipool's tiny test guest into OUTDIR: a self-booting raw disk (MBR + syslinux + FAT partition with a
# Debian cloud kernel and a busybox initramfs) carrying raw marker sectors behind the partition.
set -euo pipefail

# Bump when the layout of the outputs or the disk protocol changes (also changes the default marker).
RECIPE_VERSION=2
KERNEL_META_PKG=linux-image-cloud-amd64
BUSYBOX_PKG=busybox-static
# Load order matters: each module needs the ones before it. button+evdev are optional (ACPI
# power button -> graceful shutdown); the virtio ones are required, virtio_net (with failover and
# net_failover, which it needs) for the network: the guest asks DHCP for an address (udhcpc).
MODULES_REQUIRED=(virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_blk
	failover net_failover virtio_net)
MODULES_OPTIONAL=(button evdev)
MIB=$((1024 * 1024))
# Disk layout (docs/guest-image.md): MBR (syslinux mbr.bin + one active partition), the FAT16 boot
# partition [1 MiB, 48 MiB), the base marker sector at 48 MiB, the clone scratch sector at 56 MiB.
# The marker offsets are also hard-coded in scripts/guest/init.
PART_START=$((1 * MIB))
PART_END=$((48 * MIB))
BASE_OFFSET=$((48 * MIB))
SCRATCH_OFFSET=$((56 * MIB))
MIN_SIZE_MIB=$((SCRATCH_OFFSET / MIB + 1))
# Bootloader configuration. The clone id comes from SMBIOS, so one cmdline serves every clone.
KERNEL_CMDLINE="console=ttyS0 quiet panic=-1"

PROG=${0##*/}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
GUEST_SRC=$HERE/guest

usage() {
	cat <<EOF
usage: $PROG [options] OUTDIR

Builds OUTDIR/tiny.raw, a raw disk that boots by itself (BIOS -> MBR -> syslinux -> Linux) under
QEMU/TCG in seconds and reports base/clone markers on its serial console (see docs/guest-image.md),
plus OUTDIR/vmlinuz and OUTDIR/initrd.img (the same kernel and initramfs, for direct kernel boot),
OUTDIR/README and OUTDIR/VERSION (a base version for 'vdipool base import --version':
$RECIPE_VERSION-<hash of the build inputs>). Nothing is installed into the host except missing build
tools (syslinux, syslinux-common, mtools, dosfstools, fdisk, and qemu for --verify).

options:
  --marker TEXT   base marker written to the marker sector (byte $BASE_OFFSET) of tiny.raw
                  (default: "VDIPOOL-BASE v$RECIPE_VERSION tiny-<hash of the build inputs>")
  --size MIB      virtual size of tiny.raw in MiB (default 64, minimum $MIN_SIZE_MIB)
  --force         rebuild even if OUTDIR is up to date
  --verify        after building, boot the disk twice (BIOS disk boot, no -kernel) with plain
                  qemu-system-x86_64 (TCG) on a qcow2 overlay, check the marker protocol and
                  print the boot time
  -h, --help      this text
EOF
}

die() { echo "$PROG: error: $*" >&2; exit 1; }
log() { echo "$PROG: $*" >&2; }

MARKER=
SIZE_MIB=64
FORCE=0
VERIFY=0
OUTDIR=
while [ $# -gt 0 ]; do
	case "$1" in
		--marker) [ $# -ge 2 ] || die "--marker needs a value"; MARKER=$2; shift 2 ;;
		--marker=*) MARKER=${1#*=}; shift ;;
		--size) [ $# -ge 2 ] || die "--size needs a value"; SIZE_MIB=$2; shift 2 ;;
		--size=*) SIZE_MIB=${1#*=}; shift ;;
		--force) FORCE=1; shift ;;
		--verify) VERIFY=1; shift ;;
		-h|--help) usage; exit 0 ;;
		-*) usage >&2; die "unknown option: $1" ;;
		*) [ -z "$OUTDIR" ] || die "only one OUTDIR allowed (got '$OUTDIR' and '$1')"; OUTDIR=$1; shift ;;
	esac
done
[ -n "$OUTDIR" ] || { usage >&2; die "missing OUTDIR"; }
if ! [[ "$SIZE_MIB" =~ ^[0-9]+$ ]] || [ "$SIZE_MIB" -lt "$MIN_SIZE_MIB" ]; then
	die "--size must be an integer >= $MIN_SIZE_MIB (MiB), got '$SIZE_MIB'"
fi
if [ -n "$MARKER" ]; then
	case "$MARKER" in *$'\n'*|*$'\r'*) die "--marker must be a single line" ;; esac
	[ "${#MARKER}" -le 500 ] || die "--marker is longer than 500 characters"
	[[ "$MARKER" == VDIPOOL-BASE* ]] || log "warning: marker does not start with 'VDIPOOL-BASE'; the guest will report '(none)'"
fi
for f in init acpi-power udhcpc.script; do
	[ -f "$GUEST_SRC/$f" ] || die "missing guest source file $GUEST_SRC/$f"
done
if ! grep -qx "BASE_SECTOR=$((BASE_OFFSET / 512)) .*" "$GUEST_SRC/init" \
	|| ! grep -qx "SCRATCH_SECTOR=$((SCRATCH_OFFSET / 512)) .*" "$GUEST_SRC/init"; then
	die "$GUEST_SRC/init does not use the marker sectors $((BASE_OFFSET / 512)) / $((SCRATCH_OFFSET / 512))"
fi

[ "$(uname -m)" = x86_64 ] || die "this builds an amd64 guest from the host's apt sources; host is $(uname -m)"

SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
APT_UPDATED=0
apt_update_once() {
	[ "$APT_UPDATED" -eq 0 ] || return 0
	log "running apt-get update"
	$SUDO apt-get update -qq || die "apt-get update failed"
	APT_UPDATED=1
}
# install_pkgs PKG... : apt-get install the given packages (only called when a tool is missing)
install_pkgs() {
	log "installing missing build tools: $*"
	apt_update_once
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$@" >/dev/null \
		|| die "apt-get install $* failed"
}
need_tool() {  # need_tool COMMAND PACKAGE
	command -v "$1" >/dev/null 2>&1 || install_pkgs "$2"
	command -v "$1" >/dev/null 2>&1 || die "'$1' still missing after installing $2"
}
need_tool apt-get apt
need_tool dpkg-deb dpkg
need_tool gzip gzip
need_tool sha256sum coreutils
# The bootable disk, without loop devices or mounts: sfdisk writes the partition table into the
# image file, mkfs.fat --offset and mtools (mcopy -i IMG@@OFFSET) fill the partition, and the
# mtools-based syslinux (Debian's /usr/bin/syslinux has --offset) installs the boot sector and
# ldlinux.sys/ldlinux.c32; syslinux-common ships the MBR boot code.
# GNU cpio --reproducible renumbers inodes (busybox cpio stores the build tree's), so the same
# inputs give a byte-identical initrd.img and tiny.raw.
missing=()
for t in sfdisk:fdisk mkfs.fat:dosfstools mcopy:mtools syslinux:syslinux cpio:cpio; do
	command -v "${t%%:*}" >/dev/null 2>&1 || missing+=("${t#*:}")
done
[ "${#missing[@]}" = 0 ] || install_pkgs "${missing[@]}"
need_tool sfdisk fdisk
need_tool mkfs.fat dosfstools
need_tool mcopy mtools
need_tool syslinux syslinux
need_tool cpio cpio
MBR_BIN=
for f in /usr/lib/SYSLINUX/mbr.bin /usr/lib/syslinux/mbr/mbr.bin /usr/lib/syslinux/mbr.bin; do
	[ -f "$f" ] && { MBR_BIN=$f; break; }
done
if [ -z "$MBR_BIN" ]; then
	install_pkgs syslinux-common
	for f in /usr/lib/SYSLINUX/mbr.bin /usr/lib/syslinux/mbr/mbr.bin; do
		[ -f "$f" ] && { MBR_BIN=$f; break; }
	done
	[ -n "$MBR_BIN" ] || die "no syslinux mbr.bin after installing syslinux-common"
fi
# Read the help whole first: `| grep -q` can make syslinux die of SIGPIPE, which pipefail reports.
syslinux_help=$(syslinux --help 2>&1 || true)
grep -q -- '--offset' <<<"$syslinux_help" \
	|| die "$(command -v syslinux) has no --offset option (need the mtools-based syslinux of Debian's 'syslinux' package)"
SYSLINUX_VER=$(dpkg-query -W -f '${Version}' syslinux 2>/dev/null || syslinux --version 2>&1 | head -n 1)

# candidate_version PKG -> apt's candidate version, empty if unknown
candidate_version() {
	apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ { if ($2 != "(none)") print $2; exit }'
}
# Resolve the versioned kernel package the meta package points at, and both versions.
resolve_inputs() {
	KERNEL_PKG=$(apt-cache depends "$KERNEL_META_PKG" 2>/dev/null \
		| awk '/Depends: linux-image-/ { print $2; exit }')
	KERNEL_VER=
	[ -z "$KERNEL_PKG" ] || KERNEL_VER=$(candidate_version "$KERNEL_PKG")
	BUSYBOX_VER=$(candidate_version "$BUSYBOX_PKG")
	[ -n "$KERNEL_VER" ] && [ -n "$BUSYBOX_VER" ]
}
if ! resolve_inputs; then
	apt_update_once
	resolve_inputs || die "apt knows no installable $KERNEL_META_PKG / $BUSYBOX_PKG (check /etc/apt/sources.list)"
fi

# Everything the outputs depend on; its hash is the cache key and names the default marker.
inputs_text() {
	echo "recipe=$RECIPE_VERSION"
	echo "kernel=$KERNEL_PKG=$KERNEL_VER"
	echo "busybox=$BUSYBOX_PKG=$BUSYBOX_VER"
	echo "syslinux=$SYSLINUX_VER mbr=$(sha256sum < "$MBR_BIN" | cut -c1-64)"
	echo "size_mib=$SIZE_MIB"
	echo "marker_opt=$MARKER_OPT"
	echo "modules=${MODULES_REQUIRED[*]} ${MODULES_OPTIONAL[*]}"
	echo "builder=$(sha256sum < "$HERE/build-guest-image.sh" | cut -c1-64)"
	echo "init=$(sha256sum < "$GUEST_SRC/init" | cut -c1-64)"
	echo "acpi=$(sha256sum < "$GUEST_SRC/acpi-power" | cut -c1-64)"
	echo "udhcpc=$(sha256sum < "$GUEST_SRC/udhcpc.script" | cut -c1-64)"
}
MARKER_OPT=$MARKER
compute_inputs() {
	INPUTS=$(inputs_text)
	INPUTS_HASH=$(printf '%s\n' "$INPUTS" | sha256sum | cut -c1-64)
	MARKER=${MARKER_OPT:-"VDIPOOL-BASE v$RECIPE_VERSION tiny-${INPUTS_HASH:0:16}"}
}
compute_inputs

OUTPUTS=(vmlinuz initrd.img tiny.raw README VERSION)
STAMP=.build-inputs
# read_marker IMAGE -> the base marker line of a built tiny.raw
read_marker() {
	dd if="$1" bs=512 skip=$((BASE_OFFSET / 512)) count=1 status=none | tr -d '\000' | head -n 1
}
up_to_date() {
	local f
	for f in "${OUTPUTS[@]}" "$STAMP"; do [ -s "$OUTDIR/$f" ] || return 1; done
	[ "$(cat "$OUTDIR/$STAMP")" = "$INPUTS" ]
}

# ---------------------------------------------------------------------------------------------
# verify: boot twice on a qcow2 overlay with plain QEMU (TCG); check markers; report boot time.
# ---------------------------------------------------------------------------------------------
verify_image() {
	need_tool qemu-system-x86_64 qemu-system-x86
	need_tool qemu-img qemu-utils
	need_tool mkfifo coreutils
	local vt; vt=$(mktemp -d "${TMPDIR:-/tmp}/vdipool-verify.XXXXXX")
	# shellcheck disable=SC2064
	trap "rm -rf '$vt'" RETURN
	qemu-img create -q -f qcow2 -b "$OUTDIR/tiny.raw" -F raw "$vt/delta.qcow2" \
		|| die "verify: qemu-img create overlay failed"
	# QEMU's monitor on a pair of FIFOs (QEMU opens both read-write, so nothing blocks): lets
	# us press the ACPI power button once the guest is READY.
	mkfifo "$vt/mon.in" "$vt/mon.out" || die "verify: mkfifo failed"
	local boot t0 t_ready t_off pid i id=verify-$$ ok=1 txt
	for boot in 1 2; do
		txt=$vt/boot$boot.txt
		: > "$vt/boot$boot.log"
		t0=$(date +%s.%N)
		# Disk boot only: SeaBIOS -> MBR -> syslinux -> kernel, no -kernel/-initrd/-append.
		qemu-system-x86_64 -machine pc,accel=tcg -m 256 -smp 1 -display none -no-reboot -nodefaults \
			-serial "file:$vt/boot$boot.log" -monitor "pipe:$vt/mon" \
			-smbios "type=1,serial=$id" \
			-drive "file=$vt/delta.qcow2,if=virtio,format=qcow2" </dev/null >"$vt/qemu$boot.err" 2>&1 &
		pid=$!
		t_ready=
		for ((i = 0; i < 1200; i++)); do  # 120 s
			if grep -q '^VDIPOOL-READY' "$vt/boot$boot.log" 2>/dev/null; then t_ready=$(date +%s.%N); break; fi
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		if [ -n "$t_ready" ]; then
			echo system_powerdown > "$vt/mon.in" || true
		fi
		for ((i = 0; i < 300; i++)); do  # 30 s
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$pid" 2>/dev/null; then
			kill "$pid" 2>/dev/null || true
			wait "$pid" 2>/dev/null || true
			tr -d '\r' < "$vt/boot$boot.log" | tail -n 30 >&2
			if [ -z "$t_ready" ]; then die "verify: boot $boot never printed VDIPOOL-READY within 120 s"; fi
			die "verify: boot $boot did not power off within 30 s of the ACPI power button"
		fi
		t_off=$(date +%s.%N)
		wait "$pid" || { cat "$vt/qemu$boot.err" >&2; die "verify: qemu boot $boot failed"; }
		tr -d '\r' < "$vt/boot$boot.log" > "$txt"
		grep -q '^VDIPOOL-READY' "$txt" || { tail -n 30 "$txt" >&2; die "verify: boot $boot never printed VDIPOOL-READY"; }
		grep -qxF "VDIPOOL-BASE-MARKER: $MARKER" "$txt" || { ok=0; log "verify: boot $boot: base marker missing"; }
		grep -qxF "VDIPOOL-SHUTDOWN: power button" "$txt" || { ok=0; log "verify: boot $boot: no ACPI power-button shutdown"; }
		if [ "$boot" = 1 ]; then
			grep -qxF "VDIPOOL-WROTE: VDIPOOL-CLONE $id" "$txt" || { ok=0; log "verify: boot 1 did not write its clone marker"; }
		else
			grep -qxF "VDIPOOL-CLONE-MARKER: VDIPOOL-CLONE $id" "$txt" || { ok=0; log "verify: boot 2 did not see the clone marker"; }
			grep -qxF "VDIPOOL-CLONE-MATCH: yes" "$txt" || { ok=0; log "verify: boot 2: clone marker does not match"; }
		fi
		log "verify: boot $boot (disk boot): $(grep -m1 '^VDIPOOL-READY' "$txt" | sed 's/^VDIPOOL-READY: //') guest," \
			"$(awk -v a="$t0" -v b="$t_ready" 'BEGIN { printf "%.1f", b - a }')s wall clock from qemu start to VDIPOOL-READY," \
			"$(awk -v a="$t0" -v b="$t_off" 'BEGIN { printf "%.1f", b - a }')s to power-off"
	done
	[ "$ok" = 1 ] || { cat "$vt/boot1.txt" "$vt/boot2.txt" >&2; die "verify: marker protocol check failed"; }
	log "verify: OK"
}

mkdir -p "$OUTDIR" || die "cannot create $OUTDIR"
OUTDIR=$(cd "$OUTDIR" && pwd) || die "cannot enter $OUTDIR"
# Serialise builders sharing OUTDIR (parallel ctest runs): the second one waits, then finds it up to date.
if command -v flock >/dev/null 2>&1; then
	exec 9>"$OUTDIR/.lock" || die "cannot open $OUTDIR/.lock"
	flock -w 900 9 || die "timed out waiting for another build of $OUTDIR (lock $OUTDIR/.lock)"
fi

if [ "$FORCE" = 0 ] && up_to_date; then
	log "$OUTDIR is up to date (marker: $(read_marker "$OUTDIR/tiny.raw"))"
	[ "$VERIFY" = 0 ] || verify_image
	exit 0
fi

# ---------------------------------------------------------------------------------------------
# build
# ---------------------------------------------------------------------------------------------
WORK=$(mktemp -d "$OUTDIR/.build.XXXXXX") || die "cannot create a temporary directory in $OUTDIR"
trap 'rm -rf "$WORK"' EXIT

log "building $OUTDIR: $KERNEL_PKG $KERNEL_VER, $BUSYBOX_PKG $BUSYBOX_VER"
mkdir -p "$WORK/debs"
download() {
	local apt_opts=()
	# As root apt wants to drop to _apt, which cannot write into our private temp dir.
	[ "$(id -u)" -ne 0 ] || apt_opts=(-o APT::Sandbox::User=root)
	(cd "$WORK/debs" && apt-get "${apt_opts[@]}" download -qq "$@" >/dev/null 2>"$WORK/apt-download.err")
}
if ! download "$KERNEL_PKG=$KERNEL_VER" "$BUSYBOX_PKG=$BUSYBOX_VER"; then
	# Stale package lists name versions the mirror no longer has: refresh and re-resolve.
	apt_update_once
	resolve_inputs || die "cannot resolve $KERNEL_META_PKG / $BUSYBOX_PKG after apt-get update"
	download "$KERNEL_PKG=$KERNEL_VER" "$BUSYBOX_PKG=$BUSYBOX_VER" \
		|| { cat "$WORK/apt-download.err" >&2; die "apt-get download $KERNEL_PKG $BUSYBOX_PKG failed"; }
	compute_inputs
fi

dpkg-deb -x "$WORK"/debs/"$KERNEL_PKG"_*.deb "$WORK/kernel" || die "dpkg-deb -x of the kernel package failed"
dpkg-deb -x "$WORK"/debs/"$BUSYBOX_PKG"_*.deb "$WORK/busybox" || die "dpkg-deb -x of busybox-static failed"

VMLINUZ=$(find "$WORK/kernel/boot" -maxdepth 1 -name 'vmlinuz-*' | head -n 1)
[ -n "$VMLINUZ" ] || die "no /boot/vmlinuz-* in $KERNEL_PKG"
KREL=${VMLINUZ##*/vmlinuz-}
MODDIR=$WORK/kernel/lib/modules/$KREL/kernel
[ -d "$MODDIR" ] || die "no module tree lib/modules/$KREL/kernel in $KERNEL_PKG"
BUSYBOX=$WORK/busybox/bin/busybox
[ -x "$BUSYBOX" ] || die "no /bin/busybox in $BUSYBOX_PKG"

# initramfs tree
R=$WORK/initramfs
mkdir -p "$R"/{bin,dev,proc,sys,tmp,etc/acpi/PWRF,lib/modules,usr/share/udhcpc}
cp "$BUSYBOX" "$R/bin/busybox"
for applet in $("$BUSYBOX" --list); do
	[ "$applet" = busybox ] || ln -s busybox "$R/bin/$applet"
done
install -m 0755 "$GUEST_SRC/init" "$R/init"
install -m 0755 "$GUEST_SRC/acpi-power" "$R/etc/acpi/PWRF/00000080"
install -m 0755 "$GUEST_SRC/udhcpc.script" "$R/usr/share/udhcpc/default.script"

# add_module NAME REQUIRED(0|1): copy NAME.ko (decompressed: busybox insmod reads plain .ko only)
add_module() {
	local name=$1 required=$2 src
	src=$(find "$MODDIR" \( -name "$name.ko" -o -name "$name.ko.xz" -o -name "$name.ko.zst" -o -name "$name.ko.gz" \) | head -n 1)
	if [ -z "$src" ]; then
		if grep -q "/$name.ko" "$WORK/kernel/lib/modules/$KREL/modules.builtin" 2>/dev/null; then
			return 0  # built into the kernel: nothing to load
		fi
		[ "$required" = 0 ] || die "kernel module $name not found in $KERNEL_PKG"
		log "warning: optional module $name not found; skipped"
		return 0
	fi
	case "$src" in
		*.xz) need_tool xz xz-utils; xz -dc "$src" > "$R/lib/modules/$name.ko" ;;
		*.zst) need_tool zstd zstd; zstd -qdc "$src" > "$R/lib/modules/$name.ko" ;;
		*.gz) gzip -dc "$src" > "$R/lib/modules/$name.ko" ;;
		*) cp "$src" "$R/lib/modules/$name.ko" ;;
	esac || die "cannot extract module $src"
}
for m in "${MODULES_REQUIRED[@]}"; do add_module "$m" 1; done
for m in "${MODULES_OPTIONAL[@]}"; do add_module "$m" 0; done

# Reproducible archive: fixed mtimes, sorted names, root-owned, renumbered inodes (GNU cpio).
find "$R" -exec touch -h -d @1 {} +
(cd "$R" && find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0 --reproducible) \
	| gzip -9 -n > "$WORK/initrd.img" || die "creating the initramfs failed"
cp "$VMLINUZ" "$WORK/vmlinuz"

# The disk, built in the image file itself (no loop device, no mount):
#   sector 0                    syslinux mbr.bin boot code + MBR partition table (one active partition)
#   [PART_START, PART_END)      FAT16 partition: syslinux boot sector, ldlinux.sys/.c32, syslinux.cfg,
#                               vmlinuz, initrd.img
#   BASE_OFFSET                 base marker line, NUL padded to 512 bytes
#   SCRATCH_OFFSET              clone scratch sector, zero in the base
IMG=$WORK/tiny.raw
export MTOOLS_SKIP_CHECK=1
# mtools (mcopy, and the mcopy/mattrib run by syslinux) stamps new FAT entries with this time.
export SOURCE_DATE_EPOCH=946684800  # 2000-01-01, FAT cannot store 1970
part_sectors=$(((PART_END - PART_START) / 512))
payload_kib=$(( $(du -k --apparent-size "$WORK/vmlinuz" "$WORK/initrd.img" | awk '{ s += $1 } END { print s }') ))
[ "$payload_kib" -lt $(((PART_END - PART_START) / 1024 - 1024)) ] \
	|| die "kernel + initrd ($payload_kib KiB) do not fit the $(((PART_END - PART_START) / MIB)) MiB boot partition"
truncate -s "${SIZE_MIB}M" "$IMG" || die "cannot create tiny.raw"
printf 'label: dos\nlabel-id: 0x76647030\nunit: sectors\n\nstart=%d, size=%d, type=e, bootable\n' \
	$((PART_START / 512)) "$part_sectors" \
	| sfdisk -q --no-reread --no-tell-kernel "$IMG" >"$WORK/sfdisk.log" 2>&1 \
	|| { cat "$WORK/sfdisk.log" >&2; die "sfdisk on tiny.raw failed"; }
# mbr.bin is 440 bytes: boot code only, the disk signature and partition table stay.
[ "$(stat -c %s "$MBR_BIN")" -le 440 ] || die "$MBR_BIN is larger than 440 bytes"
dd if="$MBR_BIN" of="$IMG" bs=440 count=1 conv=notrunc status=none || die "cannot write $MBR_BIN into tiny.raw"
# -h: hidden sectors = partition start (the FAT boot sector's own idea of where it sits);
# --invariant: fixed volume id and timestamps, so the same inputs give the same image.
mkfs.fat -F 16 -n VDIPOOL -h $((PART_START / 512)) --invariant --offset=$((PART_START / 512)) \
	"$IMG" $(((PART_END - PART_START) / 1024)) >"$WORK/mkfs.log" 2>&1 \
	|| { cat "$WORK/mkfs.log" >&2; die "mkfs.fat on the tiny.raw partition failed"; }
cat > "$WORK/syslinux.cfg" <<EOC
SERIAL 0 115200
DEFAULT vdipool
PROMPT 0
TIMEOUT 0
LABEL vdipool
  KERNEL /vmlinuz
  INITRD /initrd.img
  APPEND $KERNEL_CMDLINE
EOC
touch -d 2000-01-01T00:00:00Z "$WORK/vmlinuz" "$WORK/initrd.img" "$WORK/syslinux.cfg"
mcopy -m -i "$IMG@@$PART_START" "$WORK/vmlinuz" "$WORK/initrd.img" "$WORK/syslinux.cfg" ::/ \
	>"$WORK/mcopy.log" 2>&1 || { cat "$WORK/mcopy.log" >&2; die "mcopy into the tiny.raw partition failed"; }
syslinux --install --offset "$PART_START" "$IMG" >"$WORK/syslinux.log" 2>&1 \
	|| { cat "$WORK/syslinux.log" >&2; die "syslinux --install --offset $PART_START tiny.raw failed"; }
for f in ldlinux.sys ldlinux.c32 syslinux.cfg vmlinuz initrd.img; do
	mdir -a -b -i "$IMG@@$PART_START" "::/$f" >/dev/null 2>&1 || die "$f missing from the tiny.raw partition after install"
done
{ printf '%s\n' "$MARKER"; head -c 512 /dev/zero; } | head -c 512 \
	| dd of="$IMG" bs=512 seek=$((BASE_OFFSET / 512)) count=1 conv=notrunc status=none \
	|| die "cannot write the base marker"
[ "$(read_marker "$IMG")" = "$MARKER" ] || die "base marker read back wrong"

echo "$RECIPE_VERSION-${INPUTS_HASH:0:16}" > "$WORK/VERSION"
cat > "$WORK/README" <<EOF
vdipool tiny test guest (built by scripts/build-guest-image.sh; protocol: docs/guest-image.md)

vmlinuz     kernel $KREL from $KERNEL_PKG $KERNEL_VER
initrd.img  gzip cpio: busybox from $BUSYBOX_PKG $BUSYBOX_VER, /init (scripts/guest/init),
            modules $(find "$R/lib/modules" -name '*.ko' -printf '%f\n' | LC_ALL=C sort | tr '\n' ' ')
tiny.raw    the golden base disk, raw, $SIZE_MIB MiB, boots by itself (BIOS -> syslinux mbr.bin ->
            syslinux $SYSLINUX_VER -> vmlinuz + initrd.img, cmdline "$KERNEL_CMDLINE"):
              byte 0:          MBR (syslinux mbr.bin), partition 1 active, FAT16, bytes [$PART_START, $PART_END)
              byte $BASE_OFFSET: base marker line "$MARKER"
              byte $SCRATCH_OFFSET: clone scratch sector, zero in the base
            sha256 $(sha256sum < "$IMG" | cut -c1-64)
VERSION     "$RECIPE_VERSION-${INPUTS_HASH:0:16}": base version for vdipool base import (changes with any input)

Boot: from the disk (virtio vda; <boot dev='hd'/>, no <kernel>); console on ttyS0. For direct kernel
boot use vmlinuz + initrd.img with "$KERNEL_CMDLINE"
(+ vdipool.poweroff=1 | vdipool.readonly=1 | vdipool.id=TEXT | vdipool.shell=1).
The clone id is the SMBIOS system serial, else the SMBIOS UUID (libvirt: the domain UUID).
Console lines: VDIPOOL-BOOT, VDIPOOL-BASE-MARKER, VDIPOOL-IDENTITY, VDIPOOL-CLONE-MARKER,
VDIPOOL-CLONE-MATCH, VDIPOOL-WROTE, VDIPOOL-READY, VDIPOOL-POWEROFF/-SHUTDOWN, VDIPOOL-ERROR.

Build inputs:
$INPUTS
EOF

# Install: outputs first, stamp last, so an interrupted build is never taken as up to date.
rm -f "$OUTDIR/$STAMP"
for f in "${OUTPUTS[@]}"; do
	mv -f "$WORK/$f" "$OUTDIR/$f" || die "cannot move $f into $OUTDIR"
done
chmod 0644 "$OUTDIR"/{vmlinuz,initrd.img,tiny.raw,README,VERSION}
printf '%s\n' "$INPUTS" > "$OUTDIR/$STAMP"
log "built $OUTDIR (vmlinuz $(du -k "$OUTDIR/vmlinuz" | cut -f1) KiB, initrd.img $(du -k "$OUTDIR/initrd.img" | cut -f1) KiB, tiny.raw ${SIZE_MIB} MiB), marker: $MARKER"

[ "$VERIFY" = 0 ] || verify_image
