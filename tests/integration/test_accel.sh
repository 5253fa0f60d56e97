#!/usr/bin/env bash
# test_accel.sh: domain.accel on every /dev/kvm this machine can show, with real guests booting:
#   - no /dev/kvm (hidden for the test when there is one): libvirt lists no KVM;
#   - a root-only /dev/kvm (crw------- root root, as where no udev ran): libvirt lists KVM, but a
#     probe guest cannot start (QEMU: "Could not access KVM kernel module: Permission denied");
#   - /dev/kvm with udev's root:kvm 0660: KVM runs guests here, or (nested virtualisation) it
#     refuses them; the variant the machine does not have is reported as skipped, with the reason.
# auto must fall back to TCG with one warning naming why, kvm must fail with the reason and change
# nothing, and the clones' domain type and CPU must follow the accelerator.
set -uo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

GUEST=${VP_GUEST_DIR:-$BUILD/guest}
POOL=acc$$
T=$(mktemp -d /var/tmp/vp-accel-XXXXXX)
chmod 755 "$T"
SPEC=$T/pool.yaml
HIDDEN=/dev/kvm.vp-test-hidden
KVM_OWNER= KVM_MODE=
[[ -e /dev/kvm ]] && KVM_OWNER=$(stat -c %u:%g /dev/kvm) KVM_MODE=$(stat -c %a /dev/kvm)

# libvirt notices a changed /dev/kvm by its ctime in whole seconds: change it in a new second.
new_second() { sleep 1.1; }
restore_kvm() {
	new_second
	[[ -e $HIDDEN && ! -e /dev/kvm ]] && mv "$HIDDEN" /dev/kvm
	if [[ -n $KVM_OWNER && -e /dev/kvm ]]; then
		chown "$KVM_OWNER" /dev/kvm
		chmod "$KVM_MODE" /dev/kvm
	fi
}
cleanup() {
	"$CLI" destroy -q --yes "$SPEC" >/dev/null 2>&1
	restore_kvm
	rm -f "$LOGDIR/$POOL"-*-serial.log
	rm -rf "$T"
}
trap cleanup EXIT

spec() { # spec ACCEL COUNT
	cat >"$SPEC" <<EOF
pool: { name: $POOL }
base: { name: tiny }
storage:
  tiers: [ { name: local, driver: dir, path: $T/store } ]
clones: { count: $2, name: "$POOL-{index}" }
domain: { template: server, memory: 128M, network: none, start: true, accel: $1 }
rollout: { shutdown_timeout: 5s, max_unavailable: 100% }
EOF
}

