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
