#!/usr/bin/env bash
# bench_claim.sh: `vdipool claim` to a ready clone from a running spare, from a parked (saved to
# disk) spare and from a cold boot (release, then a claim that waits for the boot), against what a
# user would do without vdipool: `virsh start` of a defined domain and polling libvirt's DHCP
# leases (virsh net-dhcp-leases) until a lease of this boot shows up; then claims per minute
# sustained (claim + release in a loop, the refill on) with running and with parked spares.
# Real guests (the tiny image) on libvirt's `default` network. Prints each figure and the ratios.
# Usage: tests/bench/bench_claim.sh [-n SAMPLES] [-d SECONDS]   (defaults 3 and 60)
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${VP_BUILD_DIR:-$ROOT/build}
CLI=$BUILD/bin/vdipool
GUEST=${VP_GUEST_DIR:-$BUILD/guest}
N=3
D=60
while getopts "n:d:" o; do
	case $o in
	n) N=$OPTARG ;;
	d) D=$OPTARG ;;
	*) echo "usage: $0 [-n SAMPLES] [-d SECONDS]" >&2; exit 2 ;;
	esac
done
export VDIPOOL_PLUGIN_PATH=$BUILD/plugins VDIPOOL_TEMPLATE_PATH=$ROOT/templates CI=1
R=bcr$$ C=bcc$$
T=$(mktemp -d /var/tmp/vp-bench-claim-XXXXXX)
chmod 755 "$T"
cleanup() {
	"$CLI" destroy -q --yes "$T/r.yaml" >/dev/null 2>&1
	"$CLI" destroy -q --yes "$T/c.yaml" >/dev/null 2>&1
	rm -f /var/log/libvirt/qemu/"$R"-*-serial.log /var/log/libvirt/qemu/"$C"-*-serial.log
	rm -rf "$T"
}
trap cleanup EXIT
now() { date +%s.%N; }
secs() { python3 -c "import sys; print('%.2f' % (float(sys.argv[2]) - float(sys.argv[1])))" "$1" "$2"; }
stats() { python3 -c 'import statistics as s, sys; v = [float(x) for x in sys.argv[1:]]
print("median %.2f s (min %.2f, max %.2f; %s)" % (s.median(v), min(v), max(v), ", ".join("%.2f" % x for x in v)))' "$@"; }
median() { python3 -c 'import statistics as s, sys; print("%.3f" % s.median(float(x) for x in sys.argv[1:]))' "$@"; }
ratio() { python3 -c 'import sys; print("%.0f" % (float(sys.argv[1]) / float(sys.argv[2])))' "$1" "$2"; }
die() { echo "bench_claim: $*" >&2; exit 1; }

# spec FILE POOL COUNT SPARES PARKED
spec() {
	cat >"$1" <<EOS
pool: { name: $2 }
base: { name: tiny }
storage:
  tiers: [ { name: local, driver: dir, path: $T/store } ]
clones: { count: $3, spares: $4, parked: $5, name: "$2-{index}" }
domain: { template: server, memory: 256M, network: default }
rollout: { shutdown_timeout: 5s }
EOS
}
claim_json() { "$CLI" claim -o json --for bench --timeout 3m "$@"; }
field() { python3 -c 'import json, sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }

bash "$ROOT/scripts/libvirt-up.sh" >/dev/null 2>&1 || die "libvirt is not up"
bash "$ROOT/scripts/build-guest-image.sh" "$GUEST" >/dev/null 2>&1 || die "the guest image does not build"
"$CLI" --root "$T/store" base import tiny "$GUEST/tiny.raw" --version 1 >/dev/null || die "import failed"
echo "bench_claim: $N samples each, sustained runs of $D s; $(nproc) CPUs, $(virsh domcapabilities 2>/dev/null |
	grep -q "<domain type='kvm'" && echo "KVM listed" || echo "TCG")"

spec "$T/r.yaml" "$R" "$N" "$N" 0
spec "$T/c.yaml" "$C" 1 0 0
"$CLI" apply -q --wait ready --timeout 5m "$T/r.yaml" >/dev/null 2>&1 || die "apply of the running pool failed"
"$CLI" apply -q --wait ready --timeout 5m "$T/c.yaml" >/dev/null 2>&1 || die "apply of the cold pool failed"

# -- from a running spare
run=() lib=()
for _ in $(seq "$N"); do
	t0=$(now)
	j=$(claim_json --no-refill "$T/r.yaml") || die "claim from a running spare failed"
	run+=("$(secs "$t0" "$(now)")")
	lib+=("$(field "$j" seconds)")
done
echo "claim from a running spare:   $(stats "${run[@]}")  (the whole command; in the library: $(median "${lib[@]}") s)"

# -- from a parked spare: the same clones released, then parked by apply
"$CLI" -q release "$T/r.yaml" $(seq -f "$R-%g" 1 "$N") >/dev/null 2>&1 || die "release failed"
spec "$T/r.yaml" "$R" "$N" "$N" "$N"
t0=$(now)
"$CLI" apply -q "$T/r.yaml" >/dev/null 2>&1 || die "apply (parking) failed"
echo "apply: $N released spares booted until ready and parked in $(secs "$t0" "$(now)") s"
park=() plib=()
for _ in $(seq "$N"); do
	t0=$(now)
	j=$(claim_json --no-refill "$T/r.yaml") || die "claim from a parked spare failed"
	t1=$(now)
	[[ $(field "$j" resumed) == True ]] || die "the claim did not restore a parked spare: $j"
	park+=("$(secs "$t0" "$t1")")
	plib+=("$(field "$j" seconds)")
done
echo "claim from a parked spare:    $(stats "${park[@]}")  (the whole command; restore to ready: $(median "${plib[@]}") s)"

# -- cold: release (forced off, fresh delta, start), then a claim that waits for the boot
c=$("$CLI" -q claim --for bench --no-refill "$T/c.yaml") || die "claim of the cold pool failed"
cold=()
for _ in $(seq "$N"); do
	t0=$(now)
	"$CLI" -q release "$T/c.yaml" "$c" >/dev/null 2>&1 || die "release failed"
	"$CLI" -q claim --for bench --timeout 3m --no-refill "$T/c.yaml" >/dev/null || die "cold claim failed"
	cold+=("$(secs "$t0" "$(now)")")
done
echo "cold (release + claim):       $(stats "${cold[@]}")"

# -- the peer: virsh start of the (claimed, so vdipool leaves it alone) clone, then polling the
# network's DHCP leases for one granted after the start. (`virsh domifaddr --source lease` at once
# would list the lease of the previous boot: libvirt keeps it.)
mac=$(virsh domiflist "$c" | awk '/network/ { print $5; exit }')
expiry() { virsh net-dhcp-leases default --mac "$mac" 2>/dev/null | awk -v m="$mac" '$0 ~ m { print $1 " " $2 }' | sort | tail -1; }
peer=()
for _ in $(seq "$N"); do
	virsh destroy "$c" >/dev/null 2>&1
	sleep 1
	before=$(expiry)
	t0=$(now)
	virsh start "$c" >/dev/null || die "virsh start failed"
	while [[ $(expiry) == "$before" ]]; do
		sleep 0.2
		[[ $(secs "$t0" "$(now)" | cut -d. -f1) -lt 180 ]] || die "no lease after 180 s"
	done
	peer+=("$(secs "$t0" "$(now)")")
done
echo "peer (virsh start + lease):   $(stats "${peer[@]}")"
mp=$(median "${peer[@]}")
echo "ratios (peer median / vdipool median): running spare $(ratio "$mp" "$(median "${run[@]}")")x," \
	"parked spare $(ratio "$mp" "$(median "${park[@]}")")x, cold $(python3 -c "print('%.2f' % ($mp / $(median "${cold[@]}")))")x"

# -- sustained: claim + release for D seconds, refill on
sustain() { # sustain LABEL
	local n=0 end t0 t1 x cl=() rl=() resumed=0
	t0=$(now)
	end=$((SECONDS + D))
	while ((SECONDS < end)); do
		t1=$(now)
		x=$(claim_json "$T/r.yaml" 2>/dev/null) || { echo "  a claim failed"; break; }
		cl+=("$(secs "$t1" "$(now)")")
		[[ $(field "$x" resumed) == True ]] && resumed=$((resumed + 1))
		n=$((n + 1))
		t1=$(now)
		"$CLI" -q release "$T/r.yaml" "$(field "$x" name)" >/dev/null 2>&1 || { echo "  a release failed"; break; }
		rl+=("$(secs "$t1" "$(now)")")
	done
	echo "sustained, $1: $n claims + releases in $(secs "$t0" "$(now)") s:" \
		"$(python3 -c "print('%.1f' % ($n * 60 / ($(now) - $t0)))") claims/min ($resumed restored from parked);" \
		"claim $(stats "${cl[@]}"); release median $(median "${rl[@]}") s"
}
"$CLI" -q release "$T/r.yaml" $(seq -f "$R-%g" 1 "$N") >/dev/null 2>&1
spec "$T/r.yaml" "$R" "$N" "$N" 0
"$CLI" apply -q --wait ready --timeout 5m "$T/r.yaml" >/dev/null 2>&1 || die "apply failed"
sustain "$N running spares"
spec "$T/r.yaml" "$R" "$N" "$N" "$N"
"$CLI" apply -q --wait --wait ready --timeout 5m "$T/r.yaml" >/dev/null 2>&1 || die "apply failed"
sustain "$N parked spares"
echo "peer, one after another: $(python3 -c "print('%.1f' % (60 / $mp))") starts to a lease per minute"
