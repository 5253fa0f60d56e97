#!/usr/bin/env bash
# test_hosts.sh: 3 test hosts (scripts/test-hosts-up.sh) are 3 libvirt hosts over qemu+libssh2, each seeing only its own store, each booting a real guest under TCG.
# Each host is an sshd in its own mount namespace with its own store on /var/lib/vdipool; libvirt
# reaches it as qemu+libssh2://USER@127.0.0.1:PORT/session (the URI is the 5th field of RUN/hosts),
# which starts the user's session libvirtd through that sshd, in that namespace. Proves: every
# daemon answers (list, node info) and runs in its host's namespace; a disk that exists only in
# host1's store starts on host1 and not on host2; the small guest (scripts/build-guest-image.sh)
# boots to VDIPOOL-READY on every host with its own identity; down leaves no process and no user.
# Env: VP_TEST_HOSTS_PORT (22400: hosts on +1..+3), VP_TEST_HOSTS_USER (vpvirt), VP_GUEST_DIR,
# VP_GUEST_BOOT_TIMEOUT (120 s).
set -uo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# Others run tests against shared daemons and ports: one integration run at a time.
exec 9>/tmp/vp-itest.lock
flock 9

if [[ $(id -u) -ne 0 ]]; then
	skip "needs root (users, mount namespaces)"
	finish
fi
for b in virsh virt-ssh-helper qemu-system-x86_64 qemu-img; do
	command -v "$b" >/dev/null || { skip "no $b (scripts/libvirt-up.sh installs libvirt and QEMU)"; finish; }
done

# A short run dir: the hosts' HOMEs hold QEMU's monitor sockets (107 characters at most).
T=$(mktemp -d /tmp/vph-XXXXXX)
chmod 0755 "$T" # the hosts' users read their authorized_keys below it
export VP_TEST_HOSTS_DIR=$T/h VP_TEST_HOSTS_PORT=${VP_TEST_HOSTS_PORT:-22400}
export VP_TEST_HOSTS_USER=${VP_TEST_HOSTS_USER:-vpvirt}
H=$VP_TEST_HOSTS_DIR
GUEST_DIR=${VP_GUEST_DIR:-$BUILD/guest}
DOM=vph-guest
MNT=/var/lib/vdipool
cleanup() {
	bash "$ROOT/scripts/test-hosts-down.sh" >/dev/null 2>&1
	rm -rf "$T"
}
trap cleanup EXIT

if ! bash "$ROOT/scripts/build-guest-image.sh" "$GUEST_DIR" >"$T/guest.log" 2>&1; then
	bad "scripts/build-guest-image.sh $GUEST_DIR: $(tail -3 "$T/guest.log")"
	finish
fi
# 9>&-: the hosts' daemons outlive this line and must not hold the lock.
if ! bash "$ROOT/scripts/test-hosts-up.sh" 3 >"$T/up.log" 2>&1 9>&-; then
	bad "test hosts up: $(tail -3 "$T/up.log")"
	finish
fi
ok "3 test hosts up"
sed 's/^/    /' "$T/up.log"

declare -A URI HUSER SSHD
while read -r i user _port pid uri; do
	URI[$i]=$uri HUSER[$i]=$user SSHD[$i]=$pid
done <"$H/hosts"
check "RUN/hosts names a URI for each of the 3 hosts" test "${#URI[@]}" -eq 3
virsh_() { local h=$1; shift; timeout 60 virsh -q -c "${URI[$h]}" "$@"; }
store() { echo "$H/host$1/store"; }
# daemon_pid HOST: the host user's session libvirtd.
daemon_pid() {
	local uid p
	uid=$(id -u "${HUSER[$1]}") || return 1
	for p in $(pgrep -u "$uid" -x libvirtd); do echo "$p"; return 0; done
	return 1
}
# same_ns PID1 PID2: both processes live and in one mount namespace.
same_ns() {
	local a b
	a=$(readlink "/proc/$1/ns/mnt") && b=$(readlink "/proc/$2/ns/mnt") && [[ $a == "$b" ]]
}

