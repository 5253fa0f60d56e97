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
