#!/usr/bin/env bash
# Integration test: two linked clones (qcow2 overlays) of the tiny guest boot through the real libvirtd and keep separate markers.
#
# Runs scripts/libvirt-up.sh, builds (or reuses) the guest from scripts/build-guest-image.sh in
# $VP_GUEST_DIR (default ${VP_BUILD_DIR:-<repo>/build}/guest), defines two persistent domains
# vptest-guest-<pid>-a/-b the way templates/server.xml does (machine 'pc', BIOS disk boot with
# <boot dev='hd'/> and no <kernel>, virtio vda on a qcow2 overlay of tiny.raw, SMBIOS serial =
# domain name, pty serial console logged by virtlogd to /var/log/libvirt/qemu/NAME-serial.log with
# append='on'), boots both, checks markers, shuts both down (ACPI), boots again and checks each
# sees only its own marker and that the serial log kept boot 1; the base image must be
# bit-identical after. Cleans up only its own domains and files (serial logs included). Env: VP_GUEST_BOOT_TIMEOUT (s, default 60),
# VP_GUEST_NET (auto|none|default; auto = NIC on libvirt's 'default' network if it is active),
# VP_KEEP=1 keeps the work directory (logs, overlays).
# shellcheck disable=SC2016  # single-quoted bash -c snippets get their values as arguments
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC=${VP_SOURCE_DIR:-$(cd "$HERE/../.." && pwd)}
BUILD=${VP_BUILD_DIR:-$SRC/build}
GUEST_DIR=${VP_GUEST_DIR:-$BUILD/guest}
BOOT_TIMEOUT=${VP_GUEST_BOOT_TIMEOUT:-60}
NET_MODE=${VP_GUEST_NET:-auto}
URI=${VP_LIBVIRT_URI:-qemu:///system}
PREFIX=vptest-guest-$$-
NAMES=("${PREFIX}a" "${PREFIX}b")

PASSED=0
FAILED=0
pass() { PASSED=$((PASSED + 1)); echo "PASS: $*"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL: $*"; }
check() {  # check DESCRIPTION COMMAND... : PASS/FAIL on the command's status
	local what=$1; shift
	if "$@"; then pass "$what"; else fail "$what"; fi
}
finish() {
	echo "$PASSED passed, $FAILED failed"
	if [ "$FAILED" = 0 ]; then exit 0; else exit 1; fi
}
abort() {  # a prerequisite failed: nothing else can be tested
	fail "$*"
	finish
}
indent() { sed 's/^/# /'; }
virsh_() { timeout 60 virsh -q -c "$URI" "$@"; }

SERIAL_LOG_DIR=/var/log/libvirt/qemu
serial_log() { echo "$SERIAL_LOG_DIR/$1-serial.log"; }
WORK=
DEFINED=()
# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup() {
	local n
	for n in "${DEFINED[@]}"; do
		case "$n" in "$PREFIX"*) ;; *) continue ;; esac  # only ours
		virsh_ destroy "$n" >/dev/null 2>&1 || true
		virsh_ undefine "$n" >/dev/null 2>&1 || true
		if [ "${VP_KEEP:-0}" = 1 ] && [ -n "$WORK" ] && [ -d "$WORK" ]; then
			cp "$(serial_log "$n")" "$SERIAL_LOG_DIR/$n.log" "$WORK/" 2>/dev/null || true
		fi
		rm -f "$(serial_log "$n")" "$SERIAL_LOG_DIR/$n.log"  # virtlogd's serial log, libvirt's QEMU log
	done
	if [ -n "$WORK" ] && [ -d "$WORK" ]; then
		if [ "${VP_KEEP:-0}" = 1 ]; then echo "# kept $WORK"; else rm -rf "$WORK"; fi
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# 1. libvirt
if out=$(bash "$SRC/scripts/libvirt-up.sh" 2>&1); then
	pass "scripts/libvirt-up.sh: libvirt answers on $URI"
else
	indent <<<"$out"
	abort "scripts/libvirt-up.sh failed"
fi

# 2. guest image (cached)
if out=$(bash "$SRC/scripts/build-guest-image.sh" "$GUEST_DIR" 2>&1); then
	pass "scripts/build-guest-image.sh $GUEST_DIR"
	indent <<<"$out"
else
	indent <<<"$out"
	abort "scripts/build-guest-image.sh $GUEST_DIR failed"
fi
GUEST_DIR=$(cd "$GUEST_DIR" && pwd)
BASE=$GUEST_DIR/tiny.raw
# Base marker sector: byte 48 MiB (docs/guest-image.md)
BASE_MARKER=$(dd if="$BASE" bs=512 skip=$((48 * 2048)) count=1 status=none | tr -d '\000' | head -n 1)
case "$BASE_MARKER" in VDIPOOL-BASE*) ;; *) abort "no base marker at byte 48 MiB of $BASE (old image layout?)" ;; esac
BASE_SHA=$(sha256sum < "$BASE" | cut -c1-64)
echo "# base $BASE marker '$BASE_MARKER' sha256 $BASE_SHA"