# ---- every host answers, as its own user, in its own namespace -------------------------------
for h in 1 2 3; do
	check "host$h: virsh -c ${URI[$h]} list --all" virsh_ "$h" list --all
	cpus=$(virsh_ "$h" nodeinfo | awk -F: '/^CPU\(s\)/ { gsub(/ /, "", $2); print $2 }')
	mem=$(virsh_ "$h" nodeinfo | awk -F: '/^Memory size/ { print $2 + 0 }')
	check "host$h: node info ($cpus CPUs, $mem KiB)" test "${cpus:-0}" -gt 0 -a "${mem:-0}" -gt 0
	check "host$h: the session daemon's URI is the one asked for" test "$(virsh_ "$h" uri)" = "${URI[$h]}"
	dp=$(daemon_pid "$h")
	check "host$h: its session libvirtd ($dp) runs as ${HUSER[$h]}" test -n "$dp"
	[[ -n $dp ]] && check "host$h: its session libvirtd runs in the host's mount namespace" same_ns "$dp" "${SSHD[$h]}"
done
check "host1 and host2 have their own namespaces" test "$(readlink "/proc/${SSHD[1]}/ns/mnt")" != "$(readlink "/proc/${SSHD[2]}/ns/mnt")"

# ---- a disk only in host1's store: starts on host1, not on host2 ------------------------------
# The base each host boots: copied into host1's and host2's stores by hand; host3 gets it the
# way a pool's hosts do, `vdipool base push` over SSH (as the host's user, so QEMU can read it).
declare -A BASE=([1]=$MNT/tiny.raw [2]=$MNT/tiny.raw)
# put_guest HOST: the base (hosts 1, 2) and a fresh overlay in the host's store, owned by the
# host's user (QEMU runs as that user: it reads the base and writes the overlay).
put_guest() {
	local s
	s=$(store "$1")
	if [[ ${BASE[$1]} == "$MNT/tiny.raw" ]]; then
		cp --sparse=always "$GUEST_DIR/tiny.raw" "$s/tiny.raw" && chown "${HUSER[$1]}:" "$s/tiny.raw" &&
			chmod 0444 "$s/tiny.raw" || return 1
	fi
	qemu-img create -q -f qcow2 -b "${BASE[$1]}" -F raw -u "$s/$DOM.qcow2" 64M &&
		chown "${HUSER[$1]}:" "$s/$DOM.qcow2"
}
# The domain is the same on every host but for its SMBIOS serial, which the guest prints.
domain_xml() {
	cat <<EOF
<domain type='qemu'>
  <name>$DOM</name>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <sysinfo type='smbios'><system><entry name='serial'>$DOM-host$1</entry></system></sysinfo>
  <os><type arch='x86_64' machine='pc'>hvm</type><boot dev='hd'/><smbios mode='sysinfo'/></os>
  <features><acpi/></features>
  <on_poweroff>destroy</on_poweroff>
  <devices>
    <emulator>$(command -v qemu-system-x86_64)</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='$MNT/$DOM.qcow2'/>
      <backingStore type='file'><format type='raw'/><source file='${BASE[$1]}'/></backingStore>
      <target dev='vda' bus='virtio'/>
    </disk>
    <serial type='pty'><log file='$MNT/$DOM-serial.log' append='on'/><target port='0'/></serial>
    <console type='pty'><target type='serial' port='0'/></console>
    <memballoon model='none'/>
  </devices>
</domain>
EOF
}

VER=$(cat "$GUEST_DIR/VERSION")
if "$CLI" --root "$T/store" base import tiny "$GUEST_DIR/tiny.raw" --version "$VER" --format raw >"$T/push.log" 2>&1 &&
	"$CLI" --root "$T/store" base push "tiny@$VER" --to "${HUSER[3]}@127.0.0.1:$((VP_TEST_HOSTS_PORT + 3))" \
		--identity "$H/id_ed25519" --known-hosts "$H/known_hosts" >>"$T/push.log" 2>&1; then
	ok "host3: vdipool base push tiny@$VER"
else
	bad "host3: vdipool base push tiny@$VER: $(tail -3 "$T/push.log")"
fi
BASE[3]=$MNT/bases/tiny/$VER/disk.raw
check "host3: the pushed base is only in host3's store" test -f "$(store 3)/bases/tiny/$VER/disk.raw" -a ! -e "$(store 1)/bases"

