# lib.sh: what the integration scripts share: where things are, PASS/FAIL counting, checks, and the
# closing count line. Source it; it sets ROOT, BUILD, CLI, `pass` and `fail`, and exports what the
# CLI needs to run from the build tree (ctest sets these; by hand the defaults fit a checkout).
ROOT=${VP_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
BUILD=${VP_BUILD_DIR:-$ROOT/build}
CLI=${VDIPOOL_CLI:-$BUILD/bin/vdipool}
export VDIPOOL_PLUGIN_PATH=${VDIPOOL_PLUGIN_PATH:-$BUILD/plugins}
export VDIPOOL_TEMPLATE_PATH=${VDIPOOL_TEMPLATE_PATH:-$ROOT/templates}
export CI=1 # no progress bars
pass=0
fail=0
skipped=0

ok() { pass=$((pass + 1)); echo "PASS: $1"; }
bad() { fail=$((fail + 1)); echo "FAIL: $1"; }
# skip REASON: a variant this machine cannot produce; said, counted, never passed.
skip() { skipped=$((skipped + 1)); echo "SKIP: $1"; }

# check NAME COMMAND...: passes when the command succeeds.
check() {
	local name=$1
	shift
	if "$@"; then ok "$name"; else bad "$name"; fi
}

# expect NAME CODE NEEDLE -- COMMAND...: the exit code, and NEEDLE in stdout+stderr.
expect() {
	local name=$1 code=$2 needle=$3 out rc
	shift 4
	out=$("$@" 2>&1)
	rc=$?
	if [[ $rc -eq $code && "$out" == *"$needle"* ]]; then
		ok "$name"
	else
		bad "$name (exit $rc, want $code; wanted '$needle')"
		printf '%s\n' "$out" | tail -15 | sed 's/^/    /'
	fi
}

# xfs_ready IMG MNT: an XFS with reflink=1 on a 512 MiB loop device made from the file IMG, mounted
# at MNT (sets LOOP; the caller unmounts it and detaches LOOP); a SKIP saying why where this
# machine cannot make one.
xfs_ready() {
	command -v mkfs.xfs >/dev/null || apt-get install -y -q xfsprogs >/dev/null 2>&1 || {
		skip "reflink on XFS: xfsprogs is missing and cannot be installed"
		return 1
	}
	truncate -s 512M "$1" && mkfs.xfs -q -m reflink=1 "$1" >/dev/null 2>&1 ||
		{ skip "reflink on XFS: mkfs.xfs -m reflink=1 failed"; return 1; }
	LOOP=$(losetup -f --show "$1" 2>/dev/null) || { skip "reflink on XFS: no loop device"; return 1; }
	mkdir -p "$2" && mount "$LOOP" "$2" 2>/dev/null || { skip "reflink on XFS: cannot mount $LOOP"; return 1; }
}

# Guests: libvirt's QEMU logs, where a clone's serial console is NAME-serial.log.
LOGDIR=/var/log/libvirt/qemu
TIMEOUT=${VP_GUEST_BOOT_TIMEOUT:-120}

# wait_ready NAME COUNT: until the clone's serial log shows COUNT boots that reached READY.
wait_ready() {
	local log=$LOGDIR/$1-serial.log end=$((SECONDS + TIMEOUT))
	while ((SECONDS < end)); do
		if [[ -f $log ]] && (($(grep -a -c '^VDIPOOL-READY' "$log") >= $2)); then
			return 0
		fi
		grep -a -q '^VDIPOOL-ERROR' "$log" 2>/dev/null && break
		sleep 0.5
	done
	echo "    $1: no READY #$2 in ${TIMEOUT}s; log tail:"
	tail -20 "$log" 2>/dev/null | sed 's/^/    /'
	return 1
}

# json_check EXPR JSON: a python expression over d (the parsed JSON) must hold.
json_check() {
	python3 -c 'import json, sys; d = json.loads(sys.argv[2]); assert eval(sys.argv[1]), d' "$1" "$2"
}

# guest_addr NAME: the last address the guest printed on its serial console ("" none yet).
guest_addr() {
	{ tr -d '\r' <"$LOGDIR/$1-serial.log"; } 2>/dev/null | sed -n 's/^VDIPOOL-ADDR: //p' | tail -n 1
}

# The set-up of a script that makes a pool of tiny guests in a store of its own:
# guest_setup PREFIX [DESTROY-OPTION...] sets GUEST (the guest image's directory), POOL (PREFIX and
# this shell's pid), T (a fresh directory under /var/tmp named after the script, readable by
# QEMU's user) and SPEC ($T/pool.yaml); arms the EXIT trap (guest_cleanup); brings libvirt up,
# builds the guest image and imports it as tiny@1 into $T/store, and removes serial logs an
# earlier run of this pool's names left. A failed step fails the test and ends it.
guest_setup() {
	local name=${0##*/}
	name=${name#test_}
	GUEST=${VP_GUEST_DIR:-$BUILD/guest}
	POOL=$1$$
	T=$(mktemp -d "/var/tmp/vp-${name%.sh}-XXXXXX")
	chmod 755 "$T"
	SPEC=$T/pool.yaml
	GUEST_DESTROY=("${@:2}")
	trap guest_cleanup EXIT
	bash "$ROOT/scripts/libvirt-up.sh" >/dev/null 2>&1 || { bad "libvirt is up"; finish; }
	bash "$ROOT/scripts/build-guest-image.sh" "$GUEST" >/dev/null 2>&1 || { bad "the guest image builds"; finish; }
	"$CLI" --root "$T/store" base import tiny "$GUEST/tiny.raw" --version 1 >/dev/null ||
		{ bad "the tiny image imports"; finish; }
	rm -f "$LOGDIR/$POOL"-*-serial.log
}

# guest_cleanup (the EXIT trap of guest_setup): destroys $SPEC's pool (with guest_setup's
# DESTROY-OPTIONs), runs the script's own cleanup_hook if it defines one (what else it made),
# then removes the pool's serial logs and T.
guest_cleanup() {
	"$CLI" destroy -q --yes "${GUEST_DESTROY[@]}" "$SPEC" >/dev/null 2>&1
	declare -F cleanup_hook >/dev/null && cleanup_hook
	rm -f "$LOGDIR/$POOL"-*-serial.log
	rm -rf "$T"
}

# remove_domains PATTERN: destroys and undefines every domain whose name matches the grep PATTERN
# (what a destroy could not take, e.g. after a test killed vdipool half-way).
remove_domains() {
	local d
	for d in $(virsh -q list --all --name 2>/dev/null | grep "$1"); do
		virsh -q destroy "$d" >/dev/null 2>&1
		virsh -q undefine "$d" >/dev/null 2>&1
	done
}

# Small questions about a pool's guests, their disks and their claims.
# domains: how many domains of pool $POOL are defined.
domains() { virsh -q list --all --name | grep -c "^$POOL-"; }
# no_backing IMAGE: the qcow2 image has no backing file (it stands alone).
no_backing() { ! qemu-img info --output=json "$1" | grep -q '"backing-filename"'; }
# boot_lines NAME N: the lines the clone printed on its serial console in its Nth boot.
boot_lines() { awk -v n="$2" '/^VDIPOOL-BOOT/ { b++ } b == n' "$LOGDIR/$1-serial.log" | tr -d '\r'; }
# fresh_boots NAME: how many of the clone's boots found no clone marker (a pristine delta).
fresh_boots() { tr -d '\r' <"$LOGDIR/$1-serial.log" 2>/dev/null | grep -c '^VDIPOOL-CLONE-MARKER: (none)'; }
# json_get KEY JSON: a top-level value of a JSON object ("" when absent).
json_get() { python3 -c 'import json, sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$2" "$1" 2>/dev/null; }
# claimed_by NAME [--config]: who holds the clone's claim by its metadata ("" when none): of the
# live definition (of a running domain), or with --config of the persistent one.
claimed_by() {
	virsh metadata "$1" urn:vdipool:1 "${@:2}" 2>/dev/null | sed -n "s/.*<claim by=\"\([^\"]*\)\".*/\1/p"
}
# parallel_claims N TIMEOUT: N claims of $SPEC at once (--for par-I --timeout TIMEOUT --no-refill),
# each one's stdout, stderr and exit status in $T/par.I, par.I.err and par.I.rc; prints how many
# exited 0.
parallel_claims() {
	local i
	for i in $(seq "$1"); do
		("$CLI" -q claim --for "par-$i" --timeout "$2" --no-refill "$SPEC" >"$T/par.$i" 2>"$T/par.$i.err"; echo $? >"$T/par.$i.rc") &
	done
	wait
	grep -l '^0$' "$T"/par.*.rc | wc -l
}

# A throw-away Ceph of this run's own (scripts/ceph-up.sh in a fresh directory, free ports):
# ceph_setup NAME sets CEPH (its directory), R (the rbd CLI as client.vdipool on pool rbd) and
# RBD_TIER (a flow-style spec tier 'ceph' on that pool); images lists the pool's images;
# ceph_up starts it (failing the test with ceph-up's output); ceph_down stops it and undefines
# the libvirt secret vdipool made for it (its usage names the cluster's fsid).
ceph_setup() {
	export VP_CEPH_DIR=${VP_CEPH_DIR:-$(mktemp -d "/tmp/vp-ceph-$1.XXXXXX")}
	export VP_CEPH_PORT=${VP_CEPH_PORT:-auto}
	CEPH=$VP_CEPH_DIR
	R=(rbd -c "$CEPH/ceph.conf" --id vdipool --keyring "$CEPH/client.vdipool.keyring" -p rbd)
	RBD_TIER="{ name: ceph, driver: rbd, pool: rbd, conf: $CEPH/ceph.conf, id: vdipool, keyring: $CEPH/client.vdipool.keyring }"
}
# rbd_setup NAME PREFIX: the set-up of a script that runs pools on its own throw-away Ceph:
# ceph_setup NAME, then GUEST, POOL (PREFIX and this shell's pid), T (a fresh directory under
# /var/tmp readable by QEMU's user) and SPEC ($T/pool.yaml); its EXIT trap destroys every
# $T/*.yaml pool, removes the pool's serial logs, stops the cluster (ceph_down) and removes T.
rbd_setup() {
	ceph_setup "$1"
	GUEST=${VP_GUEST_DIR:-$BUILD/guest}
	POOL=$2$$
	T=$(mktemp -d "/var/tmp/vp-rbd-$1-XXXXXX")
	chmod 755 "$T"
	SPEC=$T/pool.yaml
	trap rbd_cleanup EXIT
}
rbd_cleanup() {
	local s
	for s in "$T"/*.yaml; do "$CLI" destroy -q --yes "$s" >/dev/null 2>&1; done
	rm -f "$LOGDIR/$POOL"-*-serial.log
	ceph_down
	rm -rf "$T"
}
# images: the Ceph pool's images, sorted, on one line ("" when none or the cluster is down).
images() { "${R[@]}" ls 2>/dev/null | sort | tr '\n' ' '; }
# parent IMAGE: the image's parent as POOL/IMAGE@SNAP ("" when it has none).
parent() { "${R[@]}" info "$1" 2>/dev/null | awk '/parent:/ { print $2 }'; }
ceph_up() {
	local out
	out=$(bash "$ROOT/scripts/ceph-up.sh" 2>&1) || { bad "ceph-up.sh: $out"; return 1; }
	ok "a throw-away Ceph is up: ${out##*$'\n'}"
}
ceph_down() {
	local fsid
	fsid=$(awk '/^fsid/ { print $3 }' "$CEPH/ceph.conf" 2>/dev/null)
	[[ -n $fsid ]] && virsh secret-list 2>/dev/null | awk -v f="$fsid" '$0 ~ f { print $1 }' |
		while read -r u; do virsh secret-undefine "$u" >/dev/null 2>&1; done
	bash "$ROOT/scripts/ceph-down.sh" >/dev/null 2>&1
}

# The closing line that CI reads, and the exit status.
finish() {
	echo
	if ((skipped > 0)); then
		echo "$pass passed, $fail failed, $skipped skipped"
	else
		echo "$pass passed, $fail failed"
	fi
	[[ $fail -eq 0 ]]
	exit $?
}