# QEMU runs as libvirt's unprivileged user: the base must be reachable (libvirt chowns the file, not
# its directories).
QEMU_USER=$(awk -F'"' '/^[[:space:]]*user[[:space:]]*=/ { print $2 }' /etc/libvirt/qemu.conf 2>/dev/null)
QEMU_USER=${QEMU_USER:-libvirt-qemu}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/${PREFIX}XXXXXX")
chmod 0755 "$WORK"  # QEMU (as $QEMU_USER) opens the overlays here
if [ "$(id -u)" = 0 ] && id "$QEMU_USER" >/dev/null 2>&1 && command -v runuser >/dev/null 2>&1 &&
	! runuser -u "$QEMU_USER" -- test -x "$GUEST_DIR"; then
	# A checkout in a private directory (CI clones into one): use a copy QEMU can reach.
	cp --sparse=always "$BASE" "$WORK/tiny.raw"
	BASE=$WORK/tiny.raw
	echo "# $GUEST_DIR is not searchable by $QEMU_USER: using a copy in $WORK"
fi

NIC=
case "$NET_MODE" in
	none) ;;
	default|auto)
		if [ "$(virsh_ net-info default 2>/dev/null | awk '/^Active:/ { print $2 }')" = yes ]; then
			NIC="<interface type='network'><source network='default'/><model type='virtio'/></interface>"
		elif [ "$NET_MODE" = default ]; then
			abort "VP_GUEST_NET=default but libvirt network 'default' is not active"
		fi
		;;
	*) abort "VP_GUEST_NET must be auto, none or default (got '$NET_MODE')" ;;
esac
if [ -n "$NIC" ]; then echo "# network: NIC on libvirt network 'default'"; else echo "# network: none"; fi

# domain_xml NAME OVERLAY: disk boot like templates/server.xml (no <kernel>/<initrd>/<cmdline>;
# the kernel command line lives in the image's syslinux.cfg, the clone id comes from SMBIOS)
domain_xml() {
	cat <<EOF
<domain type='qemu'>
  <name>$1</name>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <sysinfo type='smbios'>
    <system>
      <entry name='manufacturer'>vdipool</entry>
      <entry name='product'>vdipool test guest</entry>
      <entry name='serial'>$1</entry>
    </system>
  </sysinfo>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <boot dev='hd'/>
    <smbios mode='sysinfo'/>
  </os>
  <features><acpi/></features>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>$(command -v qemu-system-x86_64)</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='$2'/>
      <backingStore type='file'>
        <format type='raw'/>
        <source file='$BASE'/>
      </backingStore>
      <target dev='vda' bus='virtio'/>
    </disk>
    $NIC
    <serial type='pty'>
      <log file='$(serial_log "$1")' append='on'/>
      <target port='0'/>
    </serial>
    <console type='pty'>
      <target type='serial' port='0'/>
    </console>
    <memballoon model='none'/>
  </devices>
</domain>
EOF
}

# 3. two overlays, two domains
for n in "${NAMES[@]}"; do
	qemu-img create -q -f qcow2 -b "$BASE" -F raw "$WORK/$n.qcow2" || abort "qemu-img create overlay for $n"
	rm -f "$(serial_log "$n")"
	domain_xml "$n" "$WORK/$n.qcow2" > "$WORK/$n.xml"
	if out=$(virsh_ define "$WORK/$n.xml" 2>&1); then
		DEFINED+=("$n")
	else
		indent <<<"$out"
		abort "virsh define $n"
	fi
done
pass "defined ${NAMES[*]}"

declare -A UUID
for n in "${NAMES[@]}"; do UUID[$n]=$(virsh_ domuuid "$n" | tr -d '[:space:]'); done

elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }
# console_text NAME BOOT -> console output of that boot without CRs
console_text() { tr -d '\r' < "$WORK/$1.boot$2.log" 2>/dev/null || true; }
# serial_since NAME OFFSET -> the serial log from byte OFFSET on (this boot's part), without CRs
serial_since() { tail -c +$(($2 + 1)) "$(serial_log "$1")" 2>/dev/null | tr -d '\r' || true; }
log_size() { stat -c %s "$(serial_log "$1")" 2>/dev/null || echo 0; }