check "host1: base and overlay placed in host1's store" put_guest 1
for h in 1 2 3; do
	domain_xml "$h" >"$T/dom$h.xml"
	check "host$h: define $DOM" virsh_ "$h" define "$T/dom$h.xml"
done
check "host2 does not see host1's overlay ($MNT/$DOM.qcow2)" nsenter -t "${SSHD[2]}" -m test ! -e "$MNT/$DOM.qcow2"
expect "host2: $DOM does not start: its disk is only in host1's store" 1 "$MNT/$DOM.qcow2" -- virsh_ 2 start "$DOM"
check "host2: $DOM is shut off" test "$(virsh_ 2 domstate "$DOM")" = "shut off"

# ---- one real guest per host, under TCG -------------------------------------------------------
for h in 2 3; do check "host$h: base and overlay placed in host$h's store" put_guest "$h"; done
check "host3: the overlay is backed by the pushed base" \
	bash -c 'qemu-img info -U --output=json "$1" | grep -q "\"backing-filename\": \"$2\""' _ "$(store 3)/$DOM.qcow2" "${BASE[3]}"
for h in 1 2 3; do check "host$h: start $DOM" virsh_ "$h" start "$DOM"; done
# wait_line HOST: until the host's serial log shows READY (or an error, or the timeout).
wait_line() {
	local log end=$((SECONDS + TIMEOUT))
	log=$(store "$1")/$DOM-serial.log
	while ((SECONDS < end)); do
		grep -a -q '^VDIPOOL-READY' "$log" 2>/dev/null && return 0
		grep -a -q '^VDIPOOL-ERROR' "$log" 2>/dev/null && break
		sleep 0.5
	done
	echo "    host$1: no VDIPOOL-READY in ${TIMEOUT}s; log tail:"
	tail -20 "$log" 2>/dev/null | sed 's/^/    /'
	return 1
}
for h in 1 2 3; do
	log=$(store "$h")/$DOM-serial.log
	check "host$h: the guest booted to VDIPOOL-READY (serial log in the host's store)" wait_line "$h"
	check "host$h: the guest is host$h's (SMBIOS serial $DOM-host$h)" \
		grep -a -q "^VDIPOOL-IDENTITY: id=$DOM-host$h " "$log"
	check "host$h: the guest saw the base marker" grep -a -q '^VDIPOOL-BASE-MARKER: VDIPOOL-BASE' "$log"
	check "host$h: domstate is running" test "$(virsh_ "$h" domstate "$DOM")" = running
	qp=$(pgrep -u "$(id -u "${HUSER[$h]}")" -f "guest=$DOM" | head -1)
	check "host$h: its QEMU (${qp:-none}) runs as ${HUSER[$h]} in the host's namespace" same_ns "${qp:-0}" "${SSHD[$h]}"
done
listed_running() { virsh_ "$1" list | grep -q "$DOM  *running"; }
for h in 1 2 3; do check "host$h: virsh list shows $DOM running" listed_running "$h"; done
for h in 1 2 3; do
	virsh_ "$h" destroy "$DOM" >/dev/null 2>&1
	check "host$h: undefine $DOM" virsh_ "$h" undefine "$DOM"
done

# ---- down leaves nothing ----------------------------------------------------------------------
uids=()
for h in 1 2 3; do uids+=("$(id -u "${HUSER[$h]}")"); done
bash "$ROOT/scripts/test-hosts-down.sh" >"$T/down.log" 2>&1
check "test hosts down" test $? -eq 0
for h in 1 2 3; do
	check "host$h: no process of uid ${uids[h - 1]} (${HUSER[$h]}) is left" bash -c '! pgrep -u "$1" >/dev/null' _ "${uids[h - 1]}"
	check "host$h: user ${HUSER[$h]} is gone" bash -c '! id "$1" >/dev/null 2>&1' _ "${HUSER[$h]}"
	check "host$h: sshd ${SSHD[$h]} is gone" bash -c '! kill -0 "$1" 2>/dev/null' _ "${SSHD[$h]}"
done

finish