dom_type() { virsh -c qemu:///system dumpxml "$1" 2>/dev/null | sed -n "s/^<domain type='\([a-z]*\)'.*/\1/p"; }
cpu_count() { virsh -c qemu:///system dumpxml --inactive "$1" 2>/dev/null | grep -c "<cpu mode='host"; }
dom_state() { virsh -c qemu:///system domstate "$1" 2>/dev/null | head -1; }
our_domains() { virsh -c qemu:///system list --all --name | grep -c "^$POOL-"; }
# warned OUTPUT NEEDLE: the fallback warning is there, once, and names the reason
warned() {
	[[ $(grep -c '^warning: host .* clones run under TCG' <<<"$1") -eq 1 ]] && grep -q -F "$2" <<<"$1"
}

bash "$ROOT/scripts/libvirt-up.sh" >/dev/null 2>&1 || { bad "libvirt is up"; finish; }
bash "$ROOT/scripts/build-guest-image.sh" "$GUEST" >/dev/null 2>&1 || { bad "the guest image builds"; finish; }
"$CLI" --root "$T/store" base import tiny "$GUEST/tiny.raw" --version 1 >/dev/null || { bad "import"; finish; }

echo "== variant: no /dev/kvm"
[[ -e /dev/kvm ]] && new_second && mv /dev/kvm "$HIDDEN"
spec kvm 2
expect "kvm without /dev/kvm: plan fails with the reason" 1 \
	"domain.accel is 'kvm' but KVM cannot run a guest here: libvirt lists no KVM domain type: this host has no /dev/kvm" -- "$CLI" plan "$SPEC"
expect "kvm without /dev/kvm: apply fails the same way" 1 "libvirt lists no KVM domain type" -- "$CLI" apply "$SPEC"
check "... and defines nothing" test "$(our_domains)" -eq 0
spec auto 2
out=$("$CLI" apply "$SPEC" 2>&1)
rc=$?
check "auto without /dev/kvm: apply succeeds" test $rc -eq 0
check "... warning once that clones run under TCG, and why" warned "$out" "this host has no /dev/kvm"
for c in "$POOL-1" "$POOL-2"; do
	check "$c is a TCG domain (type qemu)" test "$(dom_type "$c")" == qemu
	check "$c has QEMU's TCG CPU (no host-model)" test "$(cpu_count "$c")" -eq 0
	check "$c runs" test "$(dom_state "$c")" == running
done
check "$POOL-1 boots to READY under TCG" wait_ready "$POOL-1" 1
restore_kvm

if [[ -z $KVM_OWNER ]]; then
	skip "root-only /dev/kvm: this machine has no /dev/kvm to make root-only"
	skip "usable /dev/kvm: this machine has no /dev/kvm"
	finish
fi

echo "== variant: root-only /dev/kvm (no udev rule ran)"
new_second
chown root:root /dev/kvm
chmod 0600 /dev/kvm
out=$("$CLI" plan "$SPEC" 2>&1)
check "auto with a root-only /dev/kvm: warns that QEMU cannot open it" \
	warned "$out" "/dev/kvm is not accessible to QEMU (permission denied"
check "... and the TCG pool is unchanged (nothing to do)" grep -q "No changes: the pool matches its spec" <<<"$out"
spec kvm 2
expect "kvm with a root-only /dev/kvm: apply fails naming /dev/kvm" 1 \
	"/dev/kvm is not accessible to QEMU (permission denied" -- "$CLI" apply "$SPEC"
for c in "$POOL-1" "$POOL-2"; do
	check "... $c untouched: still TCG and running" \
		test "$(dom_type "$c")/$(dom_state "$c")" == "qemu/running"
done

echo "== variant: /dev/kvm with udev's root:kvm 0660"
new_second
chown root:kvm /dev/kvm
chmod 0660 /dev/kvm
spec auto 2
# Killed during its probe, a vdipool leaves the probe guest running; the next probe removes it.
"$CLI" plan "$SPEC" >/dev/null 2>&1 &
planner=$!
probe_dom=
for _ in $(seq 100); do
	probe_dom=$(virsh -c qemu:///system list --name | grep "^vdipool-kvm-probe-$planner\$")
	[[ -n $probe_dom ]] && break
	sleep 0.1
done
kill -9 $planner 2>/dev/null
wait $planner 2>/dev/null
if [[ -n $probe_dom ]]; then
	check "a vdipool killed in its probe leaves the probe guest behind" \
		bash -c "virsh -c qemu:///system list --name | grep -q '^$probe_dom\$'"
else
	skip "kill during the probe: no probe guest was seen in 10 s"
fi
out=$("$CLI" plan "$SPEC" 2>&1)
check "the next probe removed it, and its own" \
	test -z "$(virsh -c qemu:///system list --all --name | grep '^vdipool-kvm-probe-')"
if ! grep -q '^warning: ' <<<"$out"; then
	echo "   (KVM runs guests on this machine)"
	check "plan moves the pool to KVM (a definition update)" grep -q "2 to update" <<<"$out"
	check "apply moves both clones to KVM" "$CLI" apply -q "$SPEC"
	for c in "$POOL-1" "$POOL-2"; do
		check "$c is defined as a KVM domain with a host-model CPU" \
			test "$(virsh -c qemu:///system dumpxml --inactive "$c" | grep -c -e "^<domain type='kvm'" -e "<cpu mode='host-model'")" -eq 2
	done
	# A definition update reaches a running clone at its next start; reset restarts one now.
	rm -f "$LOGDIR/$POOL-1-serial.log"
	out=$("$CLI" reset "$SPEC" "$POOL-1" 2>&1)
	check "reset restarts $POOL-1" test $? -eq 0
	check "$POOL-1 now runs under KVM" test "$(dom_type "$POOL-1")/$(dom_state "$POOL-1")" == kvm/running
	check "$POOL-1 boots to READY under KVM" wait_ready "$POOL-1" 1
	spec kvm 2
	out=$("$CLI" plan "$SPEC" 2>&1)
	check "accel: kvm is satisfied and changes nothing" grep -q "No changes" <<<"$out"
	grep -q "No changes" <<<"$out" || sed 's/^/    /' <<<"$out"
	skip "nested KVM that refuses guests: this machine's KVM runs them (the MSR failure is covered by tests/unit/test_accel.c)"
else
	echo "   (KVM is listed but cannot run this guest here: $(grep '^warning' <<<"$out" | head -1))"
	check "auto names why KVM cannot run guests" warned "$out" "KVM on this host"
	check "... and keeps the pool on TCG (nothing to do)" grep -q "No changes: the pool matches its spec" <<<"$out"
	spec kvm 2
	expect "kvm fails with the reason" 1 "domain.accel is 'kvm' but KVM cannot run a guest here: KVM on this host" \
		-- "$CLI" apply "$SPEC"
	for c in "$POOL-1" "$POOL-2"; do
		check "... $c untouched: still TCG and running" test "$(dom_type "$c")/$(dom_state "$c")" == "qemu/running"
	done
	skip "KVM that runs guests: this machine's KVM cannot ($(grep '^warning' <<<"$out" | head -1))"
fi
check "destroy" "$CLI" destroy -q --yes "$SPEC"
finish