# boot_all BOOT: start all domains, wait for VDIPOOL-READY in their virtlogd serial logs, shut
# them down, keep this boot's part of each log as NAME.bootN.log
boot_all() {
	local boot=$1 n t0 out
	declare -A started offset
	for n in "${NAMES[@]}"; do
		offset[$n]=$(log_size "$n")
		if out=$(virsh_ start "$n" 2>&1); then
			started[$n]=$(date +%s.%N)
		else
			indent <<<"$out"
			tail -n 20 "/var/log/libvirt/qemu/$n.log" 2>/dev/null | sed 's/^/# qemu log: /'
			fail "boot $boot: virsh start $n"
		fi
	done
	t0=$SECONDS
	for n in "${!started[@]}"; do
		while ! serial_since "$n" "${offset[$n]}" | grep -q '^VDIPOOL-READY' \
			&& [ $((SECONDS - t0)) -lt "$BOOT_TIMEOUT" ]; do
			sleep 0.1
		done
		if serial_since "$n" "${offset[$n]}" | grep -q '^VDIPOOL-READY'; then
			pass "boot $boot: $n printed VDIPOOL-READY to $(serial_log "$n") ($(elapsed "${started[$n]}")s after virsh start;" \
				"guest $(serial_since "$n" "${offset[$n]}" | grep -m1 '^VDIPOOL-READY' | sed 's/.*: //'))"
		else
			fail "boot $boot: $n printed no VDIPOOL-READY to $(serial_log "$n") within ${BOOT_TIMEOUT}s"
			serial_since "$n" "${offset[$n]}" | tail -n 30 | sed 's/^/# console: /'
		fi
	done
	# Graceful stop: ACPI power button -> the guest's acpid syncs and powers off.
	for n in "${!started[@]}"; do virsh_ shutdown "$n" >/dev/null 2>&1 || true; done
	t0=$SECONDS
	for n in "${!started[@]}"; do
		while [ "$(virsh_ domstate "$n" 2>/dev/null)" != "shut off" ] && [ $((SECONDS - t0)) -lt 30 ]; do
			sleep 0.3
		done
		if [ "$(virsh_ domstate "$n" 2>/dev/null)" = "shut off" ]; then
			pass "boot $boot: $n shut down via ACPI (virsh shutdown)"
		else
			fail "boot $boot: $n still running 30s after virsh shutdown; destroying it"
			virsh_ destroy "$n" >/dev/null 2>&1 || true
		fi
		serial_since "$n" "${offset[$n]}" > "$WORK/$n.boot$boot.log"
	done
}

# shellcheck disable=SC2317  # invoked through check
has_line() { grep -qxF -- "$2" <<<"$1"; }

# 4. first boot: base marker seen, no clone marker, own marker written
boot_all 1
for n in "${NAMES[@]}"; do
	log=$(console_text "$n" 1)
	check "boot 1: $n saw the base marker" has_line "$log" "VDIPOOL-BASE-MARKER: $BASE_MARKER"
	check "boot 1: $n found no clone marker in its fresh overlay" has_line "$log" "VDIPOOL-CLONE-MARKER: (none)"
	check "boot 1: $n wrote its own clone marker" has_line "$log" "VDIPOOL-WROTE: VDIPOOL-CLONE $n"
	check "boot 1: $n SMBIOS uuid is the domain uuid ${UUID[$n]}" grep -q "^VDIPOOL-IDENTITY: .* uuid=${UUID[$n]}\$" <<<"$log"
done

# 5. second boot: each sees only its own marker, nothing rewritten
boot_all 2
for n in "${NAMES[@]}"; do
	log=$(console_text "$n" 2)
	check "boot 2: $n saw the base marker" has_line "$log" "VDIPOOL-BASE-MARKER: $BASE_MARKER"
	check "boot 2: $n saw its own clone marker" has_line "$log" "VDIPOOL-CLONE-MARKER: VDIPOOL-CLONE $n"
	check "boot 2: $n marker matches its identity" has_line "$log" "VDIPOOL-CLONE-MATCH: yes"
	check "boot 2: $n saw exactly one clone marker" test "$(grep -c '^VDIPOOL-CLONE-MARKER:' <<<"$log")" = 1
	for other in "${NAMES[@]}"; do
		[ "$other" != "$n" ] || continue
		check "boot 2: $n saw nothing of $other" bash -c '! grep -qF -- "$1" <<<"$2"' _ "$other" "$log"
	done
	check "boot 2: $n did not write again" bash -c '! grep -q "^VDIPOOL-WROTE" <<<"$1"' _ "$log"
	check "boot 1: $n printed VDIPOOL-SHUTDOWN (ACPI power button)" grep -qxF "VDIPOOL-SHUTDOWN: power button" "$WORK/$n.boot1.log"
	check "boot 2: $(serial_log "$n") still holds boot 1 (append='on')" \
		grep -qxF "VDIPOOL-WROTE: VDIPOOL-CLONE $n" <(tr -d '\r' < "$(serial_log "$n")")
	check "boot 2: $(serial_log "$n") holds two boots" \
		test "$(tr -d '\r' < "$(serial_log "$n")" | grep -c '^VDIPOOL-READY')" = 2
done

# 6. the base is untouched; the overlays still point at it
check "base image sha256 unchanged ($BASE_SHA)" test "$(sha256sum < "$BASE" | cut -c1-64)" = "$BASE_SHA"
for n in "${NAMES[@]}"; do
	check "$n overlay still backed by the base (raw)" \
		bash -c 'qemu-img info -U --output=json "$1" | grep -q "\"backing-filename-format\": \"raw\""' _ "$WORK/$n.qcow2"
done

finish
